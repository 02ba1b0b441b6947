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
from functools import cache
from typing import Any

from .. import schema as schema_mod
from ..errors import ComposeError
from ..yamlsrc import Document
from .keys import SERVICE_KEYS
from .schemagen import schema_name

_TYPES: dict[str, Any] = {
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "integer": lambda v: (isinstance(v, int) and not isinstance(v, bool))
    or (isinstance(v, float) and v.is_integer()),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "null": lambda v: v is None,
}


@cache
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def is_valid(schema: dict[str, Any], value: Any) -> bool:  # noqa: C901 - one branch per keyword
    types = schema.get("type")
    if types is not None:
        names = [types] if isinstance(types, str) else types
        if not any(_TYPES[t](value) for t in names):
            return False
    if "enum" in schema and value not in schema["enum"]:
        return False
    if isinstance(value, list):
        items = schema.get("items")
        return items is None or all(is_valid(items, v) for v in value)
    if not isinstance(value, dict):
        return True
    if any(k not in value for k in schema.get("required", ())):
        return False
    props = schema.get("properties", {})
    patterns = schema.get("patternProperties", {})
    extra = schema.get("additionalProperties", True)
    for key, item in value.items():
        matched = False
        if key in props:
            matched = True
            if not is_valid(props[key], item):
                return False
        for pattern, sub in patterns.items():
            if isinstance(key, str) and _regex(pattern).search(key):
                matched = True
                if not is_valid(sub, item):
                    return False
        if not matched:
            if extra is False:
                return False
            if isinstance(extra, dict) and not is_valid(extra, item):
                return False
    return True


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
