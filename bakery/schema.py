"""JSON Schema validation with file:line:column errors.

jsonschema is imported only when a file is actually validated: rendering
from the embedded defaults never pays for it.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from .errors import UserError
from .yamlsrc import Document


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
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        if allowed:
            return "allowed keys: " + ", ".join(allowed)
    if error.validator == "enum":
        return "use one of: " + ", ".join(str(v) for v in error.validator_value)
    if error.validator == "type":
        return f"give a value of type {error.validator_value}"
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


def validate(doc: Document, schema: dict[str, Any], cls: type[UserError] = UserError) -> None:
    """Raise the first (in file order) schema violation of `doc` as `cls`."""
    import jsonschema

    validator_cls = jsonschema.validators.validator_for(schema)
    validator = validator_cls(schema)
    errors = list(validator.iter_errors(doc.data))
    if not errors:
        return

    def order(e: Any) -> tuple[int, int]:
        pos = doc.where(tuple(e.absolute_path))
        return (pos.line, pos.column) if pos else (0, 0)

    first = min(errors, key=order)
    # For oneOf/anyOf, the most specific sub-error reads better.
    best = jsonschema.exceptions.best_match([first])
    path = tuple(best.absolute_path)
    message = best.message
    if best.validator == "additionalProperties":
        # Point at the offending key, not the enclosing mapping.
        extra = [k for k in (best.instance or {}) if k not in best.schema.get("properties", {})]
        if extra:
            path = path + (extra[0],)
            message = f"unknown key {extra[0]!r}"
            raise doc.error(path, message, _fix_for(best), key=True, cls=cls)
    raise doc.error(path, message, _fix_for(best), cls=cls)
