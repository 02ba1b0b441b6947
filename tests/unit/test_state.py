"""The state directory: private from the first byte, refused when loosened, safe under parallel renders."""

from __future__ import annotations

import fcntl
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from bakery import state
from bakery.errors import UserError

RENDERS = 8
TRIALS = 3


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize(("write", "want"), [(state.write_private, 0o600), (state.write_public, 0o644)])
def test_files_have_their_mode_from_the_moment_they_exist(write, want, tmp_path, monkeypatch):
    seen = {}
    real_replace = os.replace

    def spy(src, dst):  # the temporary file, just before it takes its name
        seen[Path(dst).name] = stat.S_IMODE(os.stat(src).st_mode)
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    old = os.umask(0)  # a permissive umask must not loosen anything
    try:
        target = tmp_path / "d" / "f.pem"
        target.parent.mkdir()
        target.write_bytes(b"old")
        target.chmod(0o666)
        write(target, b"new")
    finally:
        os.umask(old)
    assert seen == {"f.pem": want}
    assert mode(target) == want and target.read_bytes() == b"new"
    assert [p.name for p in target.parent.iterdir()] == ["f.pem"]  # no temporary file left


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    target = tmp_path / "key.pem"
    state.write_private(target, b"old")
    monkeypatch.setattr(os, "replace", lambda *_: (_ for _ in ()).throw(OSError(28, "No space left on device")))
    with pytest.raises(OSError):
        state.write_private(target, b"new")
    assert target.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["key.pem"]


@pytest.mark.parametrize(("file_mode", "refused"), [
    (0o600, False), (0o400, False), (0o640, True), (0o644, True), (0o604, True), (0o660, True), (0o666, True),
])
def test_a_key_file_readable_by_others_is_refused(file_mode, refused, tmp_path):
    key = tmp_path / "ca-key.pem"
    key.write_bytes(b"secret")
    key.chmod(file_mode)
    for check in (state.check_private, state.read_private):
        if refused:
            with pytest.raises(UserError) as exc:
                check(key)
            assert f"chmod 600 {key}" in str(exc.value) and len(str(exc.value).splitlines()) == 1
        else:
            check(key)


def test_the_lock_excludes_other_processes(tmp_path):
    probe = ("import fcntl, os, sys; fd = os.open(sys.argv[1], os.O_RDWR)\n"
             "try: fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)\nexcept BlockingIOError: sys.exit(3)")
    cdir = tmp_path / "default"
    with state.locked(cdir):
        assert mode(cdir / ".lock") == 0o600
        assert subprocess.run([sys.executable, "-c", probe, str(cdir / ".lock")]).returncode == 3
    assert subprocess.run([sys.executable, "-c", probe, str(cdir / ".lock")]).returncode == 0
    fd = os.open(cdir / ".lock", os.O_RDWR)  # and released: this process can take it again
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    os.close(fd)


def _parallel_first_renders(root: Path, work: Path, config: Path) -> list[tuple[str, Path]]:
    """RENDERS real `bakery render` processes at once on a fresh state dir (the installed package: cwd /)."""
    env = {k: v for k, v in os.environ.items() if k not in ("BAKERY_CONFIG", "BAKERY_STATE_DIR")}
    env["XDG_CACHE_HOME"] = str(work / "cache")
    nodes = [(("worker", "manager")[i % 2], f"p{i}") for i in range(RENDERS)]
    procs = [subprocess.Popen([sys.executable, "-m", "bakery", "render", "--role", role, "--name", name,
                               "--config", str(config), "--state-dir", str(root), "-o", str(work / name)],
                              cwd="/", env=env, stderr=subprocess.PIPE)
             for role, name in nodes]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()
    return [(name, work / name) for _, name in nodes]


def _cert(pem: str | bytes) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pem.encode() if isinstance(pem, str) else pem)


@pytest.mark.parametrize("trial", range(TRIALS))
def test_parallel_first_renders_share_one_pair_of_cas(trial, tmp_path):
    config = tmp_path / "bakery.yml"
    config.write_text("consul: {servers: [consul-1], agents: true, encrypt: true}\n")
    root, work = tmp_path / "state", tmp_path / "out"
    work.mkdir()
    outputs = _parallel_first_renders(root, work, config)
    cdir = root / "default"
    ca_pem, join_ca_pem = (cdir / "ca" / "ca.pem").read_text(), (cdir / "join-ca" / "ca.pem").read_text()
    ca, join_ca = _cert(ca_pem), _cert(join_ca_pem)
    gossip = (cdir / "consul" / "gossip.key").read_text().strip()
    _cert((cdir / "client" / "cert.pem").read_bytes()).verify_directly_issued_by(ca)
    for name, out in outputs:
        assert mode(out) == 0o600, out
        files = {f["path"]: f["content"] for f in yaml.safe_load(out.read_text())["write_files"]}
        node = cdir / "nodes" / name
        for leaf, issuer in (("server", ca), ("join", join_ca)):
            cert = _cert((node / f"{leaf}-cert.pem").read_bytes())
            cert.verify_directly_issued_by(issuer)  # raises if another process's CA key signed it
            assert files[f"/etc/bakery/tls/{leaf}-cert.pem"] == (node / f"{leaf}-cert.pem").read_text()
            key = serialization.load_pem_private_key(files[f"/etc/bakery/tls/{leaf}-key.pem"].encode(), None)
            assert key.public_key() == cert.public_key(), f"{name}: {leaf} key and certificate do not match"
        assert files["/etc/bakery/tls/ca.pem"] == ca_pem
        assert files.get("/etc/bakery/tls/join-ca.pem", join_ca_pem) == join_ca_pem
        assert gossip in files["/etc/bakery/consul/encrypt.json"]  # one gossip key, not one per process
    leftovers = [p for p in root.rglob("*") if p.name.endswith(".tmp") or p.name.startswith((".ca-", ".join-ca-"))]
    assert leftovers == []
