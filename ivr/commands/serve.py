"""`ivr serve`: the FastAGI server and the AMI client, with config from config/ and env."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os

from ivr.cli import config_dir
from ivr.config import load_config

HELP = "run the engine: FastAGI server (calls) + AMI client (events), until stopped"


def register(p: argparse.ArgumentParser) -> None:
    p.add_argument("--log-level", default=os.environ.get("IVR_LOG_LEVEL", "INFO"))


def run(args: argparse.Namespace) -> int:
    from ivr.service import Service

    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    loaded = load_config(config_dir(args))
    return asyncio.run(Service(loaded).run_forever())
