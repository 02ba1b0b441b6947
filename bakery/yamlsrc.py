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

from .errors import PathPart, UserError, gather

Path_ = tuple[PathPart, ...]

MERGE_TAG = "tag:yaml.org,2002:merge"
_STR_TAG = "tag:yaml.org,2002:str"
_MAX_VALUES = 500_000  # alias bombs expand past any real file (1,000 compose services: ~40k values)
_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
MAP_TAG = "tag:yaml.org,2002:map"
SEQ_TAG = "tag:yaml.org,2002:seq"
_STD_PREFIX = "tag:yaml.org,2002:"
# Collections read as plain mappings and lists: the default tags and the standard set/omap/pairs.
_COLLECTION_TAGS = {MAP_TAG, SEQ_TAG, *(_STD_PREFIX + t for t in ("set", "omap", "pairs"))}
_MAX_DEPTH = 100  # real files nest a few levels; deep enough to be far from Python's recursion limit


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
    # The text of unquoted values YAML read as something other than a string (no -> False).
    plain: dict[Path_, str] = field(default_factory=dict)

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
    """Nodes -> plain data, recording positions and collecting every problem (in the order met)."""

    def __init__(self, source: str, cls: type[UserError]) -> None:
        self.source = source
        self.cls = cls
        self.constructor = yaml.SafeLoader("")
        self.positions: dict[Path_, Position] = {}
        self.key_positions: dict[Path_, Position] = {}
        self.plain: dict[Path_, str] = {}
        self.problems: list[UserError] = []
        self.active: set[int] = set()
        self.count = 0
        self.depth = 0

    def fail(self, node: yaml.Node, path: Path_, message: str, fix: str | None = None) -> UserError:
        mark = node.start_mark
        return self.cls(message, source=self.source, line=mark.line + 1, column=mark.column + 1,
                        path=path, fix=fix)

    def problem(self, node: yaml.Node, path: Path_, message: str, fix: str | None = None) -> None:
        self.problems.append(self.fail(node, path, message, fix))

    def build(self, node: yaml.Node, path: Path_) -> Any:
        self.count += 1
        if self.count > _MAX_VALUES:  # fatal: going on would take exponential time
            raise self.fail(node, path, "too many values (an alias expanding exponentially?)",
                            "write the file without nested aliases")
        mark = node.start_mark
        self.positions.setdefault(path, Position(mark.line + 1, mark.column + 1))
        if isinstance(node, yaml.ScalarNode):
            return node.value if node.tag == _STR_TAG else self.scalar(node, path)
        if node.tag not in _COLLECTION_TAGS:
            self.problem(node, path, f"unsupported tag {_short(node.tag)} on a {_kind(node)}", _NO_TAGS)
            return None
        if id(node) in self.active:
            self.problem(node, path, "recursive alias", "an anchor cannot contain an alias to itself")
            return None
        if self.depth >= _MAX_DEPTH:  # our recursion must stay far from Python's limit
            self.problems.append(self.cls(f"nested more than {_MAX_DEPTH} levels deep", source=self.source,
                                          line=mark.line + 1, column=mark.column + 1, fix=_FLATTEN))
            return None
        self.active.add(id(node))
        self.depth += 1
        try:
            if isinstance(node, yaml.MappingNode):
                return self.mapping(node, path)
            return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
        finally:
            self.depth -= 1
            self.active.discard(id(node))

    def scalar(self, node: yaml.Node, path: Path_) -> Any:
        try:
            value = self.constructor.construct_object(node, deep=True)
        # SafeConstructor's scalar constructors raise whatever int(), float(), a regex match
        # or a dict lookup raise on a bad value (`!!int 12abc`, `!!timestamp nope`,
        # `!!bool maybe`, a 5,000-digit number): all of them are the user's value.
        except Exception as exc:  # noqa: BLE001
            self.problems.append(self.fail(node, path, *_scalar_problem(node, exc)))
            return None
        if not getattr(node, "style", None) and value is not None:
            # Unquoted text that YAML read as something else (no -> False, 1.10 -> 1.1):
            # kept so a schema error can say to quote it, with the user's own text.
            self.plain[path] = node.value
        return value

    def mapping(self, node: yaml.MappingNode, path: Path_) -> dict[str, Any]:
        out: dict[str, Any] = {}
        merged: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == MERGE_TAG:
                for source in self.merge_sources(value_node, path):
                    for k, v in source.items():
                        merged.setdefault(k, v)
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                self.problem(key_node, path, "a mapping key must be a plain value", "quote the key")
                continue
            key = str(key_node.value)
            if key in out:
                self.problem(key_node, (*path, key), f"duplicate key {key!r}",
                             "each key may appear once in a mapping; remove or merge the repeated one")
                continue
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
            built = self.build(item, path) if isinstance(item, yaml.MappingNode) else None
            if isinstance(built, dict):
                out.append(built)
            elif not isinstance(item, yaml.MappingNode):
                self.problem(item, path, "a merge key (<<) takes a mapping or a list of mappings")
        return out


_NO_TAGS = "remove the tag; bakery reads plain YAML: text, numbers, booleans, lists and mappings"
_FLATTEN = "real files nest a few levels; flatten the structure"


def _short(tag: str) -> str:
    return "!!" + tag[len(_STD_PREFIX):] if tag.startswith(_STD_PREFIX) else tag


def _kind(node: yaml.Node) -> str:
    return "mapping" if isinstance(node, yaml.MappingNode) else "list" if isinstance(node, yaml.SequenceNode) \
        else "value"


def _scalar_problem(node: yaml.Node, exc: Exception) -> tuple[str, str]:
    """(message, fix) for a scalar SafeConstructor refused."""
    problem = getattr(exc, "problem", None) if isinstance(exc, yaml.YAMLError) else None
    if problem and "could not determine a constructor" in problem:
        return f"unknown tag {_short(node.tag)}", _NO_TAGS
    text = node.value if len(node.value) <= 40 else node.value[:37] + "..."
    # int()'s and datetime()'s own words say nothing a user needs; a constructor's problem might.
    return (f"cannot read {text!r} as {_short(node.tag)}" + (f": {problem}" if problem else ""),
            "correct the value, or quote it without the tag to make it text")


# Where a YAML syntax error is in one of these, the user needs the place it started
# (an unclosed '[' or '"' is only noticed lines later, often at the end of the file).
_STARTED: dict[str, tuple[str, str]] = {
    "while parsing a flow sequence": ("the [ ] list", "close the list with ']', or quote the value if '[' is text"),
    "while parsing a flow mapping": ("the { } mapping",
                                     "close the mapping with '}', or quote the value if '{' is text"),
    "while parsing a flow node": ("the value", "close every '[' and '{'"),
    "while scanning a quoted scalar": ("the quoted text", "close the quote; inside \"...\" write \\\" for a "
                                       "quote character, inside '...' write ''"),
    "while scanning a simple key": ("the key", "put ': ' after the key, or indent the line more if it "
                                    "continues the value above"),
}
# Otherwise the problem's own place is the one to show; these say how to mend the usual causes.
_FIXES: tuple[tuple[str, str], ...] = (
    ("'\\t'", "YAML indents with spaces only; replace the tab characters"),
    ("tab", "YAML indents with spaces only; replace the tab characters"),
    ("cannot start any token", "quote a value that starts with a character YAML reserves: @, ` or %"),
    ("mapping values are not allowed", "quote a value that contains ': ', or indent this line like the "
                                       "keys above it"),
    ("expected <block end>", "indent this line like the other entries of its mapping or list"),
    ("nesting depth", _FLATTEN),
    ("undefined alias", "define the anchor &name before its first use as *name"),
    ("duplicate anchor", "give each anchor &name its own name"),
)


def _at(mark: Any) -> str:
    return f"line {mark.line + 1}, column {mark.column + 1}"


def _reader_error(exc: yaml.reader.ReaderError, text: str, source: str, cls: type[UserError]) -> UserError:
    """A character YAML refuses (control characters, surrogates); the error knows only its index."""
    line = text.count("\n", 0, exc.position) + 1
    column = exc.position - (text.rfind("\n", 0, exc.position) + 1) + 1
    code = ord(exc.character) if isinstance(exc.character, str) else int(exc.character)
    return cls(f"invalid YAML: character #x{code:04x} is not allowed in YAML", source=source, line=line,
               column=column, fix="remove it; save the file as plain UTF-8 text")


def _yaml_error(exc: yaml.YAMLError, text: str, source: str, cls: type[UserError]) -> UserError:
    """A syntax error at the place a user needs, saying the other place too when there are two."""
    if isinstance(exc, yaml.reader.ReaderError):
        return _reader_error(exc, text, source, cls)
    context: str = getattr(exc, "context", None) or ""
    problem: str = getattr(exc, "problem", None) or str(exc)
    problem_mark: Any = getattr(exc, "problem_mark", None)
    context_mark: Any = getattr(exc, "context_mark", None)
    at_end = problem_mark is None or problem_mark.index >= len(text)
    second = "" if problem_mark is None or context_mark is None or \
        (problem_mark.line, problem_mark.column) == (context_mark.line, context_mark.column) else \
        "the end of the file" if at_end else _at(problem_mark)
    fix = ""
    if context_mark is not None and (context in _STARTED or context.startswith("while scanning a") or at_end):
        mark = context_mark
        noun, fix = _STARTED.get(context, ("", ""))
        message = f"invalid YAML in {noun} that starts here: {problem}" if noun else \
            f"invalid YAML, {context} that starts here: {problem}"
        if second:
            message += f" at {second}"
    else:
        mark, message = problem_mark, f"invalid YAML: {problem}"
        if context and second:
            message = f"{message}, {context} that starts at {_at(context_mark)}" if context.startswith("while ") \
                else f"invalid YAML: {context} at {_at(context_mark)}, {problem} here"  # duplicate anchor
    fix = fix or next((f for needle, f in _FIXES if needle in problem or needle in context), "fix the YAML syntax")
    return cls(message, source=source, line=mark.line + 1 if mark else None,
               column=mark.column + 1 if mark else None, fix=fix)


def _python_error(text: str) -> yaml.YAMLError | None:
    """The pure-Python parser's error for `text`: its messages and marks are the same everywhere."""
    try:
        for _ in yaml.parse(text, Loader=yaml.SafeLoader):  # scanner and parser: no recursion
            pass
        for _ in yaml.compose_all(text, Loader=yaml.SafeLoader):  # anchors and aliases
            pass
    except yaml.YAMLError as exc:
        return exc
    except RecursionError:  # the composer recurses; libyaml's own error is as good
        return None
    return None


def _too_deep(text: str, source: str, cls: type[UserError]) -> UserError | None:
    """Where `text` first nests deeper than we read, found without recursion (None: it does not, up to the
    first syntax error)."""
    depth = 0
    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > _MAX_DEPTH:
                    mark: Any = event.start_mark
                    return cls(f"nested more than {_MAX_DEPTH} levels deep", source=source, line=mark.line + 1,
                               column=mark.column + 1, fix=_FLATTEN)
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
    except yaml.YAMLError:
        pass
    return None


def _flow_too_deep(text: str, source: str, cls: type[UserError]) -> UserError | None:
    """A first, rough look at flow nesting ('[' and '{' outside quotes and comments), in one pass: a text
    that opens more than _MAX_DEPTH of them is refused here, because the pure-Python scanner that words
    syntax errors takes time quadratic in that nesting (10,000 '[' took 35 s)."""
    depth, quote, line, start = 0, "", 1, 0
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if quote:
            if c == quote:
                quote = ""
            elif c == "\\" and quote == '"':
                i += 1
        elif c in "[{":
            depth += 1
            if depth > _MAX_DEPTH:
                return cls(f"nested more than {_MAX_DEPTH} levels deep", source=source, line=line,
                           column=i - start + 1, fix=_FLATTEN)
        elif c in "]}":
            depth = max(0, depth - 1)
        elif c in "'\"" and (i == 0 or text[i - 1] in " \t\n[{,:"):
            quote = c
        elif c == "#" and (i == 0 or text[i - 1] in " \t\n"):
            j = text.find("\n", i)
            i = n if j < 0 else j
            continue
        if c == "\n":
            line, start = line + 1, i + 1
        i += 1
    return None


def loads(text: str, source: str = "<string>", cls: type[UserError] = UserError) -> Document:
    """Parse one YAML document from text. An empty document gives `None` data.

    Composed by libyaml's C parser where PyYAML has it (several times faster on
    big compose files); syntax errors are re-read by the pure-Python parser,
    whose messages are the same everywhere. Every problem of the document's
    values (duplicate keys, bad tagged values, ...) is reported at once, as
    `cls` carrying them in file order.
    """
    try:
        nodes = list(yaml.compose_all(text, Loader=_Loader))
    except (yaml.YAMLError, ValueError) as exc:  # ValueError: libyaml on a lone surrogate
        deep = _flow_too_deep(text, source, cls)
        if deep is not None:
            raise deep from None
        error = _python_error(text) or (exc if isinstance(exc, yaml.YAMLError) else None)
        if error is None:
            raise cls("invalid YAML: unreadable characters", source=source,
                      fix="save the file as plain UTF-8 text") from None
        raise _yaml_error(error, text, source, cls) from None
    except RecursionError:  # only the pure-Python composer, where libyaml is missing
        raise (_too_deep(text, source, cls) or cls("YAML nested too deeply", source=source, fix=_FLATTEN)) from None
    if len(nodes) > 1:
        raise cls("more than one YAML document", source=source,
                  line=nodes[1].start_mark.line + 1 if nodes[1] is not None else None,
                  fix="keep one document per file (remove the '---' separators)")
    builder = _Builder(source, cls)
    data = None
    try:
        data = builder.build(nodes[0], ()) if nodes and nodes[0] is not None else None
    except UserError as exc:  # fatal; reported after what came before it
        builder.problems.append(exc)
    if builder.problems:
        raise gather(builder.problems, cls, source)
    return Document(data, source, builder.positions, builder.key_positions, builder.plain)


# A compose file, bakery.yml, an env file or a node list: far below this. /dev/zero is not one.
MAX_INPUT_BYTES = 8 << 20


def read_bytes(path: str | Path, cls: type[UserError] = UserError, what: str = "file") -> bytes:
    """A user's file, or one clear error: regular files only, at most MAX_INPUT_BYTES."""
    import os
    import stat

    p = Path(path)
    try:
        fd = os.open(p, os.O_RDONLY | os.O_NONBLOCK)  # a FIFO must not block the open
        with os.fdopen(fd, "rb") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                raise cls(f"{p}: not a regular file", fix=f"give the path of the {what}")
            raw = f.read(MAX_INPUT_BYTES + 1)
    except FileNotFoundError:
        raise cls(f"{p}: no such {what}", fix="check the path") from None
    except OSError as exc:
        raise cls(f"{p}: cannot read the {what}: {exc.strerror}") from None
    if len(raw) > MAX_INPUT_BYTES:
        raise cls(f"{p}: larger than {MAX_INPUT_BYTES >> 20} MiB, too large for the {what}", fix="check the path")
    return raw


def read_text(path: str | Path, cls: type[UserError] = UserError, what: str = "file") -> str:
    """A user's file as UTF-8 text (see read_bytes), or one clear error."""
    p = Path(path)
    raw = read_bytes(p, cls, what)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise cls(f"not UTF-8 text (byte {exc.start})", source=str(p), fix="save the file as UTF-8") from None


def load(path: str | Path, cls: type[UserError] = UserError) -> Document:
    return loads(read_text(path, cls), str(path), cls)
