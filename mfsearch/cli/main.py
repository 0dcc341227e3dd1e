"""`mfsearch` command line: registers subcommands; each is a thin call into the library.

User errors (``MfsearchError``) print one line and exit with code 2, like argparse's own errors.
"""
from __future__ import annotations

import argparse
import sys

from ..errors import MfsearchError
from . import confirm_cmd, dashboard_cmd, export_cmd, models_cmd, pareto_cmd, retrain_cmd, run_cmd, train_cmd

COMMANDS = [models_cmd, train_cmd, run_cmd, confirm_cmd, pareto_cmd, dashboard_cmd, export_cmd, retrain_cmd]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mfsearch",
        description="Search vision architectures in the MetaFormer design space "
                    "(MetaFormer Baselines for Vision, Yu et al.).",
        epilog="Run `mfsearch <command> --help` for a command's options.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="<command>", required=True)
    for module in COMMANDS:
        module.register(sub)
    return parser


def _version() -> str:
    from .. import __version__
    return __version__


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args) or 0
    except MfsearchError as err:
        print(f"mfsearch {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"mfsearch {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
