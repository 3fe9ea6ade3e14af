// The license of every package bundled into static/jssip.min.js (JsSIP and its
// dependencies, as package-lock.json pins them), kept beside it: MIT asks for its notice.
import { readFileSync, readdirSync, writeFileSync } from "node:fs";

const lock = JSON.parse(readFileSync("package-lock.json", "utf8"));
const parts = [];
for (const [path, pkg] of Object.entries(lock.packages)) {
  if (!path || pkg.dev) continue;  // "" is this package itself; esbuild is only the build tool
  const file = readdirSync(path).find((f) => /^licen[cs]e/i.test(f));
  if (!file) throw new Error(`${path}: no license file to keep beside the bundle`);
  parts.push(`${path.replace(/^node_modules\//, "")} ${pkg.version} (${pkg.license})\n\n${readFileSync(`${path}/${file}`, "utf8").trim()}\n`);
}
writeFileSync("static/jssip.LICENSE.txt", parts.join("\n" + "-".repeat(72) + "\n\n"));
