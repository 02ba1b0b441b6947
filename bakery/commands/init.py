"""Write a commented starter cluster definition.

Every key is shown with its default and a comment; edit what you need and
pass it to other commands with --config (or keep it as ./bakery.yml).
"""

from __future__ import annotations

import argparse
import sys
from importlib import resources
from pathlib import Path

from ..errors import EXIT_OK, UserError


def starter_text() -> str:
    return resources.files("bakery").joinpath("starter.yml").read_text(encoding="utf-8")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("path", nargs="?", default="bakery.yml", help="where to write it, or - for stdout "
                   "(default: bakery.yml)")
    p.add_argument("--force", action="store_true", help="overwrite an existing file")


def run(args: argparse.Namespace) -> int:
    text = starter_text()
    if args.path == "-":
        sys.stdout.write(text)
        return EXIT_OK
    path = Path(args.path)
    if path.is_dir():
        raise UserError(f"{path} is a directory", fix=f"give a file name, e.g. {path / 'bakery.yml'}")
    if path.exists() and not args.force:
        raise UserError(f"{path} already exists", fix="use --force to overwrite it, or give another path")
    if not path.parent.is_dir():
        raise UserError(f"cannot write {path}: the directory {path.parent} does not exist",
                        fix=f"create it first (mkdir -p {path.parent}) or give another path")
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UserError(f"cannot write {path}: {exc.strerror}", fix="give a path you can write") from None
    print(f"bakery init: wrote {path}; render with: bakery render --role seed --config {path}", file=sys.stderr)
    return EXIT_OK
