"""YAML with positions: every value knows its file, line and column.

PyYAML's composer gives nodes with marks; we construct plain Python data
(SafeLoader semantics, as docker-compose and cloud-init use) and keep a map
from YAML path to position, so every later error can say
`file:line:col services.web.mem_limit: ...`.

Duplicate keys are refused (PyYAML silently keeps the last). Anchors and
aliases resolve as usual; merge keys (`<<`) are applied, explicit keys win.
Mapping keys are always text, as docker-compose and our schemas read them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import PathPart, UserError

Path_ = tuple[PathPart, ...]

MERGE_TAG = "tag:yaml.org,2002:merge"
_STR_TAG = "tag:yaml.org,2002:str"
_MAX_VALUES = 500_000  # alias bombs expand past any real file (1,000 compose services: ~40k values)
_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
MAP_TAG = "tag:yaml.org,2002:map"
SEQ_TAG = "tag:yaml.org,2002:seq"


@dataclass(frozen=True)
class Position:
    line: int  # 1-based
    column: int  # 1-based


@dataclass
class Document:
    """Parsed YAML plus where each value came from."""

    data: Any
    source: str
    positions: dict[Path_, Position] = field(default_factory=dict)
    key_positions: dict[Path_, Position] = field(default_factory=dict)

    def where(self, path: Sequence[PathPart]) -> Position | None:
        """The position of `path`, or of its nearest ancestor that has one."""
        p = tuple(path)
        while True:
            pos = self.positions.get(p)
            if pos is not None:
                return pos
            if not p:
                return None
            p = p[:-1]

    def where_key(self, path: Sequence[PathPart]) -> Position | None:
        return self.key_positions.get(tuple(path)) or self.where(path)

    def error(
        self,
        path: Sequence[PathPart],
        message: str,
        fix: str | None = None,
        *,
        key: bool = False,
        cls: type[UserError] = UserError,
    ) -> UserError:
        pos = self.where_key(path) if key else self.where(path)
        return cls(
            message,
            source=self.source,
            line=pos.line if pos else None,
            column=pos.column if pos else None,
            path=path,
            fix=fix,
        )


class _Builder:
    def __init__(self, source: str, cls: type[UserError]) -> None:
        self.source = source
        self.cls = cls
        self.constructor = yaml.SafeLoader("")
        self.positions: dict[Path_, Position] = {}
        self.key_positions: dict[Path_, Position] = {}
        self.active: set[int] = set()
        self.count = 0

    def fail(self, node: yaml.Node, path: Path_, message: str, fix: str | None = None) -> UserError:
        mark = node.start_mark
        return self.cls(message, source=self.source, line=mark.line + 1, column=mark.column + 1,
                            path=path, fix=fix)

    def build(self, node: yaml.Node, path: Path_) -> Any:
        self.count += 1
        if self.count > _MAX_VALUES:
            raise self.fail(node, path, "too many values (an alias expanding exponentially?)",
                            "write the file without nested aliases")
        mark = node.start_mark
        self.positions.setdefault(path, Position(mark.line + 1, mark.column + 1))
        if isinstance(node, yaml.ScalarNode):
            return node.value if node.tag == _STR_TAG else self.scalar(node, path)
        if id(node) in self.active:
            raise self.fail(node, path, "recursive alias", "an anchor cannot contain an alias to itself")
        self.active.add(id(node))
        try:
            if isinstance(node, yaml.MappingNode):
                return self.mapping(node, path)
            return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
        finally:
            self.active.discard(id(node))

    def scalar(self, node: yaml.Node, path: Path_) -> Any:
        try:
            return self.constructor.construct_object(node, deep=True)
        except yaml.YAMLError as exc:
            problem = getattr(exc, "problem", None) or str(exc)
            raise self.fail(node, path, f"cannot read this value: {problem}",
                            "quote the value to make it a string") from None

    def key(self, node: yaml.Node, path: Path_) -> str:
        if not isinstance(node, yaml.ScalarNode):
            raise self.fail(node, path, "a mapping key must be a plain value", "quote the key")
        return str(node.value)

    def mapping(self, node: yaml.MappingNode, path: Path_) -> dict[str, Any]:
        out: dict[str, Any] = {}
        merged: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == MERGE_TAG:
                for source in self.merge_sources(value_node, path):
                    for k, v in source.items():
                        merged.setdefault(k, v)
                continue
            key = self.key(key_node, path)
            if key in out:
                raise self.fail(key_node, (*path, key), f"duplicate key {key!r}",
                                "each key may appear once in a mapping; remove or merge the repeated one")
            mark = key_node.start_mark
            self.key_positions[(*path, key)] = Position(mark.line + 1, mark.column + 1)
            out[key] = self.build(value_node, (*path, key))
        for k, v in merged.items():
            out.setdefault(k, v)
        return out

    def merge_sources(self, node: yaml.Node, path: Path_) -> list[dict[str, Any]]:
        items = node.value if isinstance(node, yaml.SequenceNode) else [node]
        out = []
        for item in items:
            if not isinstance(item, yaml.MappingNode):
                raise self.fail(item, path, "a merge key (<<) takes a mapping or a list of mappings")
            out.append(self.build(item, path))
        return out



def _yaml_error(exc: yaml.YAMLError, source: str, cls: type[UserError]) -> UserError:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    fix = "fix the YAML syntax"
    if "\t" in problem or "\\t" in problem or "tab" in problem:
        fix = "YAML indents with spaces only; replace the tab characters"
    return cls(
        f"invalid YAML: {problem}",
        source=source,
        line=mark.line + 1 if mark else None,
        column=mark.column + 1 if mark else None,
        fix=fix,
    )


def loads(text: str, source: str = "<string>", cls: type[UserError] = UserError) -> Document:
    """Parse one YAML document from text. An empty document gives `None` data.

    Composed by libyaml's C parser where PyYAML has it (several times faster on
    big compose files); syntax errors are re-read by the pure-Python parser,
    whose messages are the same everywhere.
    """
    try:
        nodes = list(yaml.compose_all(text, Loader=_Loader))
    except yaml.YAMLError:
        try:
            list(yaml.compose_all(text, Loader=yaml.SafeLoader))
        except yaml.YAMLError as exc:
            raise _yaml_error(exc, source, cls) from None
        raise cls("invalid YAML", source=source, fix="fix the YAML syntax") from None
    except (ValueError, RecursionError):  # libyaml on NUL bytes; absurd nesting
        raise cls("invalid YAML: unreadable characters or nesting", source=source,
                  fix="save the file as plain UTF-8 YAML") from None
    if len(nodes) > 1:
        raise cls("more than one YAML document", source=source,
                  line=nodes[1].start_mark.line + 1 if nodes[1] is not None else None,
                  fix="keep one document per file (remove the '---' separators)")
    builder = _Builder(source, cls)
    try:
        data = builder.build(nodes[0], ()) if nodes and nodes[0] is not None else None
    except RecursionError:
        raise cls("YAML nested too deeply", source=source, fix="flatten the file") from None
    return Document(data, source, builder.positions, builder.key_positions)


def read_text(path: str | Path, cls: type[UserError] = UserError) -> str:
    """A user's file as UTF-8 text, or one clear error."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise cls(f"{p}: no such file", fix="check the path") from None
    except OSError as exc:
        raise cls(f"{p}: cannot read: {exc.strerror}") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise cls(f"not UTF-8 text (byte {exc.start})", source=str(p), fix="save the file as UTF-8") from None


def load(path: str | Path, cls: type[UserError] = UserError) -> Document:
    return loads(read_text(path, cls), str(path), cls)
