"""Positioned YAML for compose files, on libyaml when it is there.

Same contract as bakery.yamlsrc (a Document with a position for every YAML
path; duplicate keys refused; anchors, aliases and merge keys applied,
explicit keys winning) but composed by libyaml's C parser: a 1,000-service
file loads several times faster, which keeps `bakery convert` near
`docker stack config` in speed. Mapping keys are always strings, as compose
reads them. Any YAML syntax error is re-parsed by bakery.yamlsrc, whose
message (with the tab hint) is the project's standard.
"""

from __future__ import annotations

from typing import Any

import yaml

from .. import yamlsrc
from ..errors import ComposeError
from ..yamlsrc import Document, Path_, Position

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_STR_TAG = "tag:yaml.org,2002:str"
_MAX_VALUES = 500_000  # alias bombs expand past any real compose file (1,000 services: ~40k)


class _Builder:
    def __init__(self, source: str) -> None:
        self.source = source
        self.constructor = yaml.SafeLoader("")
        self.positions: dict[Path_, Position] = {}
        self.key_positions: dict[Path_, Position] = {}
        self.active: set[int] = set()
        self.count = 0

    def fail(self, node: yaml.Node, path: Path_, message: str, fix: str | None = None) -> ComposeError:
        mark = node.start_mark
        return ComposeError(message, source=self.source, line=mark.line + 1, column=mark.column + 1,
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
            if key_node.tag == yamlsrc.MERGE_TAG:
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


def loads(text: str, source: str = "<string>") -> Document:
    """Parse one compose YAML document; an empty document gives `None` data."""
    try:
        nodes = list(yaml.compose_all(text, Loader=_Loader))
    except yaml.YAMLError:
        yamlsrc.loads(text, source, ComposeError)  # raises the standard positioned message
        raise ComposeError("invalid YAML", source=source, fix="fix the YAML syntax") from None
    except (ValueError, RecursionError):  # libyaml on NUL bytes; absurd nesting
        raise ComposeError("invalid YAML: unreadable characters or nesting", source=source,
                           fix="save the file as plain UTF-8 YAML") from None
    if len(nodes) > 1:
        raise ComposeError("more than one YAML document", source=source,
                           line=nodes[1].start_mark.line + 1 if nodes[1] is not None else None,
                           fix="keep one document per file (remove the '---' separators)")
    builder = _Builder(source)
    try:
        data = builder.build(nodes[0], ()) if nodes and nodes[0] is not None else None
    except RecursionError:
        raise ComposeError("YAML nested too deeply", source=source, fix="flatten the file") from None
    return Document(data, source, builder.positions, builder.key_positions)

