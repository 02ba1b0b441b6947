"""JSON Schema validation with file:line:column errors, every problem at once.

jsonschema is imported only when a file is actually validated: rendering
from the embedded defaults never pays for it.
"""

from __future__ import annotations

import datetime
import difflib
import json
import re
from collections.abc import Iterable, Iterator
from functools import cache
from importlib import resources
from typing import Any

from .errors import UserError, gather
from .yamlsrc import Document

_LIST_AT_MOST = 6  # allowed keys listed in full; beyond that, where they are documented
# JSON Schema's type names, in YAML's words.
_TYPE_NAMES = {"string": "text", "integer": "a whole number", "number": "a number", "boolean": "true or false",
               "array": "a list", "object": "a mapping", "null": "null"}


@cache
def load_schema(name: str) -> dict[str, Any]:
    text = resources.files("bakery").joinpath("schemas", name).read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def _fix_for(error: Any) -> str | None:
    """A schema may carry `x-fix` next to the rule; otherwise derive one."""
    fix = error.schema.get("x-fix") if isinstance(error.schema, dict) else None
    if fix:
        return str(fix)
    if error.validator == "enum":
        return "use one of: " + ", ".join(str(v) for v in error.validator_value)
    if error.validator == "type":
        names = [error.validator_value] if isinstance(error.validator_value, str) else error.validator_value
        return "give " + " or ".join(_TYPE_NAMES.get(n, n) for n in names)
    if error.validator in ("minimum", "maximum"):
        lo, hi = error.schema.get("minimum"), error.schema.get("maximum")
        if lo is not None and hi is not None:
            return f"use a number from {lo} to {hi}"
        return f"use a number {'>=' if lo is not None else '<='} {lo if lo is not None else hi}"
    if error.validator == "required":
        missing = [k for k in error.validator_value if k not in (error.instance or {})]
        return "add " + ", ".join(repr(k) for k in missing)
    if error.validator in ("pattern", "minLength", "maxLength", "minItems", "uniqueItems"):
        return f"see the rule: {error.validator} {error.validator_value!r}"
    return None


def _unknown_keys(instance: dict[str, Any], schema: dict[str, Any]) -> list[str]:
    """Keys neither named in `properties` nor matched by a `patternProperties` regex."""
    props, patterns = schema.get("properties", {}), schema.get("patternProperties", {})
    return [k for k in instance if k not in props and not any(re.search(p, k) for p in patterns)]


def key_fix(key: str, allowed: Iterable[str]) -> str:
    """The fix for `key` where only `allowed` (and `x-` extensions) may be: as a schema's unknown key."""
    return _unknown_key_fix(key, {"properties": dict.fromkeys(allowed, {}), "patternProperties": {"^x-": {}}}, None)


def _unknown_key_fix(key: str, schema: dict[str, Any], docs: str | None) -> str:
    """"did you mean" a close key; else the few allowed keys, or where they are documented."""
    allowed = sorted(schema.get("properties", {}))
    close = difflib.get_close_matches(key, allowed, n=3, cutoff=0.6)
    if close:
        return "did you mean " + " or ".join(repr(c) for c in close) + "?"
    patterns = list(schema.get("patternProperties", {}))
    if not allowed and patterns:
        return "a key here must match " + " or ".join(patterns)
    extension = " or an extension key starting with x-" if "^x-" in patterns else ""
    if len(allowed) <= _LIST_AT_MOST or not docs:
        return f"allowed keys: {', '.join(allowed)}{extension}"
    return f"none of the {len(allowed)} keys allowed here is close; they are listed in {docs}"


def _read_as(value: Any, text: str) -> str:
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, int | float):
        return "a number" if repr(value) == text else f"the number {value!r}"  # 1.10 -> 1.1
    if isinstance(value, datetime.date):
        return "a date"
    return f"a {type(value).__name__}"


def _quoting(doc: Document, validator: Any, error: Any) -> tuple[str, str] | None:
    """YAML 1.1 read an unquoted `no`, `on`, `1.10`, `2020-01-01` as a non-string where the
    rule wants text: (message, fix) saying to quote it, when the quoted text passes the rule."""
    path = tuple(error.absolute_path)
    text = doc.plain.get(path)
    if text is None or isinstance(error.instance, str) or not validator.evolve(schema=error.schema).is_valid(text):
        return None
    where = f"{path[-1]}: " if path and isinstance(path[-1], str) else "- "
    if path and path[-1] in _DURATIONS and isinstance(error.instance, int | float) \
            and not isinstance(error.instance, bool):  # "5" would be refused next: a duration has a unit
        return (f"{text} is a number, and a duration is wanted here", f'give it a unit: {where}"{text}s"')
    return (f"unquoted {text} is {_read_as(error.instance, text)} in YAML, and text is wanted here",
            f'quote it: {where}"{text}"')


_DURATIONS = frozenset({"interval", "timeout", "start_period", "start_interval", "stop_grace_period"})


def _explain(doc: Document, validator: Any, error: Any, docs: str | None, cls: type[UserError]
             ) -> Iterator[UserError]:
    path = tuple(error.absolute_path)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        # One problem per key, at the key (not at the enclosing mapping).
        for key in _unknown_keys(error.instance, error.schema):
            yield doc.error((*path, key), f"unknown key {key!r}", _unknown_key_fix(key, error.schema, docs),
                            key=True, cls=cls)
        return
    quoted = _quoting(doc, validator, error)
    if quoted:
        yield doc.error(path, quoted[0], quoted[1], cls=cls)
    elif error.validator == "pattern" and isinstance(error.schema, dict) and error.schema.get("x-fix"):
        # The x-fix says in words what the rule wants; the regex itself helps nobody.
        yield doc.error(path, f"{shown(error.instance)} is not allowed here", _fix_for(error), cls=cls)
    else:
        message = error.message
        if not isinstance(error.instance, bool | int | float | type(None)):
            message = message.replace(repr(error.instance), shown(error.instance))
        yield doc.error(path, message, _fix_for(error), cls=cls)


def _strict_integers(cls: Any) -> Any:
    """JSON Schema counts 2376.0 as an integer; a port or a timeout that reaches a unit as
    `2376.0` breaks it, so an integer here is an int (and never a bool)."""
    import jsonschema

    checker = cls.TYPE_CHECKER.redefine(
        "integer", lambda _, value: isinstance(value, int) and not isinstance(value, bool))
    return jsonschema.validators.extend(cls, type_checker=checker)


def shown(value: Any) -> str:
    """A value quoted in a message: short, and never a key (a wrong file passed as --config can be one)."""
    text = repr(value)
    if "PRIVATE KEY" in text or "BEGIN " in text:
        return f"a value of {len(text)} characters that looks like a key or certificate (not shown)"
    return text if len(text) <= 80 else f"{text[:60]}... ({len(text)} characters)"


def problems(doc: Document, schema: dict[str, Any], cls: type[UserError] = UserError) -> list[UserError]:
    """Every schema violation of `doc`, each as `cls` with its place, rule and fix."""
    import jsonschema

    validator = _strict_integers(jsonschema.validators.validator_for(schema))(schema)
    docs = schema.get("x-docs")
    out: list[UserError] = []
    for error in validator.iter_errors(doc.data):
        # For oneOf/anyOf, the most specific sub-error reads better.
        best = jsonschema.exceptions.best_match([error])
        out.extend(_explain(doc, validator, best, docs, cls))
    return out


def validate(doc: Document, schema: dict[str, Any], cls: type[UserError] = UserError) -> None:
    """Raise the schema violations of `doc` as one `cls`, in file order."""
    found = problems(doc, schema, cls)
    if found:
        raise gather(found, cls, doc.source)
