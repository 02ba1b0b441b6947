"""The `bakery` command line.

Each subcommand lives in `bakery/commands/<name>.py` with `add_arguments(parser)`
and `run(args) -> int`. Only the module of the command being run is imported,
so `bakery --help` and `bakery render` never pull in docker or openstacksdk.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from . import __version__
from .errors import EXIT_ENVIRONMENT, EXIT_INTERRUPTED, EXIT_USAGE, BakeryError, UserError

# name -> one-line summary. Order is the order shown in --help.
COMMANDS: dict[str, str] = {
    "render": "print cloud-init user-data for a node role (seed, manager, worker, consul)",
    "init": "write a commented starter cluster definition (bakery.yml)",
    "certs": "create or show the cluster CA and node/client certificates",
    "convert": "convert docker-compose v1/v2/v3 files into a swarm-mode v3 stack file",
    "deploy": "deploy a compose or stack file onto a swarm over the Docker API",
    "bake": "build a node image with Docker and the application's images preinstalled",
    "up": "boot a cluster (local systemd-nspawn nodes or OpenStack servers)",
    "roll": "replace a cluster's nodes one at a time (a new image, renewed certificates)",
    "down": "remove what `bakery up` created, from its own records",
    "nodes": "list a cluster's nodes, roles and states",
    "completion": "print a bash or zsh completion script",
}

EPILOG = """\
exit codes: 0 ok, 1 operation failed, 2 bad input, 3 warnings with --strict,
4 missing environment (engine, root, cloud), 130 interrupted.
Run `bakery COMMAND --help` for a command's options."""


def _available() -> dict[str, str]:
    """Commands whose module exists in this checkout."""
    here = os.path.join(os.path.dirname(__file__), "commands")
    return {n: s for n, s in COMMANDS.items() if os.path.exists(os.path.join(here, f"{n}.py"))}


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error under `--output json` is also a JSON error on stdout."""

    json_errors = False

    def error(self, message: str) -> NoReturn:
        if _Parser.json_errors:
            print(json.dumps({"ok": False, "exit_code": EXIT_USAGE,
                              "error": {"message": message, "usage": self.format_usage().strip()}}, indent=2))
        super().error(message)


def build_parser(selected: str | None, every: bool = False) -> argparse.ArgumentParser:
    """The parser, with the arguments of the `selected` command only (or of `every` one, for completion)."""
    parser = _Parser(
        prog="bakery",
        description="Docker Swarm-mode clusters on OpenStack: user-data, images, stacks, clusters.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"bakery {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, summary in _available().items():
        p = sub.add_parser(name, help=summary, description=summary[0].upper() + summary[1:] + ".")
        if name == selected or every:
            module = importlib.import_module(f"bakery.commands.{name}")
            if module.__doc__:
                p.description = module.__doc__.strip()
                p.formatter_class = argparse.RawDescriptionHelpFormatter
            module.add_arguments(p)
            p.set_defaults(_run=module.run)
    return parser


def _selected(argv: Sequence[str]) -> str | None:
    for arg in argv:
        if not arg.startswith("-"):
            return arg if arg in COMMANDS else None
    return None


def _subparser(parser: argparse.ArgumentParser, name: str | None) -> argparse.ArgumentParser:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction) and name in action.choices:
            found: argparse.ArgumentParser = action.choices[name]
            return found
    return parser


def _report(args: argparse.Namespace, exc: BakeryError | OSError, code: int) -> int:
    """One line on stderr; with --output json, the error as JSON on stdout as well."""
    text = str(exc) if isinstance(exc, BakeryError) else _os_error_text(exc)
    print(f"bakery {args.command}: error: {text}", file=sys.stderr)
    if getattr(args, "output", None) == "json":
        error = exc.as_dict() if isinstance(exc, UserError) else {"message": text}
        try:
            print(json.dumps({"ok": False, "exit_code": code, "error": error}, indent=2))
            sys.stdout.flush()
        except BrokenPipeError:  # `... --output json | head` closed early: the error is on stderr, the code stands
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return code


def _os_error_text(exc: OSError) -> str:
    where = f" {exc.filename}" if exc.filename else ""
    return f"cannot use{where}: {exc.strerror or exc}"


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    selected = _selected(args_list)
    _Parser.json_errors = any(a in ("--output=json",) for a in args_list) or any(
        a == "--output" and b == "json" for a, b in zip(args_list, args_list[1:], strict=False))
    parser = build_parser(selected)
    args, extra = parser.parse_known_args(args_list)
    if extra:  # the subcommand's usage, not the top level's
        _subparser(parser, selected).error(f"unrecognized arguments: {' '.join(extra)}")
    run = getattr(args, "_run", None)
    if run is None:
        parser.print_help()
        return EXIT_USAGE
    try:
        code: int = run(args)
        return code
    except BakeryError as exc:
        return _report(args, exc, exc.exit_code)
    except KeyboardInterrupt:
        print(f"bakery {args.command}: interrupted", file=sys.stderr)
        if getattr(args, "output", None) == "json":
            print(json.dumps({"ok": False, "exit_code": EXIT_INTERRUPTED, "error": {"message": "interrupted"}}))
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # `bakery render | head` is fine; don't print a traceback.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except OSError as exc:
        # A path the user named (or the machine) refused: one line, never a traceback. Bugs that
        # raise OSError land here too, so the message names the file and the errno's text.
        return _report(args, exc, EXIT_ENVIRONMENT)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
