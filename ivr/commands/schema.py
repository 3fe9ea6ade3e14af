"""``ivr schema``: the JSON Schema of a flow file, for editors that check YAML as you type.

VS Code (redhat.vscode-yaml): ``ivr schema > flow.schema.json`` and map it to
``config/flows/*.yaml`` under ``yaml.schemas``.
"""

from __future__ import annotations

import argparse
import json

from ivr.flows.compiler import flow_json_schema

HELP = "print the JSON Schema of the call-flow language"


def register(parser: argparse.ArgumentParser) -> None:
    pass


def run(args: argparse.Namespace) -> int:
    print(json.dumps(flow_json_schema(), indent=2, ensure_ascii=False))
    return 0
