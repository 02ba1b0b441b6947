"""systemd unit names from paths, with systemd's own escaping rules.

`systemd-escape --path /mnt/docker-nfs` gives `mnt-docker\\x2dnfs`: '/' becomes
'-', and every byte outside [A-Za-z0-9:_.] (and a leading '.') becomes \\xNN.
"""

from __future__ import annotations

import os

_SAFE = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789:_.")


def escape_path(path: str) -> str:
    norm = os.path.normpath(path).strip("/")
    if not norm or norm == ".":
        return "-"
    out = []
    for i, ch in enumerate(norm):
        if ch == "/":
            out.append("-")
        elif ch in _SAFE and not (i == 0 and ch == "."):
            out.append(ch)
        else:
            out.extend(f"\\x{b:02x}" for b in ch.encode("utf-8"))
    return "".join(out)


def mount_unit_name(path: str) -> str:
    return escape_path(path) + ".mount"


def nfs_service_name(path: str) -> str:
    """The service that mounts the NFS share on `path` (retrying): bakery-nfs-<escaped path>.service."""
    return f"bakery-nfs-{escape_path(path)}.service"


_PLAIN_ARG = _SAFE | set("/-=+,@")


def unit_value(value: object) -> str:
    """A value for a systemd unit line (the templates' `| unit` filter): never a newline (a second
    directive), `%` doubled (systemd's specifiers, expanded in Description=, What=, Where=, Exec*=
    and more). The schema refuses such values first; this is the last guard."""
    text = str(value)
    if any(c in text for c in "\n\r\x00"):
        raise ValueError(f"refusing a unit value with a line break: {text!r}")
    return text.replace("%", "%%")


def exec_arg(value: object) -> str:
    """One argument of an Exec*= line (the `| exec_arg` filter): a unit value (`unit_value`) that
    is also quoted, because systemd expands `$` variables and unescapes backslashes and quotes
    there; plain characters stay as they are."""
    text = unit_value(value)
    if text and set(text) <= _PLAIN_ARG:
        return text
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("$", "$$")
    return f'"{escaped}"'
