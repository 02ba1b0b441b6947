"""Variable interpolation and .env files, as docker-compose 1.x and Docker Compose v2 do them.

`$VAR`, `${VAR}`, `${VAR:-default}` (unset or empty), `${VAR-default}`
(unset), `${VAR:?message}`, `${VAR?message}` (fail), `$$` (a literal `$`).
For version 1, 2.x and 3.x files (docker-compose 1.x), defaults are not
interpolated again. Compose Specification files (`spec=True`, Docker Compose
v2) also take `${VAR:+replacement}` (set and not empty), `${VAR+replacement}`
(set), and nested defaults such as `${A:-${B:-x}}`. Only values are
interpolated, never keys, and only in the sections compose interpolates
(services, networks, volumes, secrets, configs; and `name`, `include` in the
Compose Specification). Unset variables become "" with a warning.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ComposeError
from ..report import Report
from ..yamlsrc import Document, Path_, read_text

_PATTERN = re.compile(
    r"\$(?:(?P<escaped>\$)|(?P<named>[_a-z][_a-z0-9]*)|\{(?P<braced>[_a-z][_a-z0-9]*)"
    r"(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}|(?P<invalid>))",
    re.IGNORECASE,
)
_ENV_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*\Z")
_ANY_KEY = re.compile(r"^[^\s=]+\Z")  # env_file entries reach the container as written
SECTIONS = ("services", "networks", "volumes", "secrets", "configs")
SPEC_SECTIONS = (*SECTIONS, "name", "include")
_NAME = re.compile(r"[_a-z][_a-z0-9]*", re.IGNORECASE)
_OPS = (":-", ":?", ":+", "-", "?", "+")
_FORMATS = "write ${VAR}, $VAR, ${VAR:-default}, ${VAR:+other} or ${VAR:?message}; $$ for a literal $"
_V3_FORMATS = "write ${VAR}, $VAR, ${VAR:-default} or ${VAR:?message}; $$ for a literal $"


@dataclass
class _Unset:
    """First place an unset variable was used, and how often."""

    path: Path_
    count: int = 1


# Values docker's loaders read as numbers or booleans after interpolation (`replicas: ${R:-2}` is
# the number 2, `read_only: "true"` true): their paths below a service (`#` a list item, `*` any
# key) and below a top-level network/volume/secret/config, and what they become.
_INT, _FLOAT, _BOOL = "int", "float", "bool"
_SERVICE_CASTS: dict[tuple[str, ...], str] = {
    ("deploy", "replicas"): _INT, ("deploy", "update_config", "parallelism"): _INT,
    ("deploy", "rollback_config", "parallelism"): _INT, ("deploy", "restart_policy", "max_attempts"): _INT,
    ("deploy", "placement", "max_replicas_per_node"): _INT, ("deploy", "update_config", "max_failure_ratio"): _FLOAT,
    ("deploy", "rollback_config", "max_failure_ratio"): _FLOAT, ("healthcheck", "retries"): _INT,
    ("healthcheck", "disable"): _BOOL, ("ports", "#", "target"): _INT, ("ports", "#", "published"): _INT,
    ("configs", "#", "mode"): _INT, ("secrets", "#", "mode"): _INT, ("ulimits", "*"): _INT,
    ("ulimits", "*", "soft"): _INT, ("ulimits", "*", "hard"): _INT, ("scale",): _INT, ("pids_limit",): _INT,
    ("cpus",): _FLOAT, ("privileged",): _BOOL, ("read_only",): _BOOL, ("stdin_open",): _BOOL, ("tty",): _BOOL,
    ("init",): _BOOL, ("volumes", "#", "read_only"): _BOOL, ("volumes", "#", "volume", "nocopy"): _BOOL,
    ("depends_on", "*", "restart"): _BOOL, ("depends_on", "*", "required"): _BOOL,
}
_TOP_CASTS = {"external": _BOOL, "internal": _BOOL, "attachable": _BOOL}
_CAST_LEAVES = frozenset(k[-1] for k in _SERVICE_CASTS) | frozenset(_TOP_CASTS) | {"*"}
_TRUE, _FALSE = ("y", "yes", "true", "on"), ("n", "no", "false", "off")


def _cast_kind(path: Path_, v1: bool) -> str | None:
    """What the value at `path` is read as, if it is one of those."""
    if not path or (path[-1] not in _CAST_LEAVES and (len(path) < 2 or path[-2] != "ulimits")):
        return None
    if path[0] in ("networks", "volumes", "secrets", "configs") and len(path) == 3 and not v1:
        return _TOP_CASTS.get(str(path[2]))
    below = path[1:] if v1 else path[2:] if path[0] == "services" else None
    if not below:
        return None
    pattern = tuple("#" if isinstance(p, int) else str(p) for p in below)
    found = _SERVICE_CASTS.get(pattern)
    if found is None and len(pattern) >= 2 and pattern[0] in ("ulimits", "depends_on"):  # keyed by name
        found = _SERVICE_CASTS.get((pattern[0], "*", *pattern[2:]))
    return found


def cast(text: str, kind: str) -> Any:
    """`text` as that kind when it reads as one (else left as text, for the schema to refuse located)."""
    t = text.strip()
    if kind == _INT and re.fullmatch(r"[-+]?[0-9]+", t):
        return int(t)
    if kind == _FLOAT and re.fullmatch(r"[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?", t):
        return float(t)
    if kind == _BOOL and t.lower() in _TRUE + _FALSE:
        return t.lower() in _TRUE
    return text


class Interpolator:
    def __init__(self, doc: Document, environ: Mapping[str, str], *, spec: bool = False, v1: bool = False) -> None:
        self.v1 = v1
        self.doc = doc
        self.environ = environ
        self.spec = spec
        self.unset: dict[str, _Unset] = {}
        self.problems: list[ComposeError] = []
        self.unset_at: dict[Path_, list[str]] = {}  # every value an unset variable was emptied in

    def text(self, value: str, path: Path_) -> str:
        if "$" not in value:
            return value
        if self.spec:
            return self._spec(value, value, path)
        return _PATTERN.sub(lambda m: self._one(m, value, path), value)

    def _bad(self, value: str, path: Path_) -> ComposeError:
        err = self.doc.error(path, f"invalid interpolation format in {value!r}",
                             _FORMATS if self.spec else _V3_FORMATS, cls=ComposeError)
        assert isinstance(err, ComposeError)
        return err

    def _spec(self, text: str, value: str, path: Path_) -> str:
        """Docker Compose v2's substitution: operands are substituted too, so defaults nest."""
        out: list[str] = []
        i = 0
        while True:
            j = text.find("$", i)
            if j < 0:
                out.append(text[i:])
                return "".join(out)
            out.append(text[i:j])
            nxt = text[j + 1:j + 2]
            if nxt == "$":
                out.append("$")
                i = j + 2
                continue
            if nxt == "{":
                end = _closing(text, j + 2)
                if end < 0:
                    raise self._bad(value, path)
                out.append(self._braced(text[j + 2:end], value, path))
                i = end + 1
                continue
            m = _NAME.match(text, j + 1)
            if m is None:
                raise self._bad(value, path)
            out.append(self._lookup(m.group(0), None, "", value, path))
            i = m.end()

    def _braced(self, body: str, value: str, path: Path_) -> str:
        m = _NAME.match(body)
        if m is None:
            raise self._bad(value, path)
        rest = body[m.end():]
        if not rest:
            return self._lookup(m.group(0), None, "", value, path)
        op = next((o for o in _OPS if rest.startswith(o)), None)
        if op is None:
            raise self._bad(value, path)
        return self._lookup(m.group(0), op, rest[len(op):], value, path)

    def _operand(self, arg: str, value: str, path: Path_) -> str:
        """A default, replacement or message: substituted again in the Compose Specification only."""
        return self._spec(arg, value, path) if self.spec else arg

    def _lookup(self, name: str, op: str | None, arg: str, value: str, path: Path_) -> str:
        """One variable: `$NAME`, or `${NAME<op><arg>}` for the operators of `_OPS`."""
        current = self.environ.get(name)
        empty = current is None or (current == "" and op is not None and op.startswith(":"))
        if op is not None and op.endswith("-"):
            return self._operand(arg, value, path) if empty else str(current)
        if op is not None and op.endswith("+"):
            return "" if empty else self._operand(arg, value, path)
        if op is not None and op.endswith("?"):
            if empty:
                message = self._operand(arg, value, path) or "not set"
                raise self.doc.error(path, f"required variable {name} is missing a value: {message}",
                                     f"set {name} in the environment, the .env file or --env-file",
                                     cls=ComposeError)
            return str(current)
        if current is None:
            self._note_unset(name, path)
            return ""
        return current

    def _note_unset(self, name: str, path: Path_) -> None:
        seen = self.unset.get(name)
        if seen is None:
            self.unset[name] = _Unset(path)
        else:
            seen.count += 1
        names = self.unset_at.setdefault(path, [])
        if name not in names:
            names.append(name)

    def _one(self, m: re.Match[str], value: str, path: Path_) -> str:
        if m.group("escaped"):
            return "$"
        if m.group("invalid") is not None:
            raise self._bad(value, path)
        return self._lookup(m.group("named") or m.group("braced"), m.group("op"), m.group("arg") or "", value, path)

    def collect(self, value: str, path: Path_) -> str:
        """`text`, keeping a bad value's problem (reported with the others) instead of stopping."""
        try:
            return self.text(value, path)
        except ComposeError as exc:
            self.problems.append(exc)
            return value

    def walk(self, value: Any, path: Path_) -> Any:
        """Interpolate every string in `value`, in place where it is a container (most hold no `$`);
        a string where docker's loader wants a number or a boolean is read as one (`_SERVICE_CASTS`)."""
        if isinstance(value, str):
            return self._string(value, path)
        if isinstance(value, dict):
            for k, v in value.items():
                if isinstance(v, str):
                    if "$" in v or k in _CAST_LEAVES or (path and path[-1] == "ulimits"):
                        value[k] = self._string(v, (*path, k))
                elif isinstance(v, dict | list):
                    self.walk(v, (*path, k))
        elif isinstance(value, list):
            for i, v in enumerate(value):
                if isinstance(v, str):
                    if "$" in v:
                        value[i] = self.collect(v, (*path, i))
                elif isinstance(v, dict | list):
                    self.walk(v, (*path, i))
        return value

    def _string(self, value: str, path: Path_) -> Any:
        text = self.collect(value, path) if "$" in value else value
        kind = _cast_kind(path, self.v1)
        return cast(text, kind) if kind is not None and isinstance(text, str) else text

    def report_unset(self, report: Report) -> None:
        for name, seen in sorted(self.unset.items()):
            pos = self.doc.where(seen.path)
            times = f" ({seen.count} uses)" if seen.count > 1 else ""
            report.warn(f"variable {name} is not set; substituting an empty string{times}",
                        code="compose.variable.unset", source=self.doc.source,
                        line=pos.line if pos else None, column=pos.column if pos else None,
                        path=seen.path, fix=f"set {name} in the environment, the .env file or --env-file")


def _closing(text: str, start: int) -> int:
    """The index of the `}` closing a `${` whose body starts at `start`, or -1."""
    depth = 1
    i = start
    while i < len(text):
        if text.startswith("${", i):
            depth += 1
            i += 2
            continue
        if text[i] == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return -1


@dataclass(frozen=True)
class Interpolated:
    """What interpolating a document found: its problems, and where unset variables emptied values."""

    problems: list[ComposeError]
    unset_at: dict[Path_, list[str]]


def interpolate(doc: Document, environ: Mapping[str, str], report: Report, *, v1: bool = False,
                spec: bool = False) -> Interpolated:
    """Interpolate `doc.data` in place (its positions stay valid: only scalars change).

    Returns the problems (bad `$` formats, required variables without a value), for the
    loader to report together with the schema's; the values they are in are left as written.
    """
    if not isinstance(doc.data, dict):
        return Interpolated([], {})
    interp = Interpolator(doc, environ, spec=spec, v1=v1)
    if v1:
        doc.data = interp.walk(doc.data, ())
    else:
        for section in SPEC_SECTIONS if spec else SECTIONS:
            if section in doc.data:
                doc.data[section] = interp.walk(doc.data[section], (section,))
    interp.report_unset(report)
    return Interpolated(interp.problems, interp.unset_at)


def parse_env_file(path: Path, *, names_only: bool = True, lookup: Mapping[str, str] | None = None
                   ) -> dict[str, str | None]:
    """Read KEY=VALUE lines (comments, blanks and `export ` allowed; matching quotes stripped).

    As docker-compose 1.29 (python-dotenv) and Docker Compose v2 do: an unquoted value ends at
    ` #` (a comment), and `${VAR}` / `${VAR:-default}` in an unquoted or double-quoted value is
    replaced by an earlier line's value, else `lookup`'s (the environment), else the default or "".
    Single-quoted values are literal.

    A bare `KEY` line gives None: the value comes from the deploying shell.
    `names_only=False` (a service's env_file) also takes keys such as the
    classic-Swarm hint `constraint:node`.
    """
    text = read_text(path, ComposeError, "env file")
    out: dict[str, str | None] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        line = line.removeprefix("export ").lstrip()
        key, sep, value = line.partition("=")
        key = key.strip()
        if not (_ENV_KEY if names_only else _ANY_KEY).match(key):
            raise ComposeError(f"{key!r} is not a variable name", source=str(path), line=number, column=1,
                               fix="write KEY=VALUE with a name of letters, digits and _")
        if not sep:
            out[key] = None
            continue
        value = value.strip()
        quote = value[0] if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"" else ""
        if quote:
            value = value[1:-1]
        else:
            value = _ENV_COMMENT.split(value, maxsplit=1)[0].strip()
        if quote != "'" and "${" in value:
            value = _ENV_REF.sub(lambda m: _env_ref(m, out, lookup or {}), value)
        out[key] = value
    return out


_ENV_COMMENT = re.compile(r"\s+#")
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def _env_ref(m: re.Match[str], earlier: Mapping[str, str | None], lookup: Mapping[str, str]) -> str:
    name, default = m.group(1), m.group(2)
    value = earlier.get(name)
    if value is None:
        value = lookup.get(name)
    if not value and default is not None:
        return default
    return value or ""
