"""MIME multipart user-data: bakery's part first, the operator's parts after.

Every cloud-config part carries a Merge-Type header so later parts append to
write_files/runcmd instead of replacing them (cloud-init's default merger
replaces lists). The boundary is derived from the content, so the same
inputs give the same bytes.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from .errors import UserError

# First line of a part -> its MIME subtype under text/.
PREFIXES = (
    ("#cloud-config", "cloud-config"),
    ("#cloud-boothook", "cloud-boothook"),
    ("## template: jinja", "jinja2"),
    ("#!", "x-shellscript"),
)


def part_type(path: Path, text: str) -> str:
    first = text.lstrip("\ufeff").split("\n", 1)[0].strip()
    for prefix, subtype in PREFIXES:
        if first.startswith(prefix):
            return subtype
    raise UserError(
        "cannot tell what kind of user-data part this is",
        source=str(path),
        line=1,
        fix="start the file with #cloud-config, #!/bin/sh (a script) or #cloud-boothook",
    )


def read_part(path: Path) -> tuple[str, str, str]:
    from .yamlsrc import read_bytes

    if any(c in path.name for c in "\r\n\x00"):
        raise UserError(f"--part {path.name!r}: a file name with a line break cannot be a MIME part name",
                        fix="rename the file")
    try:
        text = read_bytes(path, UserError, "--part file").decode("utf-8")
    except UnicodeDecodeError:
        raise UserError("not UTF-8 text", source=str(path), fix="save the part as UTF-8") from None
    return path.name, part_type(path, text), text


def multipart(parts: list[tuple[str, str, str]], merge_how: str) -> bytes:
    """parts: (filename, subtype, text). Returns the whole MIME document."""
    from email.charset import Charset
    from email.mime.multipart import MIMEMultipart
    from email.mime.text import MIMEText

    utf8 = Charset("utf-8")
    utf8.body_encoding = None  # type: ignore[assignment]  # 8bit, readable; cloud-init decodes either way

    digest = hashlib.sha256("\0".join(t for _, _, t in parts).encode()).hexdigest()[:32]
    outer = MIMEMultipart(boundary=f"==bakery-{digest}==")
    for filename, subtype, text in parts:
        msg = MIMEText(text, subtype, "us-ascii" if text.isascii() else utf8)  # type: ignore[arg-type]
        msg.add_header("Content-Disposition", "attachment", filename=filename)
        if subtype in ("cloud-config", "jinja2"):  # cloud-init hands a jinja part's headers to its
            msg["Merge-Type"] = merge_how  # rendered form's handler: without it our lists were replaced
        outer.attach(msg)
    return outer.as_bytes()
