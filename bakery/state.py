"""Where bakery keeps what it must not regenerate: CAs, certificates, keys.

Layout of `<root>/<cluster>/`:
    ca/ca.pem, ca/ca-key.pem              cluster CA (Docker API, join service server side)
    join-ca/ca.pem, join-ca/ca-key.pem    join CA (signs the join-service client certs only)
    client/ca.pem, cert.pem, key.pem      the operator's Docker client (a DOCKER_CERT_PATH)
    nodes/<name>/...                      per-node material, reused on every render
    consul/gossip.key                     consul's gossip encryption key

Directories are 0700 and key files 0600; nothing here is ever world-readable.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
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
    """Create `path` and any missing parents 0700; tighten `path` itself."""
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
    """`-o FILE` for output that holds keys (user-data): 0600 from the moment it exists."""
    if path.is_dir():
        raise UserError(f"-o {path} is a directory", fix="give a file name, e.g. -o seed.userdata")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            os.fchmod(fd, 0o600)  # an existing file keeps its mode through O_TRUNC: tighten it
            out.write(data)
    except OSError as exc:
        raise UserError(f"cannot write {path}: {exc.strerror}") from None


def write_private(path: Path, data: bytes) -> None:
    """Write a file 0600 from the start (never briefly world-readable)."""
    private_dir(path.parent)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    os.replace(tmp, path)


def write_public(path: Path, data: bytes) -> None:
    private_dir(path.parent)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)
