"""A small, exact YAML emitter for bakery's own cloud-config.

PyYAML's pure-Python emitter dominated render time, and its C emitter may
format differently from one machine to the next; our documents are a fixed
shape (mappings, lists, strings, numbers, booleans), so we emit them
ourselves: multi-line strings as literal blocks (readable units and
scripts), everything else as JSON scalars, which are valid YAML. The tests
parse every document back with PyYAML and compare.
"""

from __future__ import annotations

import json
import re
from typing import Any

from yaml.nodes import ScalarNode
from yaml.resolver import Resolver

_PLAIN = re.compile(r"[A-Za-z_/][A-Za-z0-9_./@+-]*\Z")  # \Z: a trailing newline is never plain
_RESOLVER = Resolver()
_NON_PRINTABLE = re.compile("[\x7f-\x9f\u2028\u2029\ud800-\udfff\ufffe\uffff]")

_PRINTABLE_EXTRA = {"\n", "\t"}


def _block_ok(text: str) -> bool:
    if not text or "\n" not in text or text.strip("\n") == "":
        return False
    if any(line.endswith((" ", "\t")) for line in text.split("\n")):
        return False  # trailing blanks are legal but fragile; keep them exact in JSON form
    return all(ch.isprintable() or ch in _PRINTABLE_EXTRA for ch in text) and "\r" not in text


def _block(text: str, indent: str) -> str:
    body = text[:-1] if text.endswith("\n") else text
    chomp = "" if text.endswith("\n") and not text.endswith("\n\n") else ("-" if not text.endswith("\n") else "+")
    indicator = "2" if body.startswith((" ", "\n")) else ""
    lines = [indent + "  " + line if line else "" for line in body.split("\n")]
    return f"|{indicator}{chomp}\n" + "\n".join(lines) + "\n"


def _scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, str) and _PLAIN.match(value):
        # plain only where YAML reads it back as the same string (not 0600, yes, null, 1e3)
        if _RESOLVER.resolve(ScalarNode, value, (True, False)) == "tag:yaml.org,2002:str":
            return value
    if isinstance(value, bool | int | float | str):
        # JSON strings are YAML double-quoted scalars; escape what YAML may not hold raw.
        return _NON_PRINTABLE.sub(lambda m: f"\\u{ord(m.group()):04x}", json.dumps(value, ensure_ascii=False))
    raise TypeError(f"cannot emit {type(value).__name__}")


def _emit(value: Any, indent: str, out: list[str]) -> None:
    """Emit a mapping or list whose first line is already positioned."""
    if isinstance(value, dict):
        first = True
        for key, item in value.items():
            prefix = "" if first else indent
            first = False
            out.append(f"{prefix}{_scalar(str(key))}:")
            _value(item, indent, out)
    elif isinstance(value, list):
        first = True
        for item in value:
            prefix = "" if first else indent
            first = False
            out.append(f"{prefix}- ")
            if isinstance(item, dict | list) and item:
                _emit(item, indent + "  ", out)
            else:
                out.append(_inline(item, indent + "  "))
    else:
        raise TypeError("top level must be a mapping or a list")


def _inline(item: Any, indent: str) -> str:
    if isinstance(item, str) and _block_ok(item):
        return _block(item, indent[:-2] if indent.endswith("  ") else indent)
    if isinstance(item, dict | list):
        return ("{}" if isinstance(item, dict) else "[]") + "\n"
    return _scalar(item) + "\n"


def _value(item: Any, indent: str, out: list[str]) -> None:
    if isinstance(item, dict | list) and item:
        out.append("\n" + indent + "  ")
        _emit(item, indent + "  ", out)
    else:
        out.append(" " + _inline(item, indent + "  "))


def dump(doc: dict[str, Any]) -> str:
    out: list[str] = []
    _emit(doc, "", out)
    return "".join(out)
