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


_PLAIN_ARG = _SAFE | set("/-=+,@")


def specifier_escape(value: str) -> str:
    """A value for a unit setting that expands `%` specifiers (Description=, What=, Where=)."""
    return value.replace("%", "%%")


def exec_arg(value: str) -> str:
    """One argument of an Exec*= line: systemd expands `%` specifiers and `$` variables and
    unescapes backslashes and quotes there, so anything but plain characters is quoted."""
    if value and set(value) <= _PLAIN_ARG:
        return value
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%").replace("$", "$$")
    return f'"{escaped}"'
