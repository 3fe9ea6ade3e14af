"""The child process of :mod:`console.sandbox`: ``python -m console.sandbox_child`` reads the draft
from stdin, limits itself, checks the draft (:func:`console.publish.check_draft`) and writes the
report as JSON.

A module of its own because it needs both the sandbox (limits, JSON) and publish (the check), and
publish needs the sandbox: with the child's code in sandbox.py the two imported each other.
"""

from __future__ import annotations

import json
import pickle
import sys
from pathlib import Path

from console.publish import check_draft
from console.sandbox import limit, to_json


def main() -> int:
    limits, config_dir, rel, text, catalog = pickle.loads(sys.stdin.buffer.read())  # from the engine, trusted
    limit(limits)  # before the draft is touched
    report = check_draft(Path(config_dir), rel, text, catalog)
    sys.stdout.write(json.dumps(to_json(report), ensure_ascii=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
