"""Host-side helpers for the local provider: required tools, command runs with a log, progress.

Every external command runs in list form (no shell), with its output appended
to a log file, so a failure can quote the tail of the log instead of a traceback.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from ...errors import BakeryError, EnvironmentMissing

Progress = Callable[[str], None]

# Debian package that provides each tool, for the "install it" hint.
TOOLS = {
    "debootstrap": "debootstrap",
    "systemd-nspawn": "systemd-container",
    "dnsmasq": "dnsmasq-base",
    "nsenter": "util-linux",
    "iptables": "iptables",
    "ip": "iproute2",
}


def stderr_progress(prefix: str) -> Progress:
    """Progress lines on stderr, stamped with seconds since the start."""
    start = time.monotonic()

    def report(message: str) -> None:
        print(f"{prefix}: [{time.monotonic() - start:6.1f}s] {message}", file=sys.stderr, flush=True)

    return report


def quiet(_message: str) -> None:
    """A Progress that says nothing."""


def which(tool: str) -> str:
    found = shutil.which(tool) or shutil.which(tool, path="/usr/sbin:/usr/bin:/sbin:/bin")
    if found is None:
        pkg = TOOLS.get(tool, tool)
        raise EnvironmentMissing(f"{tool} is not installed (apt-get install {pkg})")
    return found


def require_host(tools: Sequence[str], what: str) -> None:
    """Root and the named tools, or a plain EnvironmentMissing saying which is missing."""
    if os.geteuid() != 0:
        raise EnvironmentMissing(f"{what} needs root (systemd-nspawn, bridges and iptables are root-only)")
    for tool in tools:
        which(tool)


def run(cmd: Sequence[str], log: Path, *, timeout: float = 1800, check: bool = True) -> int:
    """Run `cmd`, output appended to `log`; raise BakeryError with the log's tail on failure."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        out.write(("\n$ " + " ".join(cmd) + "\n").encode())
        out.flush()
        try:
            proc = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, timeout=timeout, check=False)
        except subprocess.TimeoutExpired as exc:
            raise BakeryError(f"{cmd[0]} timed out after {timeout:.0f}s (log: {log})") from exc
    if check and proc.returncode != 0:
        raise BakeryError(f"{Path(cmd[0]).name} failed with exit code {proc.returncode}:\n{tail(log)}\n(log: {log})")
    return proc.returncode


def tail(log: Path, lines: int = 15) -> str:
    try:
        text = log.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])
