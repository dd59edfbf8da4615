"""The ``stopline`` command. Each area adds its own sub-commands through ``add_commands``.

Modules are imported lazily per command group so that, for example, ``stopline serve
plate-reader`` never imports the simulator or the desk's web stack.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from stopline.children import follow_parent
from stopline.shared.config import ConfigError

# command group -> module that defines add_commands(subparsers) for it
COMMAND_MODULES: dict[str, str] = {
    "sim": "stopline.sim.cli",
    "eval": "stopline.sim.cli",
    "serve": "stopline.services.serve",
    "health": "stopline.services.serve",
    "demo": "stopline.demo",
    "detect": "stopline.detect",
    "camera": "stopline.services.vehicle_detector.cli",
    "plates": "stopline.services.plate_reader.cli",
    "desk": "stopline.services.violation_desk.cli",
    "models": "stopline.training.cli",
    "deadletters": "stopline.deadletters",
}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stopline", description="Red-light enforcement pipeline.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    seen: set[str] = set()
    for group, module in COMMAND_MODULES.items():
        if (only is not None and group != only) or module in seen:
            continue
        seen.add(module)
        try:
            mod = importlib.import_module(module)
        except ImportError as e:
            if only is not None:
                raise
            sub.add_parser(group, help=f"(unavailable: {e})")
            continue
        mod.add_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    follow_parent()  # started by ``stopline demo``: stop when it does, even if it is killed
    argv = list(sys.argv[1:] if argv is None else argv)
    first = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(first if first in COMMAND_MODULES else None)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # recent alembic logs one INFO line per built-in plugin on every migration
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    if not getattr(args, "func", None):
        parser.print_help()
        return 1
    try:
        return int(args.func(args) or 0)
    except ConfigError as e:
        print(f"stopline: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
