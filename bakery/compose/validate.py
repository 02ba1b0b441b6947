"""Check a compose document against its JSON Schema, fast.

jsonschema is thorough but costs about as much as the rest of a conversion
on a large file. The schemas use a small subset of JSON Schema (see
schemagen), which this module evaluates directly. Only when the document is
invalid do we hand it to bakery.schema.validate (jsonschema) for the
positioned, explained errors. tests/unit/test_compose_validate.py checks the
two agree.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cache
from typing import Any

from .. import schema as schema_mod
from ..errors import ComposeError
from ..yamlsrc import Document
from .keys import SERVICE_KEYS
from .schemagen import schema_name


@cache
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


_PY_TYPES: dict[str, type] = {"string": str, "boolean": bool, "object": dict, "array": list, "null": type(None)}
_COMPILED: dict[int, tuple[dict[str, Any], Callable[[Any], bool]]] = {}


def is_valid(schema: dict[str, Any], value: Any) -> bool:
    """Whether `value` meets `schema` (the subset schemagen writes: type, enum, items, required,
    properties, patternProperties, additionalProperties)."""
    return _compiled(schema)(value)


def _type_check(types: str | list[str]) -> Callable[[Any], bool]:
    names = [types] if isinstance(types, str) else list(types)
    simple = tuple(_PY_TYPES[n] for n in names if n in _PY_TYPES)
    integer, number = "integer" in names, "number" in names

    def ok(v: Any) -> bool:
        if simple and isinstance(v, simple):
            return True
        if isinstance(v, bool):  # never an integer or a number
            return False
        if number and isinstance(v, int | float):
            return True
        return integer and (isinstance(v, int) or (isinstance(v, float) and v.is_integer()))

    return ok


def _compiled(schema: dict[str, Any]) -> Callable[[Any], bool]:  # noqa: C901 - one branch per keyword
    """The schema as a function, made once per schema object (the schemas are loaded once), its
    subschemas compiled with it (schemagen writes no $ref: a tree, never a cycle)."""
    hit = _COMPILED.get(id(schema))
    if hit is not None and hit[0] is schema:
        return hit[1]
    type_ok = _type_check(schema["type"]) if "type" in schema else None
    enum = schema.get("enum")
    item_ok = _compiled(schema["items"]) if "items" in schema else None
    required = tuple(schema.get("required", ()))
    props = {key: _compiled(sub) for key, sub in schema.get("properties", {}).items()}
    patterns = [(_regex(p), _compiled(sub)) for p, sub in schema.get("patternProperties", {}).items()]
    extra = schema.get("additionalProperties", True)
    extra_ok = _compiled(extra) if isinstance(extra, dict) else None
    closed = extra is False

    def check(value: Any) -> bool:
        if type_ok is not None and not type_ok(value):
            return False
        if enum is not None and value not in enum:
            return False
        if isinstance(value, list):
            return item_ok is None or all(map(item_ok, value))
        if not isinstance(value, dict):
            return True
        for key in required:
            if key not in value:
                return False
        for key, item in value.items():
            sub_ok = props.get(key)
            matched = sub_ok is not None
            if sub_ok is not None and not sub_ok(item):
                return False
            if patterns and isinstance(key, str):
                for regex, pattern_ok in patterns:
                    if regex.search(key):
                        matched = True
                        if not pattern_ok(item):
                            return False
            if not matched:
                if closed:
                    return False
                if extra_ok is not None and not extra_ok(item):
                    return False
        return True

    _COMPILED[id(schema)] = (schema, check)
    return check


def _version_mismatch(doc: Document, version: str) -> list[ComposeError]:
    """A known key in the wrong version reads better as "needs 2.2" than as "unknown key"."""
    services = doc.data if version == "1" else doc.data.get("services")
    if not isinstance(services, dict):
        return []
    prefix: tuple[str, ...] = () if version == "1" else ("services",)
    found: list[ComposeError] = []
    for name, svc in services.items():
        for key in svc if isinstance(svc, dict) else ():
            spec = SERVICE_KEYS.get(key)
            if spec is None or spec.allowed_in(version):
                continue
            family = version[0]
            since = spec.since2 if family in "12" else spec.since3
            if since is not None:
                fix = f'set version: "{since}" or later'
            elif family == "3" and key in _V3_INSTEAD:
                fix = f"in 3.x files use {_V3_INSTEAD[key]}, or keep the file at version 2.x"
            else:
                fix = "remove it, or use a version of the format that has it"
            err = doc.error((*prefix, name, key), f"{key} is not part of compose {version}", fix, key=True,
                            cls=ComposeError)
            assert isinstance(err, ComposeError)
            found.append(err)
    return found


_V3_INSTEAD = {"mem_limit": "deploy.resources.limits.memory", "mem_reservation": "deploy.resources.reservations.memory",
               "cpus": "deploy.resources.limits.cpus", "scale": "deploy.replicas", "extends": "several -f files",
               "pids_limit": "deploy.resources.limits.pids"}


def problems(doc: Document, version: str) -> list[ComposeError]:
    """Every way `doc` breaks the schema of `version` (file:line:col, path, rule, fix); [] if none."""
    schema = schema_mod.load_schema(schema_name(version))
    if is_valid(schema, doc.data):
        return []
    found = _version_mismatch(doc, version)
    # jsonschema sees those keys as unknown too; the version message is the one to keep.
    misplaced = {e.path for e in found}
    for err in schema_mod.problems(doc, schema, ComposeError):
        if err.path not in misplaced:
            assert isinstance(err, ComposeError)
            found.append(err)
    if not found:
        # jsonschema found nothing the fast check did: a bug in validate.py, but
        # still the user's file is refused with a message rather than accepted.
        found.append(ComposeError(f"does not match the compose {version} schema", source=doc.source))
    return found
