"""The stack as YAML: deterministic bytes, the layout `docker stack config` prints.

`version` first, then services, networks, volumes, secrets, configs and
`x-bakery`; inside those, keys are sorted. A stack is plain data (mappings,
lists, strings, numbers, booleans, null), so a small block-style emitter
does the job several times faster than PyYAML's representer. A string is
written plain only when YAML reads it back as the same string (checked with
PyYAML's own resolver); otherwise it is double-quoted JSON, which is valid
YAML. tests/unit/test_compose_emit.py round-trips it through yaml.safe_load.
"""

from __future__ import annotations

import json
import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

TOP_ORDER = ("version", "services", "networks", "volumes", "secrets", "configs", "x-bakery")
_PLAIN = re.compile(r"^[A-Za-z0-9_./$(][A-Za-z0-9_./@:=!+,$()\-]*\Z")
_STR_TAG = "tag:yaml.org,2002:str"
# Characters YAML does not allow raw, or reads as line breaks (json.dumps already escapes < 0x20).
_NON_PRINTABLE = re.compile(r"[\x7f-\x9f\u2028\u2029\ud800-\udfff\ufeff\ufffe\uffff]")
_RESOLVER = yaml.resolver.Resolver()
# What a YAML 1.2 reader (docker's go-yaml) takes for a number or a special value where PyYAML's
# YAML 1.1 rules see a string: `1e3`, `1234e5`, `0o17`, `.5E3`, `+.inf`. Quoted, or docker reads 1000.
_YAML12_NOT_STR = re.compile(r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|0o[0-7]+|0x[0-9a-fA-F]+"
                             r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))\Z")
_LONG_KEY = 1000  # YAML caps an implicit key at 1,024 characters: longer ones are written as `? key`


def _sorted(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _sorted(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_sorted(v) for v in value]
    return value


def escape_dollars(value: Any) -> Any:
    """`docker stack deploy` interpolates the stack file again: a literal $ must be $$."""
    if isinstance(value, str):
        return value.replace("$", "$$")
    if isinstance(value, dict):
        return {k: escape_dollars(v) for k, v in value.items()}
    if isinstance(value, list):
        return [escape_dollars(v) for v in value]
    return value


def stack_file(data: dict[str, Any]) -> dict[str, Any]:
    """The stack file's form of stack data: `$` escaped (docker interpolates the file again), and
    depends_on a list, its conditions kept for `bakery deploy` in `x-bakery` (a v3 file has none),
    like the pattern hints behind the node labels the constraints name (`node_labels`)."""
    services, conditions = {}, {}
    for name, svc in (data.get("services") or {}).items():
        depends = svc.get("depends_on")
        if isinstance(depends, dict):
            conditions[name] = {dep: spec["condition"] for dep, spec in depends.items()}
            svc = {**svc, "depends_on": sorted(depends)}
        services[name] = svc
    node_labels = data.get("node_labels")
    out = {k: escape_dollars(v) for k, v in {**data, "services": services}.items() if k != "node_labels"}
    side: dict[str, Any] = {}  # bakery's own, but docker interpolates x- keys too
    if conditions:
        side["depends_on"] = conditions
    if node_labels:  # pattern hints (a regex may end in $): bakery deploy labels the nodes they admit
        side["node_labels"] = escape_dollars(node_labels)
    if side:
        out["x-bakery"] = side
    return ordered(out)


def rebase(stack: dict[str, Any], src: Path, dest: Path) -> dict[str, Any]:
    """The stack file moved from folder `src` to `dest`: relative host paths (bind sources,
    secret and config files) still name the same place, since docker resolves them against
    the folder of the stack file."""
    if src.resolve() == dest.resolve():
        return stack

    def moved(path: str, any_relative: bool = False) -> str:
        """A relative path (in the short volume syntax only one that starts with `.`: `data:` is a
        volume's name there) named from `dest`; absolute and `~` paths stay as they are."""
        if not path or path.startswith(("/", "~")) or (not any_relative and not path.startswith(".")):
            return path
        rel = os.path.relpath(src.resolve() / path, dest.resolve())
        return rel if rel.startswith(".") else "./" + rel

    def volume(entry: Any) -> Any:
        if isinstance(entry, dict):
            bind = entry.get("type") == "bind" and isinstance(entry.get("source"), str)
            return {**entry, "source": moved(entry["source"], any_relative=True)} if bind else entry
        source, sep, rest = str(entry).partition(":")
        return f"{moved(source)}:{rest}" if sep else entry

    out = dict(stack)
    out["services"] = {name: {**svc, "volumes": [volume(v) for v in svc["volumes"]]} if svc.get("volumes") else svc
                       for name, svc in stack.get("services", {}).items()}
    for kind in ("secrets", "configs"):
        if kind in stack:
            out[kind] = {k: {**v, "file": moved(v["file"], any_relative=True)}
                         if isinstance(v, dict) and isinstance(v.get("file"), str)
                         else v for k, v in stack[kind].items()}
    return out


def ordered(stack: dict[str, Any]) -> dict[str, Any]:
    """The stack with the top-level order above and every mapping below it sorted."""
    keys = [k for k in TOP_ORDER if k in stack] + sorted(k for k in stack if k not in TOP_ORDER)
    return {k: _sorted(stack[k]) for k in keys}


@lru_cache(maxsize=65536)
def _string(text: str) -> str:
    if (_PLAIN.fullmatch(text) and not text.endswith(":") and ": " not in text
            and _RESOLVER.resolve(yaml.ScalarNode, text, (True, False)) == _STR_TAG
            and not _YAML12_NOT_STR.match(text)):
        return text
    quoted = json.dumps(text, ensure_ascii=False)
    return _NON_PRINTABLE.sub(lambda m: f"\\u{ord(m.group()):04x}", quoted)


def _scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value) if value == value and value not in (float("inf"), float("-inf")) else ".nan"
    return _string(str(value))


def _emit(value: Any, indent: str, out: list[str], top: bool = False) -> None:
    """Append the lines of a block mapping (keys sorted unless `top`) or sequence at `indent`."""
    if isinstance(value, dict):
        for key in value if top else sorted(value):
            item = value[key]
            text = _string(str(key))
            if len(text) > _LONG_KEY:  # an explicit key: no length limit
                out.append(f"{indent}? {text}")
                _item(f"{indent}:", item, indent + "  ", indent + "  ", out)
                continue
            head = f"{indent}{text}:"
            _item(head, item, indent + "  ", indent, out)
    else:
        for item in value:
            if isinstance(item, dict) and item:
                lines: list[str] = []
                _emit(item, indent + "  ", lines)
                lines[0] = f"{indent}- {lines[0][len(indent) + 2:]}"
                out.extend(lines)
            else:
                _item(f"{indent}-", item, indent + "  ", indent, out)


def _item(head: str, item: Any, child: str, indent: str, out: list[str]) -> None:
    if isinstance(item, dict | list) and item:
        out.append(head)
        _emit(item, indent if isinstance(item, list) and not head.endswith("-") else child, out)
    elif isinstance(item, dict):
        out.append(f"{head} {{}}")
    elif isinstance(item, list):
        out.append(f"{head} []")
    else:
        out.append(f"{head} {_scalar(item)}")


def dumps(stack: dict[str, Any]) -> str:
    keys = [k for k in TOP_ORDER if k in stack] + sorted(k for k in stack if k not in TOP_ORDER)
    lines: list[str] = []
    _emit({k: stack[k] for k in keys}, "", lines, top=True)
    return "\n".join(lines) + "\n" if lines else "{}\n"
