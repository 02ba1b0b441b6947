"""A real NFS server for booted-node tests: nfs-ganesha (Debian's `nfs-ganesha`, `nfs-ganesha-vfs`).

User space, so it runs on a machine whose kernel has no NFS server (docs/ENGINES.md §6). NFSv4
only (no rpcbind, mountd, NLM or rquota), bound to 127.0.0.1 on a free port (guests mount it with
`port=`), no grace period, its own config, log, pid file and recovery directory under the test's
directory. One export, read-write, root not squashed. Only the ganesha started here is ever stopped,
by its own process.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from testkit import require_or_skip
from testkit.engine import stop_process

PSEUDO = "/export"  # the NFSv4 path clients mount

CONFIG = """\
NFS_CORE_PARAM {{
    Bind_addr = 127.0.0.1;
    NFS_Port = {port};
    Protocols = 4;
    Enable_NLM = false;
    Enable_RQUOTA = false;
    Enable_UDP = false;
}}
NFSv4 {{
    Graceless = true;
    RecoveryBackend = fs;
    RecoveryRoot = {root}/recovery;
}}
EXPORT {{
    Export_Id = 1;
    Path = {root}/export;
    Pseudo = {pseudo};
    Protocols = 4;
    Access_Type = RW;
    Squash = No_Root_Squash;
    SecType = sys;
    FSAL {{ Name = VFS; }}
}}
LOG {{ Default_Log_Level = EVENT; }}
"""


def binary(switch: str) -> str:
    found = shutil.which("ganesha.nfsd", path="/usr/bin:/usr/sbin:/bin:/sbin")
    if found is None or not list(Path("/usr/lib").glob("*/ganesha/libfsalvfs.so")):
        require_or_skip(switch, "nfs-ganesha is not installed (apt-get install nfs-ganesha nfs-ganesha-vfs)")
    assert found is not None
    return found


@dataclass
class Ganesha:
    """A configured server; start() and stop() may be called when the test decides."""

    executable: str
    root: Path
    port: int
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def export(self) -> Path:
        return self.root / "export"

    @property
    def log(self) -> Path:
        return self.root / "ganesha.log"

    @classmethod
    def prepare(cls, executable: str, root: Path, port: int) -> Ganesha:
        for d in ("export", "recovery"):
            (root / d).mkdir(parents=True, exist_ok=True)
        (root / "ganesha.conf").write_text(CONFIG.format(port=port, root=root, pseudo=PSEUDO))
        return cls(executable, root, port)

    def start(self, timeout: float = 60) -> float:
        """Start it and wait until it accepts connections; returns time.monotonic() when it did."""
        self.proc = subprocess.Popen([self.executable, "-F", "-f", str(self.root / "ganesha.conf"), "-L",
                                      str(self.log), "-p", str(self.root / "ganesha.pid")],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"ganesha.nfsd exited {self.proc.returncode}:\n{self.log_tail()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=2):
                    return time.monotonic()
            except OSError:
                time.sleep(0.5)
        self.stop()
        raise AssertionError(f"ganesha.nfsd did not listen on 127.0.0.1:{self.port} within {timeout:.0f}s:\n"
                             f"{self.log_tail()}")

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no ganesha log)"
