"""Where bakery keeps what it must not regenerate: CAs, certificates, keys.

Layout of `<root>/<cluster>/`:
    ca/ca.pem, ca/ca-key.pem              cluster CA (Docker API, join service server side)
    join-ca/ca.pem, join-ca/ca-key.pem    join CA (signs the join-service client certs only)
    client/ca.pem, cert.pem, key.pem      the operator's Docker client (a DOCKER_CERT_PATH)
    nodes/<name>/...                      per-node material, reused on every render
    consul/gossip.key                     consul's gossip encryption key
    .lock                                 flock'ed while material is created or issued

Directories are 0700 and key files 0600; nothing here is ever world-readable,
and a key file found with a looser mode is refused, not used. Every file
appears whole (written beside and renamed), and creating or issuing happens
under the cluster's lock, so parallel renders never see half a CA or sign
with a key another process is replacing.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from .errors import UserError


def default_root(environ: Mapping[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    if env.get("BAKERY_STATE_DIR"):
        return Path(env["BAKERY_STATE_DIR"])
    xdg = env.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(xdg) / "bakery"


def cluster_dir(cluster: str, root: Path | None = None) -> Path:
    return (root or default_root()) / cluster


def client_cert_dir(cluster: str, root: Path | None = None) -> Path:
    """A DOCKER_CERT_PATH for the operator: ca.pem, cert.pem, key.pem."""
    return cluster_dir(cluster, root) / "client"


def private_dir(path: Path) -> Path:
    """Create `path` and any missing parents 0700; tighten `path` itself (never through a symbolic link:
    `nodes -> /etc` would make /etc 0700 and put node keys there)."""
    if path.is_symlink():
        raise UserError(f"{path} is a symbolic link: bakery keeps its state in directories of its own",
                        fix=f"replace the link with the directory it points to, or remove {path}")
    missing = []
    p = path
    try:
        while not p.exists():
            missing.append(p)
            p = p.parent
        if not p.is_dir():
            raise UserError(f"cannot use {path} as bakery's state: {p} is not a directory",
                            fix="give --state-dir (or $BAKERY_STATE_DIR) a directory, or a path that does not exist")
        for d in reversed(missing):
            d.mkdir(mode=0o700, exist_ok=True)
            os.chmod(d, 0o700)
        os.chmod(path, 0o700)
    except OSError as exc:
        raise UserError(f"cannot create {path} for bakery's state: {exc.strerror}",
                        fix="give --state-dir (or $BAKERY_STATE_DIR) a directory you can write") from None
    return path


def write_output_file(path: Path, data: bytes) -> None:
    """`-o FILE` for output that holds keys (user-data): a new file, 0600 from the moment it exists,
    renamed over FILE, so no one else's file or open descriptor ever sees the keys; device nodes,
    FIFOs and directories are refused, never chmod-ed."""
    try:
        st = path.lstat()
    except FileNotFoundError:
        st = None
    except OSError as exc:
        raise UserError(f"cannot write {path}: {exc.strerror}") from None
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise UserError(f"-o {path} is a directory", fix="give a file name, e.g. -o seed.userdata")
    if st is not None and not (stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode)):
        raise UserError(f"-o {path} is not a regular file", fix="give a file name; for stdout, leave -o out")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent or Path("."))
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise
    except OSError as exc:
        raise UserError(f"cannot write {path}: {exc.strerror}", fix="give a path in a directory you can write") \
            from None


@contextmanager
def locked(cluster_dir: Path) -> Iterator[None]:
    """Hold the cluster's lock (an exclusive flock on `.lock`); released when the process dies, too.

    Not reentrant: a second `locked` on the same cluster in one process waits for itself.
    """
    private_dir(cluster_dir)
    fd = os.open(cluster_dir / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the last descriptor releases the flock


def _loose(path: Path, mode: int) -> UserError:
    return UserError(f"{path} is mode {mode & 0o777:04o}: a key file must be readable by its owner only, "
                     "so bakery will not use it", fix=f"chmod 600 {path}")


def check_private(path: Path) -> None:
    """Refuse an existing key file that group or others may read (a missing one is fine)."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return
    if mode & 0o077:
        raise _loose(path, mode)


def read_private(path: Path) -> bytes:
    """A key file's bytes, refused if group or others may read it, or if it is a symbolic link (a key
    planted as a link would put another file, e.g. an SSH key, into the user-data)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UserError(f"{path} is a symbolic link: bakery reads its keys only from files of its own",
                            fix=f"replace the link with the file it points to, or remove {path}") from None
        raise
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())  # the file read is the file checked
        if st.st_mode & 0o077:
            raise _loose(path, st.st_mode)
        if not stat.S_ISREG(st.st_mode):
            raise UserError(f"{path} is not a regular file", fix=f"remove {path}")
        return f.read()


def _write_new(path: Path, data: bytes, mode: int) -> None:
    """Write beside `path` (a unique name, created 0600) and rename: readers see the old or the new file whole."""
    private_dir(path.parent)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            if mode != 0o600:
                os.fchmod(out.fileno(), mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_private(path: Path, data: bytes) -> None:
    """Write a file 0600 from the start (never briefly world-readable)."""
    _write_new(path, data, 0o600)


def write_public(path: Path, data: bytes) -> None:
    _write_new(path, data, 0o644)
