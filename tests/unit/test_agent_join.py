"""The join agent's pure parts (bakery/agent/join.py); its service and joins run against real
engines in tests/integration/test_join.py."""

from __future__ import annotations

import contextlib
import errno
import socket
import ssl
import struct
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from testkit.join import materialise
from testkit.render_util import cloud_config_parts, written_files

from bakery.agent import join
from bakery.cli import main


@pytest.mark.parametrize("raw, logged", [
    ("GET /v1/token/\x1b[2J\x07 HTTP/1.1", "GET /v1/token/\\x1b[2J\\x07 HTTP/1.1"),
    ("one\nbakery-join: forged", "one\\x0abakery-join: forged"),
    ("tab\tcr\rdel\x7fc1\x9b", "tab\\x09cr\\x0ddel\\x7fc1\\x9b"),
    ("a \\x41 backslash", "a \\\\x41 backslash"),  # an escape in the input cannot pass for ours
    ("héllo ✓", "héllo ✓"),
])
def test_log_lines_escape_control_characters(raw, logged, capsys):
    join.log(raw)
    assert capsys.readouterr().err == f"bakery-join: {logged}\n"


@pytest.mark.parametrize("attempt", range(12))
def test_backoff_is_exponential_jittered_and_bounded(attempt):
    ceiling = min(join.RETRY_MAX, join.RETRY_FIRST * 2 ** attempt)
    pauses = {join.backoff(attempt) for _ in range(50)}
    assert all(ceiling / 2 <= p <= ceiling <= join.RETRY_MAX for p in pauses)
    assert len(pauses) > 1  # jittered: nodes booted together spread out
    assert join.backoff(10_000) <= join.RETRY_MAX


@pytest.mark.parametrize("addr, host", [("10.0.0.5:2377", "10.0.0.5"), ("[fd00::5]:2377", "fd00::5"),
                                        ("fd00::5", "fd00::5"), ("manager-1", "manager-1")])
def test_manager_addresses_learned_from_an_answer(addr, host):
    assert join._host(addr) == host


def test_render_embeds_the_module_text_without_importing_it(tmp_path):
    code = ("import sys; from bakery.cli import main; "
            f"main(['render', '--role', 'manager', '--state-dir', {str(tmp_path)!r}, '-o', {str(tmp_path / 'u')!r}]); "
            "print('bakery.agent.join' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, check=True)
    assert done.stdout.strip() == "False"
    files = written_files(cloud_config_parts((tmp_path / "u").read_bytes())[0])
    agent = files["/usr/local/lib/bakery/bakery-join"]
    assert join.__file__ is not None and agent["content"] == Path(join.__file__).read_text()
    assert agent["content"].startswith("#!/usr/bin/python3\n") and agent["permissions"] == "0755"


# --- the formation rule: which answers count as "no manager" (docs/JOIN.md) ---------------------


@pytest.fixture(scope="module")
def seed_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A seed rendered to form, its files written under a directory (join.json pointing there)."""
    tmp = tmp_path_factory.mktemp("seed")
    assert main(["render", "--role", "seed", "--form", "--state-dir", str(tmp / "state"),
                 "-o", str(tmp / "userdata")]) == 0
    return materialise((tmp / "userdata").read_bytes(), tmp / "root")


class _Stop(Exception):
    """Raised instead of the first pause between passes: the decision is made by then."""


def _handle(kind: str, conn: socket.socket, tls: dict[str, str]) -> None:
    if kind == "reset after connect":
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    elif kind == "no answer after connect":
        conn.settimeout(10)
        with contextlib.suppress(OSError):
            conn.recv(1)  # until the client gives up
    elif kind == "not TLS":
        conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n{}")
    elif kind == "TLS: an untrusted certificate" or kind.startswith("HTTP"):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        if kind.startswith("TLS"):  # signed by the join CA, which the client does not trust for servers
            ctx.load_cert_chain(tls["join_cert"], tls["join_key"])
        else:
            ctx.load_cert_chain(tls["cert"], tls["key"])
        conn.settimeout(10)
        with contextlib.suppress(OSError), ctx.wrap_socket(conn, server_side=True) as s:
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = s.recv(4096)
                if not chunk:
                    return
                head += chunk
            status = int(kind.split()[1])
            body = b"{}"
            s.sendall(b"HTTP/1.0 %d X\r\nContent-Length: %d\r\n\r\n%s" % (status, len(body), body))


@contextlib.contextmanager
def _manager(kind: str, tls: dict[str, str]) -> Iterator[int]:
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    port = srv.getsockname()[1]
    if kind == "connection refused":
        srv.close()  # nothing listens there
        yield port
        return
    srv.listen(8)

    def run() -> None:
        while True:
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            with conn:
                _handle(kind, conn, tls)

    threading.Thread(target=run, daemon=True).start()
    try:
        yield port
    finally:
        srv.close()


NO_MANAGER = {  # a failure of the TCP connect itself: nothing of the cluster is there
    "connection refused": None,
    "connect timed out": TimeoutError("timed out"),
    "no route to host": OSError(errno.EHOSTUNREACH, "No route to host"),
    "network unreachable": OSError(errno.ENETUNREACH, "Network is unreachable"),
}
ANSWERED = ["reset after connect", "closed after connect", "no answer after connect", "not TLS",
            "TLS: an untrusted certificate", "HTTP 200 without a token", "HTTP 400", "HTTP 403",
            "HTTP 404", "HTTP 503"]


@pytest.mark.parametrize("kind", [*NO_MANAGER, *ANSWERED])
def test_a_forming_seed_inits_only_when_no_manager_can_be_reached(kind, seed_files, monkeypatch, capsys):
    inits: list[list[str]] = []
    monkeypatch.setattr(join, "wait_for_docker", lambda cfg, deadline: {"Swarm": {"LocalNodeState": "inactive"}})
    monkeypatch.setattr(join, "init", lambda cfg, failures: inits.append(failures) or 0)
    monkeypatch.setattr(join, "do_join", lambda *a: pytest.fail("no manager handed out a token"))
    monkeypatch.setattr(join, "FETCH_TIMEOUT", 0.5)
    monkeypatch.setattr(join.time, "sleep", lambda s: (_ for _ in ()).throw(_Stop()))
    if NO_MANAGER.get(kind) is not None:
        def connect(*a: Any, **kw: Any) -> socket.socket:
            raise NO_MANAGER[kind]  # type: ignore[misc]
        monkeypatch.setattr(join.socket, "create_connection", connect)
    with _manager(kind, seed_files["tls"]) as port:
        cfg = dict(seed_files, seed="this-seed", endpoints=["this-seed", "127.0.0.1"], join_port=port)
        assert cfg["form"] is True
        if kind in NO_MANAGER:
            assert join.join(cfg) == 0
            assert len(inits) == 1 and inits[0][0].startswith("127.0.0.1: unreachable ("), inits
        else:
            with pytest.raises(_Stop):
                join.join(cfg)
            assert inits == [], inits
            err = capsys.readouterr().err
            assert join.SWARM_EXISTS in err and "127.0.0.1: " in err, err


def test_a_seed_that_may_not_form_never_inits_even_with_no_manager_reachable(seed_files, monkeypatch, capsys):
    monkeypatch.setattr(join, "wait_for_docker", lambda cfg, deadline: {"Swarm": {"LocalNodeState": "inactive"}})
    monkeypatch.setattr(join, "init", lambda cfg, failures: pytest.fail("a seed without form inits"))
    monkeypatch.setattr(join.time, "sleep", lambda s: (_ for _ in ()).throw(_Stop()))
    with _manager("connection refused", seed_files["tls"]) as port:
        cfg = dict(seed_files, seed="this-seed", endpoints=["this-seed", "127.0.0.1"], join_port=port, form=False)
        with pytest.raises(_Stop):
            join.join(cfg)
    assert join.NOT_FORMING in capsys.readouterr().err


@pytest.mark.parametrize("then", ["connection refused", "HTTP 503"])
def test_a_name_that_does_not_resolve_is_unknown_never_no_manager(then, seed_files, monkeypatch, capsys):
    """DNS is often not up early in boot: a failed lookup proves nothing. The forming seed asks again, and
    the first pass in which every name resolved decides (refused: it forms; an answer: it only joins)."""
    inits: list[list[str]] = []
    sleeps: list[float] = []
    monkeypatch.setattr(join, "wait_for_docker", lambda cfg, deadline: {"Swarm": {"LocalNodeState": "inactive"}})
    monkeypatch.setattr(join, "init", lambda cfg, failures: inits.append(failures) or 0)
    monkeypatch.setattr(join, "do_join", lambda *a: pytest.fail("no manager handed out a token"))
    monkeypatch.setattr(join, "FETCH_TIMEOUT", 0.5)

    def sleep(s: float) -> None:
        sleeps.append(s)
        if len(sleeps) == 3:  # the pause after the deciding pass: it only joins from then on
            raise _Stop()

    monkeypatch.setattr(join.time, "sleep", sleep)
    real = socket.create_connection
    lookups = {"count": 0}

    def connect(address: Any, *a: Any, **kw: Any) -> socket.socket:
        lookups["count"] += 1
        if lookups["count"] <= 2:  # the first two passes: DNS not up yet
            raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
        return real(("127.0.0.1", address[1]), *a, **kw)

    monkeypatch.setattr(join.socket, "create_connection", connect)
    with _manager(then, seed_files["tls"]) as port:
        cfg = dict(seed_files, seed="this-seed", endpoints=["this-seed", "manager-1.invalid"], join_port=port)
        if then == "connection refused":
            assert join.join(cfg) == 0
            assert len(sleeps) == 2 and len(inits) == 1, (sleeps, inits)  # decided on the third pass only
            assert inits[0][0].startswith("manager-1.invalid: unreachable ("), inits
        else:
            with pytest.raises(_Stop):
                join.join(cfg)
            assert inits == []
        err = capsys.readouterr().err
        assert join.UNDECIDED in err and "manager-1.invalid: the name does not resolve (" in err, err
        if then != "connection refused":
            assert join.SWARM_EXISTS in err, err


def test_a_name_that_never_resolves_never_forms(seed_files, monkeypatch, capsys):
    monkeypatch.setattr(join, "wait_for_docker", lambda cfg, deadline: {"Swarm": {"LocalNodeState": "inactive"}})
    monkeypatch.setattr(join, "init", lambda cfg, failures: pytest.fail("formed on a failed lookup"))
    monkeypatch.setattr(join.time, "sleep", lambda s: None)

    def connect(*a: Any, **kw: Any) -> socket.socket:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(join.socket, "create_connection", connect)
    cfg = dict(seed_files, seed="this-seed", endpoints=["this-seed", "manager-1.invalid"], join_port=1, timeout=0.5)
    with pytest.raises(SystemExit, match="gave up joining .* the name does not resolve"):
        join.join(cfg)
    assert join.UNDECIDED in capsys.readouterr().err
