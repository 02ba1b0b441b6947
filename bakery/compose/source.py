"""Positioned YAML for compose files: bakery.yamlsrc with ComposeError."""

from __future__ import annotations

from .. import yamlsrc
from ..errors import ComposeError
from ..yamlsrc import Document


def loads(text: str, source: str = "<string>") -> Document:
    """Parse one compose YAML document; an empty document gives `None` data."""
    return yamlsrc.loads(text, source, ComposeError)
