"""``ivr prompts build|list|check``: the Mandarin voice prompts (see docs/prompts.md)."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "build, list and check the voice prompts (prompts/catalog.yaml → audio)"


def register(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    build = actions.add_parser("build", help="synthesize or transcode the prompts that changed")
    list_ = actions.add_parser("list", help="show every prompt: id, source, duration, text")
    check = actions.add_parser("check", help="exit 1 if prompts/manifest.json is stale (for CI)")
    for p in (build, list_, check):
        p.add_argument("--prompts", type=Path, default=Path("prompts"), help="catalog folder (default: prompts)")
    build.add_argument("--out", type=Path, default=None, help="build folder (default: prompts/build)")
    build.add_argument("--force", action="store_true", help="rebuild every prompt")
    build.add_argument("--install", type=Path, metavar="SOUNDS_DIR", default=None,
                       help="then copy into SOUNDS_DIR/zh/ (Asterisk's astdatadir/sounds)")


def run(args: argparse.Namespace) -> int:
    return {"build": _build, "list": _list, "check": _check}[args.action](args)


def _build(args: argparse.Namespace) -> int:
    from ivr.cli import UsageError
    from ivr.prompts.build import DEFAULT_OUT, ProgressBar, PromptBuildError, build_prompts, install_sounds

    out = args.out or (args.prompts / DEFAULT_OUT.name)
    bar = ProgressBar()
    try:
        report = build_prompts(args.prompts, out, force=args.force, progress=bar)
        bar.close()
        print(report.summary())
        if args.install:
            files = install_sounds(out, args.install)
            print(f"installed {len(files)} files under {args.install / 'zh'}")
    except PromptBuildError as exc:
        bar.close()
        raise UsageError(str(exc)) from None
    return 0


def _list(args: argparse.Namespace) -> int:
    from ivr.prompts.catalog import load_catalog

    catalog = load_catalog(args.prompts)
    width = max(len(pid) for pid in catalog.prompts) if catalog.prompts else 2
    for pid, p in catalog.prompts.items():
        duration = "stale" if pid in catalog.stale else f"{p.duration:.1f}s"
        print(f"{pid:<{width}}  {p.source:<8}  {duration:>6}  {p.text_zh or '(recording only)'}")
    for tid, t in catalog.templates.items():
        print(f"{tid:<{width}}  template  {len(t.variants):>4} ×  {t.text_zh}")
    if catalog.stale:
        print(f"{len(catalog.stale)} prompt(s) not built for their current text: run `ivr prompts build`")
    return 0


def _check(args: argparse.Namespace) -> int:
    from ivr.prompts.catalog import MANIFEST_FILE, load_catalog, read_manifest

    catalog = load_catalog(args.prompts)
    wrong = sorted(catalog.stale | (set(read_manifest(args.prompts / MANIFEST_FILE)) - set(catalog.prompts)))
    if wrong:
        print(f"manifest stale for: {', '.join(wrong)}; run `ivr prompts build` and commit")
        return 1
    print(f"{len(catalog.prompts)} prompts, manifest up to date")
    return 0
