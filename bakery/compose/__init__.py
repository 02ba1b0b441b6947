"""docker-compose v1/v2.x/v3 files into swarm-mode v3 stack files, with a loss report.

    result = convert_files([Path("docker-compose.yml")])
    result.stack    # plain data, exactly what is written as YAML (emit.dumps)
    result.model    # the same stack typed (bakery.stack): what `bakery deploy` deploys
    result.report   # what was kept, approximated and dropped, with file:line:col

Pipeline: source (positioned YAML) -> loader (version, interpolation,
schema) -> merge (extends, -f files) -> service/network (keys table driven)
-> stack data -> stack.load (the typed model, every value checked) -> its two
emitters: stack.emit + emit.stack_file (the file: `$` escaped, x-bakery) and
swarm.specs (the Engine API). Nothing here imports docker or openstacksdk.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..errors import BakeryError, ComposeError, StrictError
from ..report import Report
from ..stack import emit as emit_stack
from ..stack import load as load_stack
from .convert import convert_project, locator
from .emit import dumps, stack_file
from .interpolate import parse_env_file
from .merge import Unset, load
from .model import ConvertResult, NodeInfo

__all__ = ["ConvertResult", "NodeInfo", "StrictWarnings", "convert_files", "dumps"]


class StrictWarnings(StrictError):
    """`strict=True` and the conversion gave warnings; the result is attached."""

    def __init__(self, result: ConvertResult) -> None:
        count = len(result.report.warnings)
        super().__init__(f"{count} warning(s) and --strict was given; first: {result.report.warnings[0]}")
        self.result = result


def _environ(paths: list[Path], env_files: list[Path], environ: Mapping[str, str] | None) -> dict[str, str]:
    """Variables for interpolation: --env-file (or the .env beside the first file), then the process."""
    files = list(env_files)
    if not files and paths:
        dotenv = paths[0].parent / ".env"
        if dotenv.is_file():
            files = [dotenv]
    merged: dict[str, str] = {}
    process = os.environ if environ is None else environ
    for f in files:
        merged.update({k: v for k, v in parse_env_file(f, lookup=process).items() if v is not None})
    merged.update(process)
    return merged


def _name_unset(exc: ComposeError, unset: Unset) -> ComposeError:
    """A value an unset variable emptied is often what conversion refuses: say which variable."""
    names: list[str] = []
    for path, found in unset.get(exc.source or "", {}).items():
        if exc.path and tuple(path[:len(exc.path)]) == tuple(exc.path):
            names += [n for n in found if n not in names]
    if not names:
        return exc
    listed = ", ".join(names)
    word = "variable" if len(names) == 1 else "variables"
    fix = f"set {listed} in the environment, the .env file or --env-file"
    return ComposeError(f"{exc.message} ({word} {listed} not set)", source=exc.source, line=exc.line,
                        column=exc.column, path=exc.path, fix=f"{fix}; {exc.fix}" if exc.fix else fix)


def _checked(stack: dict[str, Any]) -> dict[str, Any]:
    """The file as written, held to the v3 schema of its version (Docker's rules, compose/schemagen)
    before anything is written: a file Docker would refuse is never an exit 0. The model's values
    are checked when loaded, so a refusal here is bakery's own fault, and says so."""
    from ..yamlsrc import Document
    from .validate import problems

    found = problems(Document(stack, "<the stack file bakery wrote>"), str(stack["version"]))
    if found:
        raise BakeryError(f"bakery wrote a stack file its own compose {stack['version']} schema refuses "
                          f"({found[0].message}, at {'.'.join(map(str, found[0].path or ()))}); nothing was "
                          "written. This is a bug in bakery: please report it with the input file")
    return stack


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Loading builds many small acyclic objects; the cyclic GC's passes over
    them cost as much as the parsing itself (measured: 2-3x on 1,000 services)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def convert_files(
    paths: list[Path],
    *,
    env_files: list[Path] | None = None,
    environ: Mapping[str, str] | None = None,
    strict: bool = False,
    image_prefix: str | None = None,
    nodes: Sequence[NodeInfo] | None = None,
    publish_mode: str = "ingress",
    profiles: Sequence[str] | None = None,
) -> ConvertResult:
    """Load, merge and convert compose files. Raises ComposeError for bad input.

    `profiles`: the Compose Specification's active profiles (else $COMPOSE_PROFILES)."""
    paths = [Path(p) for p in paths]
    report = Report()
    with _gc_paused():
        project, unset = load(paths, _environ(paths, [Path(p) for p in env_files or []], environ), report,
                              profiles)
        try:
            data, version, hints = convert_project(project, report, nodes=nodes, image_prefix=image_prefix,
                                                   publish_mode=publish_mode)
            model = load_stack(data, locator(project, hints))
        except ComposeError as exc:
            raise _name_unset(exc, unset) from None
        # The file is written from the model (what deploy deploys), not from the converter's data.
        file_data = emit_stack.data(model, version)
        stack = _checked(stack_file(file_data))
    result = ConvertResult(stack=stack, model=model, report=report, version=file_data["version"],
                           source_version=project.version)
    if strict and report.warnings:
        raise StrictWarnings(result)
    return result
