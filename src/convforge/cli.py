"""`convforge` command line: one module per command under convforge.commands."""

from __future__ import annotations

import argparse
import importlib
import sys

COMMANDS = ("plan", "check", "bench", "sim")


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="convforge", description=__doc__)
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        module = importlib.import_module(f"convforge.commands.{name}")
        cmd = sub.add_parser(name, help=module.__doc__.splitlines()[0], description=module.__doc__)
        module.add_arguments(cmd)
        cmd.set_defaults(run=module.run)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.run(args)
    except (ValueError, TypeError) as err:
        print(f"convforge {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
