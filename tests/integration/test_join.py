"""The join agent and the TLS split, against real engines.

1. The join-token service (bakery-join serve) on the engine fixture's swarm:
   a worker certificate gets the worker token and is refused the manager
   token; certificates not signed by the join CA get no TLS session at all.
2. A real dockerd started with the rendered daemon.json serves the API with
   mutual TLS: the operator's certificate works, a node's join or server
   certificate and plain TCP do not.
3. Two engines in their own network namespaces (docs/JOIN.md, "Testing"): the
   agent inits the swarm on a seed rendered to form it and joins a worker
   through the seed's join service, exactly as it runs at boot.
4. No second swarm: three managers formed, the seed rebuilt (engine state
   wiped, user-data rendered for the running swarm) while they are unreachable
   from it: it keeps asking, never inits, and joins their swarm when they are back.
The tests of the agent as a program (3, 4 and the reboot case) run with both agents: the Python
one of cloud-init nodes and the POSIX sh one of Ignition nodes (Flatcar, Fedora CoreOS), and a
cluster of cloud-init managers with Ignition workers."""

from __future__ import annotations

import json
import os
import resource
import selectors
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from testkit import require_or_skip
from testkit.engine import Engine, _wait_socket, find_dockerd, private_dockerd, unmount_under
from testkit.join import (
    AGENT_PATH,
    AGENTS,
    Netns,
    agent_env,
    argv_recorders,
    free_port,
    join_cmd,
    load_agent,
    materialise,
    render_args,
    serve_cmd,
    sh_service_cmds,
    wait_port,
    write_cfg,
)
from testkit.render_util import render

pytestmark = pytest.mark.engine


@contextmanager
def running_service(engine: Engine, tmp_path: Path, capsysbinary: Any, nofile: int | None = None,
                    docker_socket: str | None = None, extra_fds: int = 0, kind: str = "python") -> Iterator[dict]:
    """The rendered seed's join service on the engine fixture's swarm, on a free loopback port;
    `nofile` caps its file descriptors (soft and hard), as a starved host would; `extra_fds`
    descriptors are open in it from the start (used by something else: a leak, a library).
    `kind` "sh": the Ignition seed's service without Python (socat's TLS, `bakery-join.sh answer`)."""
    if kind == "sh":
        with running_sh_service(tmp_path, capsysbinary, docker_socket or engine.socket) as svc:
            yield svc
        return
    state = tmp_path / "state"
    seed = materialise(render(["--role", "seed"], state, capsysbinary), tmp_path / "seed")
    port = free_port()
    seed.update(docker_socket=docker_socket or engine.socket, join_port=port, serve_address="127.0.0.1")
    log = tmp_path / "serve.log"
    env = dict(os.environ, BAKERY_JOIN_CONFIG=str(write_cfg(tmp_path / "seed", seed)))

    def limit() -> None:
        if nofile is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

    held = [os.open(os.devnull, os.O_RDONLY) for _ in range(extra_fds)]
    try:
        with log.open("wb") as out:
            proc = subprocess.Popen([sys.executable, str(tmp_path / "seed" / AGENT_PATH.lstrip("/")), "serve"],
                                    env=env, stdout=out, stderr=subprocess.STDOUT, preexec_fn=limit,
                                    pass_fds=held)
    finally:
        for fd in held:
            os.close(fd)
    try:
        wait_port("127.0.0.1", port, proc)
        yield {"state": state, "port": port, "log": log, "tmp": tmp_path, "proc": proc}
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@contextmanager
def running_sh_service(tmp_path: Path, capsysbinary: Any, docker_socket: str) -> Iterator[dict]:
    """The sh join service of a seed rendered with --format ignition, run with its units' commands."""
    state = tmp_path / "state"
    (tmp_path / "ign.yml").write_text(NO_INSTALL)
    root = tmp_path / "seed"
    seed = materialise(render(render_args("sh", ["--role", "seed", "--config", str(tmp_path / "ign.yml")]), state,
                              capsysbinary), root)
    port, inner = free_port(), free_port()
    seed.update(docker_socket=docker_socket, join_port=port)
    env = agent_env(write_cfg(root, seed))
    tls, activate = sh_service_cmds(root, port, inner)
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        procs = [subprocess.Popen(tls, env=env, stdout=out, stderr=subprocess.STDOUT),
                 subprocess.Popen(activate, env=env, stdout=out, stderr=subprocess.STDOUT)]
    try:
        wait_port("127.0.0.1", inner, procs[0])
        wait_port("127.0.0.1", port, procs[1])
        yield {"state": state, "port": port, "log": log, "tmp": tmp_path, "proc": procs[1], "kind": "sh"}
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=10)
        subprocess.run(["pkill", "-f", f"TCP:127.0.0.1:{inner},"], check=False)  # relays still running


@pytest.fixture()
def token_service(engine: Engine, tmp_path: Path, capsysbinary):  # type: ignore[no-untyped-def]
    with running_service(engine, tmp_path, capsysbinary) as svc:
        yield svc


@pytest.fixture(params=["python", "sh"])
def any_service(request, engine: Engine, tmp_path: Path, capsysbinary):  # type: ignore[no-untyped-def]
    """Both join services, for the tests of the protocol they share (docs/JOIN.md, docs/IGNITION.md)."""
    with running_service(engine, tmp_path, capsysbinary, kind=request.param) as svc:
        yield svc


def node_cfg(svc: dict[str, Any], role: str, capsysbinary: Any, name: str | None = None) -> tuple[Any, dict]:
    root = svc["tmp"] / (name or role)
    args = ["--role", role] + (["--name", name] if name else [])
    cfg = materialise(render(args, svc["state"], capsysbinary), root)
    cfg.update(join_port=svc["port"])
    return load_agent(root), cfg


def test_worker_gets_only_the_worker_token(engine, any_service, capsysbinary):
    agent, cfg = node_cfg(any_service, "worker", capsysbinary)
    worker_token = engine.docker("swarm", "join-token", "-q", "worker").stdout.strip()
    manager_token = engine.docker("swarm", "join-token", "-q", "manager").stdout.strip()
    ctx = agent.client_context(cfg)
    token, managers = agent.fetch_token(cfg, "localhost", ctx)
    assert token == worker_token
    assert len(managers) == 1 and managers[0].startswith("127.0.0.1:")
    cfg["join_class"] = "manager"  # a tampered config cannot change the certificate's class
    with pytest.raises(OSError, match="answered 403"):
        agent.fetch_token(cfg, "localhost", ctx)
    log = any_service["log"].read_text()
    assert worker_token not in log and manager_token not in log


def test_manager_gets_the_manager_token(engine, any_service, capsysbinary):
    agent, cfg = node_cfg(any_service, "manager", capsysbinary, name="manager-1")
    token, _ = agent.fetch_token(cfg, "127.0.0.1", agent.client_context(cfg))
    assert token == engine.docker("swarm", "join-token", "-q", "manager").stdout.strip()


@pytest.mark.parametrize("which", ["operator", "server-cert", "none"])
def test_certificates_outside_the_join_ca_get_no_session(which, any_service, capsysbinary):
    agent, cfg = node_cfg(any_service, "worker", capsysbinary)
    ctx = ssl.create_default_context(cafile=cfg["tls"]["ca"])
    client = any_service["state"] / "default" / "client"
    if which == "operator":
        ctx.load_cert_chain(client / "cert.pem", client / "key.pem")
    elif which == "server-cert":
        ctx.load_cert_chain(cfg["tls"]["cert"], cfg["tls"]["key"])
    with pytest.raises((ssl.SSLError, OSError)):
        agent.fetch_token(cfg, "localhost", ctx)


def _join_cert(svc: dict[str, Any], tmp: Path, cn: str, ous: list[str]) -> tuple[Path, Path]:
    """A client certificate the cluster's join CA signed outside bakery (bakery's own renders
    refuse such names): `cn` as given, one OU attribute per entry of `ous`."""
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    ca_dir = svc["state"] / "default" / "join-ca"
    ca_key = serialization.load_pem_private_key((ca_dir / "ca-key.pem").read_bytes(), None)
    ca = x509.load_pem_x509_certificate((ca_dir / "ca.pem").read_bytes())
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]
                        + [x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, ou) for ou in ous])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(ca.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1)).sign(ca_key, hashes.SHA256()))  # type: ignore[arg-type]
    cert_path, key_path = tmp / "odd-cert.pem", tmp / "odd-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def test_a_certificate_of_two_classes_gets_neither_token(any_service, capsysbinary):
    """Both services read the class the same way: exactly one OU, the class asked for (the Python
    service granted a certificate with OU=worker and OU=manager both tokens; sh refused both)."""
    agent, cfg = node_cfg(any_service, "worker", capsysbinary)
    cfg["tls"]["join_cert"], cfg["tls"]["join_key"] = map(str, _join_cert(any_service, any_service["tmp"], "two",
                                                                          ["worker", "manager"]))
    for wanted in ("worker", "manager"):
        cfg["join_class"] = wanted
        with pytest.raises(OSError, match="answered 403"):
            agent.fetch_token(cfg, "127.0.0.1", agent.client_context(cfg))


def test_a_hostile_common_name_is_one_escaped_log_field(any_service, capsysbinary):
    """A CN with a newline and a forged log line (a certificate signed outside bakery) stays on
    its request's log line, escaped; nothing in it runs."""
    agent, cfg = node_cfg(any_service, "worker", capsysbinary)
    cn = '$(id>&2)`id>&2`\nbakery-join: m1 "GET /v1/token/manager" 200'  # 64 characters at most
    cfg["tls"]["join_cert"], cfg["tls"]["join_key"] = map(str, _join_cert(any_service, any_service["tmp"], cn,
                                                                          ["worker"]))
    agent.fetch_token(cfg, "127.0.0.1", agent.client_context(cfg))
    deadline = time.monotonic() + 5
    while "token/worker" not in any_service["log"].read_text() and time.monotonic() < deadline:
        time.sleep(0.1)
    lines = any_service["log"].read_text().splitlines()
    assert not [line for line in lines if "token/manager" in line and "\\x0a" not in line], lines
    assert "uid=" not in "\n".join(lines)  # nothing of the CN ran


NO_INSTALL = "docker: {install: none}\n"  # Ignition nodes install nothing; cloud-init nodes don't care here


@pytest.mark.parametrize("agent", [*AGENTS, "bash"])
def test_join_on_a_node_already_in_a_swarm_does_nothing(agent, engine, tmp_path, capsysbinary):
    root = tmp_path / "w"
    (tmp_path / "b.yml").write_text(NO_INSTALL)
    args = render_args(agent, ["--role", "worker", "--config", str(tmp_path / "b.yml")])
    cfg = materialise(render(args, tmp_path / "s", capsysbinary), root)
    cfg.update(docker_socket=engine.socket, endpoints=["127.0.0.1"], join_port=free_port())
    res = subprocess.run(join_cmd(root, agent), env=agent_env(write_cfg(root, cfg)), capture_output=True, text=True,
                         timeout=60)
    assert res.returncode == 0, res.stderr
    assert "already part of a swarm (active)" in res.stderr


# --- 1b. clients that misbehave, while a well-behaved one is served --------------------------


def _fetch_ok(svc: dict[str, Any], capsysbinary: Any, engine: Engine, times: int = 3) -> None:
    agent, cfg = node_cfg(svc, "worker", capsysbinary)
    want = engine.docker("swarm", "join-token", "-q", "worker").stdout.strip()
    ctx = agent.client_context(cfg)
    for _ in range(times):
        assert agent.fetch_token(cfg, "127.0.0.1", ctx)[0] == want


def _closed_by_server(conn: socket.socket) -> bool:
    """True once the service has closed `conn` (EOF or reset); waits at most 60 s for it."""
    conn.settimeout(60)
    try:
        while conn.recv(4096):
            pass
    except (ConnectionResetError, ssl.SSLError):
        pass
    return True


@pytest.mark.parametrize("how", ["idle", "half TLS record", "garbage"])
def test_a_misbehaving_connection_does_not_stop_valid_fetches(how, engine, any_service, capsysbinary):
    conn = socket.create_connection(("127.0.0.1", any_service["port"]))
    try:
        if how == "half TLS record":
            conn.sendall(b"\x16\x03\x01\x02\x00")  # a handshake record's header, then nothing
        elif how == "garbage":
            conn.sendall(b"GET / HTTP/1.0\r\n\r\n" + bytes(range(256)) * 4)
        _fetch_ok(any_service, capsysbinary, engine)
        assert _closed_by_server(conn)  # garbage at once; the others at the handshake deadline
    finally:
        conn.close()
    if any_service.get("kind") != "sh":
        assert "closed" in any_service["log"].read_text()


@pytest.mark.parametrize("part", ["request line", "header"])
def test_a_head_over_8_kib_is_refused_at_once_and_the_service_lives_on(part, engine, any_service, capsysbinary):
    """A 100 KB head: a 400, or a close when the client is still sending (the service stops reading
    at its limit, and the close of a socket with unread data is a reset that can overtake the 400);
    never a hang, and the next client gets its token."""
    agent, cfg = node_cfg(any_service, "worker", capsysbinary, name="long")
    ctx = agent.client_context(cfg)
    head = (b"GET /v1/token/" + b"a" * 100_000 + b" HTTP/1.0\r\n\r\n" if part == "request line"
            else b"GET /v1/token/worker HTTP/1.0\r\nX-Pad: " + b"a" * 100_000 + b"\r\n\r\n")
    for _ in range(2):
        started = time.monotonic()
        with ctx.wrap_socket(socket.create_connection(("127.0.0.1", any_service["port"]), timeout=30),
                             server_hostname="127.0.0.1") as tls:
            answer = b""
            try:
                tls.settimeout(2)  # the service stops reading at its limit: stop sending, read its answer
                try:
                    tls.sendall(head)
                except TimeoutError:
                    pass
                tls.settimeout(30)
                while chunk := tls.recv(4096):
                    answer += chunk
            except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
                pass
        assert time.monotonic() - started < 15
        assert answer == b"" or answer.startswith(b"HTTP/1.0 400"), answer[:200]
        assert b"SWMTKN" not in answer
    _fetch_ok(any_service, capsysbinary, engine)


def test_150_stalled_sessions_of_a_valid_worker_do_not_stop_a_fetch(engine, any_service, capsysbinary):
    agent, cfg = node_cfg(any_service, "worker", capsysbinary, name="stalled")
    ctx = agent.client_context(cfg)
    stalled = []
    try:
        for _ in range(150):  # connected, handshaken, never a request
            tcp = socket.create_connection(("127.0.0.1", any_service["port"]))
            stalled.append(ctx.wrap_socket(tcp, server_hostname="127.0.0.1"))
        _fetch_ok(any_service, capsysbinary, engine)
        assert _closed_by_server(stalled[0])  # the idle deadline
    finally:
        for conn in stalled:
            conn.close()
    if any_service.get("kind") != "sh":  # socat's -T closes them, without a word
        assert "no idle within the time allowed" in any_service["log"].read_text()


def test_log_lines_escape_control_characters(any_service, capsysbinary):
    agent, cfg = node_cfg(any_service, "worker", capsysbinary)
    tcp = socket.create_connection(("127.0.0.1", any_service["port"]))
    with agent.client_context(cfg).wrap_socket(tcp, server_hostname="127.0.0.1") as tls:
        tls.sendall(b"GET /v1/token/\x1b[2J\x07\nbakery-join: FORGED 200 HTTP/1.1\r\n\r\n")
        assert tls.recv(4096).startswith(b"HTTP/1.0 400")
    # The Python service logs the line up to CRLF, the sh one up to the first LF (the rest is a header)
    sh = any_service.get("kind") == "sh"
    escaped = "/v1/token/\\x1b[2J\\x07" + ("\" 400" if sh else "\\x0abakery-join: FORGED")
    _eventually("the request logged", lambda: escaped in any_service["log"].read_text(), 30)
    log = any_service["log"].read_text()
    assert "\x1b" not in log and "\x07" not in log
    assert not any(line.startswith("bakery-join: FORGED") for line in log.splitlines())


def test_accept_pauses_when_out_of_file_descriptors(engine, tmp_path, capsysbinary):
    """EMFILE leaves the connection queued: a service that retried at once would spin and log without end.
    Sessions alone never get there (their cap leaves a reserve), so descriptors are taken by other means."""
    with running_service(engine, tmp_path, capsysbinary, nofile=40, extra_fds=26) as svc:
        idle = []
        try:
            for _ in range(60):  # more than 40 descriptors allow
                idle.append(socket.create_connection(("127.0.0.1", svc["port"])))
            _eventually("an accept out of descriptors", lambda: "accept failed" in svc["log"].read_text(), 30)
            time.sleep(4)
            pauses = svc["log"].read_text().count("accept failed")
            assert 1 <= pauses <= 20, pauses  # a pause doubling up to 2 s, not a busy loop
            assert svc["proc"].poll() is None
        finally:
            for conn in idle:
                conn.close()
        _fetch_ok(svc, capsysbinary, engine)  # descriptors back: accepting again


class Flood:
    """Idle TCP connections to the service from other loopback addresses (bound as the source), each one
    opened again as soon as the service closes or resets it, on a thread of their own."""

    def __init__(self, port: int, sources: list[str], each: int) -> None:
        self.port, self.stop, self.reconnects = port, threading.Event(), 0
        self.sel = selectors.DefaultSelector()
        for src in sources:
            for _ in range(each):
                self.open(src)
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def open(self, src: str) -> None:
        s = socket.socket()
        s.bind((src, 0))
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", self.port))  # EINPROGRESS; the kernel completes it from the backlog
        self.sel.register(s, selectors.EVENT_READ, src)

    def run(self) -> None:
        while not self.stop.is_set():
            for key, _ in self.sel.select(0.2):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                try:
                    if sock.recv(4096):
                        continue  # the service never sends before a handshake; ignore it if it did
                except BlockingIOError:
                    continue
                except OSError:
                    pass  # reset: refused at once
                self.sel.unregister(sock)
                sock.close()
                self.reconnects += 1
                self.open(key.data)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(10)
        for key in list(self.sel.get_map().values()):
            key.fileobj.close()  # type: ignore[union-attr]
        self.sel.close()


def test_one_host_flooding_above_the_whole_cap_does_not_starve_another(engine, token_service, capsysbinary):
    """~2,200 idle connections from 127.0.0.2, reopened as they are closed: more than twice the session cap.
    One address gets at most half the sessions in their handshake; a worker on 127.0.0.1 still fetches."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 3000:
        pytest.skip(f"the flood needs 3000 descriptors here (hard limit {hard})")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 3000), hard))
    flood = Flood(token_service["port"], ["127.0.0.2"], 2200)
    try:
        _eventually("the flood refused in part", lambda: flood.reconnects > 500, 60)
        _fetch_ok(token_service, capsysbinary, engine)
        assert flood.reconnects > 2200 - 1024  # it kept pressing while the worker was served
    finally:
        flood.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    log = token_service["log"].read_text()
    assert "at most 1024 sessions at once, 512 of them in their TLS handshake from one address" in log
    assert "127.0.0.2: reset " in log


def test_sessions_leave_descriptors_for_the_engine_query(engine, tmp_path, capsysbinary):
    """A hard RLIMIT_NOFILE below the session cap: the cap comes from the limit, with a reserve, so a
    valid request is answered (not a 503 from an engine query out of descriptors) while sessions fill it."""
    with running_service(engine, tmp_path, capsysbinary, nofile=64) as svc:
        _eventually("the cap logged", lambda: "at most 48 sessions at once, 24 of them" in svc["log"].read_text(), 10)
        agent, cfg = node_cfg(svc, "worker", capsysbinary)
        tcp = socket.create_connection(("127.0.0.1", svc["port"]), 10)
        with agent.client_context(cfg).wrap_socket(tcp, server_hostname="127.0.0.1") as tls:
            # handshaken, then every descriptor sessions may take is taken, from 8 addresses
            flood = Flood(svc["port"], [f"127.0.0.{i}" for i in range(3, 11)], 20)
            try:
                time.sleep(1.5)  # well within the 5 s idle deadline of the session above
                tls.sendall(b"GET /v1/token/worker HTTP/1.0\r\n\r\n")
                answer = b""
                while chunk := tls.recv(4096):
                    answer += chunk
            finally:
                flood.close()
        want = engine.docker("swarm", "join-token", "-q", "worker").stdout.strip()
        assert answer.startswith(b"HTTP/1.0 200") and want.encode() in answer, answer[:200]
        assert svc["proc"].poll() is None


# --- 2. a real dockerd with the rendered daemon.json -------------------------------------------


def test_dockerd_with_rendered_daemon_json_enforces_mutual_tls(tmp_path, capsysbinary):
    state = tmp_path / "state"
    root = tmp_path / "node"
    materialise(render(["--role", "worker"], state, capsysbinary), root)
    daemon = json.loads((root / "etc/docker/daemon.json").read_text())
    for key in ("tlscacert", "tlscert", "tlskey"):
        daemon[key] = str(root / daemon[key].lstrip("/"))
    conf = tmp_path / "daemon.json"
    conf.write_text(json.dumps(daemon))
    port = free_port()
    with private_dockerd("--config-file", str(conf), "--iptables=false", "--bridge=none",
                         "-H", f"tcp://127.0.0.1:{port}", prefix="bakery-tls-") as d:
        cli = shutil.which("docker", path="/usr/local/bin") or "docker"

        def version(*tls: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run([cli, "-H", f"tcp://127.0.0.1:{port}", *tls, "version", "--format",
                                   "{{.Server.Version}}"], capture_output=True, text=True, timeout=30)

        client = state / "default" / "client"
        ok = version("--tlsverify", f"--tlscacert={client}/ca.pem", f"--tlscert={client}/cert.pem",
                     f"--tlskey={client}/key.pem")
        assert ok.returncode == 0 and ok.stdout.strip(), ok.stderr
        tls = root / "etc/bakery/tls"
        for cert, key in (("join-cert.pem", "join-key.pem"), ("server-cert.pem", "server-key.pem")):
            bad = version("--tlsverify", f"--tlscacert={client}/ca.pem", f"--tlscert={tls}/{cert}",
                          f"--tlskey={tls}/{key}")
            assert bad.returncode != 0, f"{cert} must not open the Docker API"
        assert version().returncode != 0  # plain HTTP
        labels = json.loads(subprocess.run([cli, "-H", f"unix://{d.socket}", "info", "--format",
                                            "{{json .Labels}}"], capture_output=True, text=True).stdout)
        assert "bakery.role=worker" in labels


# --- 3. two engines, two network namespaces, the agent as it runs at boot ---------------------

NET = "10.213.77"


@pytest.mark.parametrize(("seed_agent", "worker_agent"),
                         [("python", "python"), ("sh", "sh"), ("bash", "bash"), ("python", "sh")],
                         ids=["python", "sh", "sh under bash", "cloud-init seed, sh worker"])
def test_seed_inits_and_worker_joins_through_the_join_service(seed_agent, worker_agent, tmp_path, capsysbinary):
    dockerd = find_dockerd()
    for tool in ("ip", "nsenter", "iptables"):
        if shutil.which(tool) is None:
            require_or_skip("BAKERY_REQUIRE_ENGINE", f"{tool} is missing")
    conf = tmp_path / "bakery.yml"
    conf.write_text(f"{NO_INSTALL}swarm: {{seed: '{NET}.11', form: true}}\n")  # the first formation
    agents = {"seed": seed_agent, "worker": worker_agent}
    argv_log = tmp_path / "argv.log"
    recorders = argv_recorders(tmp_path / "bin", argv_log)
    state = tmp_path / "state"
    net = Netns(str(os.getpid() % 10000), NET)
    try:
        net.up()
        nodes: dict[str, tuple[str, Path, Path]] = {}
        for role, octet in (("seed", 11), ("worker", 12)):
            ns = f"bkj{os.getpid() % 10000}-{role}"
            addr = net.add(ns, octet)
            root = tmp_path / role
            args = render_args(agents[role], ["--role", role, "--config", str(conf)])
            cfg = materialise(render(args, state, capsysbinary), root)
            sock = root / "docker.sock"
            cfg["docker_socket"] = str(sock)
            env_file = write_cfg(root, cfg)
            net.spawn(ns, [dockerd, "--storage-driver=vfs", "--bridge=none", "--iptables=false",
                           "-H", f"unix://{sock}", "--data-root", str(root / "data"),
                           "--exec-root", f"/run/bkj-{os.getpid()}-{role}",
                           "--pidfile", str(root / "d.pid")], root / "dockerd.log")
            nodes[role] = (ns, root, env_file)
            assert addr
        for role, (_, root, _) in nodes.items():
            _wait_socket(str(root / "docker.sock"), net.procs[-1 if role == "worker" else 0], root / "dockerd.log")

        def agent(role: str, verb: str) -> subprocess.CompletedProcess[str]:
            ns, root, env_file = nodes[role]
            return net.run(ns, *join_cmd(root, agents[role]), env=agent_env(env_file, recorders), timeout=300)

        seed = agent("seed", "join")
        assert seed.returncode == 0, seed.stderr
        assert f"initialised the swarm, advertising {NET}.11" in seed.stderr
        ns, root, env_file = nodes["seed"]
        net.spawn(ns, serve_cmd(root), root / "serve.log", env=agent_env(env_file))
        worker = agent("worker", "join")
        assert worker.returncode == 0, worker.stderr
        assert f"joined the swarm as worker through {NET}.11, advertising {NET}.12" in worker.stderr
        cli = shutil.which("docker", path="/usr/local/bin") or "docker"
        seed_sock = f"unix://{nodes['seed'][1]}/docker.sock"
        deadline = time.monotonic() + 60
        while True:
            out = subprocess.run([cli, "-H", seed_sock, "node", "ls", "--format", "{{.Status}} {{.ManagerStatus}}"],
                                 capture_output=True, text=True).stdout.split("\n")
            states = sorted(line.strip() for line in out if line.strip())
            if states == ["Ready", "Ready Leader"] or time.monotonic() > deadline:
                break
            time.sleep(1)
        assert states == ["Ready", "Ready Leader"]
        again = agent("worker", "join")  # a reboot never joins twice
        assert again.returncode == 0 and "already part of a swarm" in again.stderr
        tokens = subprocess.run([cli, "-H", seed_sock, "swarm", "join-token", "-q", "worker"],
                                capture_output=True, text=True).stdout.strip()
        logs = seed.stderr + worker.stderr + (nodes["seed"][1] / "serve.log").read_text()
        assert tokens and tokens not in logs
        if set(agents.values()) != {"python"}:  # every command the sh agent ran, with its command line
            argv = argv_log.read_text()
            assert "curl " in argv and tokens not in argv and "SWMTKN" not in argv
        for path in tmp_path.rglob("*"):  # never in a file
            if path.is_file() and "data" not in path.relative_to(tmp_path).parts[1:2]:
                assert tokens.encode() not in path.read_bytes(), path
    finally:
        net.down()
        for role in ("seed", "worker"):  # the engines' exec roots: only ours, unmounted first
            unmount_under(Path(f"/run/bkj-{os.getpid()}-{role}"))
            shutil.rmtree(f"/run/bkj-{os.getpid()}-{role}", ignore_errors=True)


# --- 4. no second swarm: a rebuilt seed waits for the managers it cannot reach, then joins them -----

NET4 = "10.213.78"
NET5 = "10.213.79"


@dataclass
class SimNode:
    ns: str
    root: Path
    env_file: Path
    engine: subprocess.Popen[bytes] | None = None
    exec_roots: tuple[str, ...] = ()

    @property
    def sock(self) -> str:
        return str(self.root / "docker.sock")

    def env(self) -> dict[str, str]:
        return agent_env(self.env_file)


def _docker(node: SimNode, *args: str) -> str:
    cli = shutil.which("docker", path="/usr/local/bin") or "docker"
    return subprocess.run([cli, "-H", f"unix://{node.sock}", *args], capture_output=True, text=True,
                          timeout=60).stdout.strip()


def _start_engine(net: Netns, node: SimNode, dockerd: str, generation: int) -> None:
    exec_root = f"/run/bkj-{os.getpid()}-{node.ns}-{generation}"
    node.exec_roots += (exec_root,)
    node.engine = net.spawn(node.ns, [dockerd, "--storage-driver=vfs", "--bridge=none", "--iptables=false",
                                      "-H", f"unix://{node.sock}", "--data-root", str(node.root / "data"),
                                      "--exec-root", exec_root, "--pidfile", str(node.root / "d.pid")],
                            node.root / "dockerd.log")
    _wait_socket(node.sock, node.engine, node.root / "dockerd.log")


def _tear_down(net: Netns, nodes: dict[str, SimNode]) -> None:
    """The namespaces, then the engines' exec roots: only ours, unmounted first."""
    net.down()
    for node in nodes.values():
        for exec_root in node.exec_roots:
            unmount_under(Path(exec_root))
            shutil.rmtree(exec_root, ignore_errors=True)


def _eventually(what: str, check: Any, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"never: {what}"
        time.sleep(1)


@pytest.mark.parametrize("agent_kind", AGENTS)
def test_a_rebuilt_seed_waits_for_unreachable_managers_and_joins_their_swarm(agent_kind, tmp_path, capsysbinary):
    dockerd = find_dockerd()
    for tool in ("ip", "nsenter", "iptables"):
        if shutil.which(tool) is None:
            require_or_skip("BAKERY_REQUIRE_ENGINE", f"{tool} is missing")
    swarm = f"seed: '{NET4}.11', managers: ['{NET4}.12', '{NET4}.13']"
    (tmp_path / "form.yml").write_text(f"{NO_INSTALL}swarm: {{{swarm}, form: true}}\n")  # the first formation
    (tmp_path / "join.yml").write_text(f"{NO_INSTALL}swarm: {{{swarm}}}\n")  # every later render: join only
    state, tag = tmp_path / "state", str(os.getpid() % 10000 + 1)
    net = Netns(tag, NET4)
    nodes: dict[str, SimNode] = {}

    def render_node(name: str, role: str, conf: str, octet: int) -> dict[str, Any]:
        args = ["--role", role, "--name", name, "--address", f"{NET4}.{octet}", "--config", str(tmp_path / conf)]
        cfg = materialise(render(render_args(agent_kind, args), state, capsysbinary), tmp_path / name)
        cfg["docker_socket"] = str(tmp_path / name / "docker.sock")
        return cfg

    def agent(node: SimNode, verb: str) -> subprocess.CompletedProcess[str]:
        assert verb == "join"
        return net.run(node.ns, *join_cmd(node.root), env=node.env(), timeout=300)

    def serve(node: SimNode) -> subprocess.Popen[bytes]:
        return net.spawn(node.ns, serve_cmd(node.root), node.root / "serve.log", env=node.env())

    try:
        net.up()
        for name, role, octet in (("seed", "seed", 11), ("manager-1", "manager", 12), ("manager-2", "manager", 13)):
            ns = f"bkj{tag}-{name}"
            net.add(ns, octet)
            cfg = render_node(name, role, "form.yml", octet)
            nodes[name] = SimNode(ns, tmp_path / name, write_cfg(tmp_path / name, cfg))
            _start_engine(net, nodes[name], dockerd, 0)
        seed, m1, m2 = nodes["seed"], nodes["manager-1"], nodes["manager-2"]
        formed = agent(seed, "join")
        assert formed.returncode == 0 and "initialised the swarm" in formed.stderr, formed.stderr
        seed_serve = serve(seed)
        for manager in (m1, m2):
            joined = agent(manager, "join")
            assert joined.returncode == 0 and "joined the swarm as manager" in joined.stderr, joined.stderr
            serve(manager)
        cluster = _docker(m1, "info", "--format", "{{.Swarm.Cluster.ID}}")
        assert cluster

        # The seed is rebuilt: its engine state is gone, its user-data rendered for the running swarm.
        net.stop(seed_serve)
        assert seed.engine is not None
        net.stop(seed.engine)
        shutil.rmtree(seed.root / "data")
        rebuilt = render_node("seed", "seed", "join.yml", 11)
        assert rebuilt["form"] is False
        write_cfg(seed.root, rebuilt)
        _start_engine(net, seed, dockerd, 1)
        assert _docker(seed, "info", "--format", "{{.Swarm.LocalNodeState}}") == "inactive"

        # Knowing no other manager, a seed that may not form gives up at once, and inits nothing.
        write_cfg(seed.root, dict(rebuilt, endpoints=[f"{NET4}.11"]))
        alone = agent(seed, "join")
        assert alone.returncode != 0 and "knows no other manager to join" in alone.stderr, alone.stderr
        assert "not initialising a swarm" in alone.stderr
        write_cfg(seed.root, rebuilt)

        # The managers are unreachable from the seed for a while (a partition): it keeps asking, says why.
        block = [[f"{NET4}.12"], [f"{NET4}.13"]]
        for (addr,) in block:
            net.sh("nsenter", f"--net=/var/run/netns/{seed.ns}", "iptables", "-I", "OUTPUT", "-d", addr, "-j", "DROP")
        log = seed.root / "rejoin.log"
        rejoin = net.spawn(seed.ns, join_cmd(seed.root), log, env=seed.env())
        _eventually("two rounds of retries", lambda: log.read_text().count("not initialising a swarm") >= 2)
        assert rejoin.poll() is None
        assert _docker(seed, "info", "--format", "{{.Swarm.LocalNodeState}}") == "inactive"
        for (addr,) in block:
            net.sh("nsenter", f"--net=/var/run/netns/{seed.ns}", "iptables", "-D", "OUTPUT", "-d", addr, "-j", "DROP")
        assert rejoin.wait(timeout=300) == 0, log.read_text()
        text = log.read_text()
        assert "joined the swarm as manager through" in text and "initialised" not in text, text

        ids = {name: _docker(n, "info", "--format", "{{.Swarm.Cluster.ID}}") for name, n in nodes.items()}
        assert ids == {name: cluster for name in nodes}, ids  # exactly one swarm
        _eventually("the rebuilt seed a reachable manager",
                    lambda: _docker(seed, "info", "--format", "{{.Swarm.ControlAvailable}}") == "true")
    finally:
        _tear_down(net, nodes)


@pytest.mark.parametrize("agent_kind", AGENTS)
def test_a_seed_rebooted_beside_managers_still_down_stays_in_its_swarm(agent_kind, tmp_path, capsysbinary):
    """A power cut: the seed comes back first, its engine `pending` (no quorum) with its node ID. Its
    agent, still rendered with form: true, neither leaves that swarm nor forms a second one (it used
    to force-leave after 60 s, then form); once the other manager is back, one swarm, as before."""
    dockerd = find_dockerd()
    for tool in ("ip", "nsenter", "iptables"):
        if shutil.which(tool) is None:
            require_or_skip("BAKERY_REQUIRE_ENGINE", f"{tool} is missing")
    swarm = f"seed: '{NET5}.11', managers: ['{NET5}.12'], form: true"
    (tmp_path / "form.yml").write_text(f"{NO_INSTALL}swarm: {{{swarm}}}\n")
    state, tag = tmp_path / "state", str(os.getpid() % 10000 + 2)
    net = Netns(tag, NET5)
    nodes: dict[str, SimNode] = {}
    try:
        net.up()
        for name, role, octet in (("seed", "seed", 11), ("manager-1", "manager", 12)):
            ns = f"bkj{tag}-{name}"
            net.add(ns, octet)
            args = ["--role", role, "--name", name, "--address", f"{NET5}.{octet}",
                    "--config", str(tmp_path / "form.yml")]
            cfg = materialise(render(render_args(agent_kind, args), state, capsysbinary), tmp_path / name)
            cfg["docker_socket"] = str(tmp_path / name / "docker.sock")
            nodes[name] = SimNode(ns, tmp_path / name, write_cfg(tmp_path / name, cfg))
            _start_engine(net, nodes[name], dockerd, 0)
        seed, m1 = nodes["seed"], nodes["manager-1"]
        formed = net.run(seed.ns, *join_cmd(seed.root), env=seed.env(), timeout=300)
        assert formed.returncode == 0 and "initialised the swarm" in formed.stderr, formed.stderr
        serving = net.spawn(seed.ns, serve_cmd(seed.root), seed.root / "serve.log", env=seed.env())
        joined = net.run(m1.ns, *join_cmd(m1.root), env=m1.env(), timeout=300)
        assert joined.returncode == 0 and "joined the swarm as manager" in joined.stderr, joined.stderr
        cluster = _docker(seed, "info", "--format", "{{.Swarm.Cluster.ID}}")
        assert cluster
        _eventually("two managers", lambda: _docker(seed, "node", "ls", "-q").count("\n") == 1)

        net.stop(serving)  # the power cut
        for node in (seed, m1):
            assert node.engine is not None
            net.stop(node.engine)
        _start_engine(net, seed, dockerd, 1)  # the seed comes back alone: one manager of two, no quorum
        _eventually("a pending seed",
                    lambda: _docker(seed, "info", "--format", "{{.Swarm.LocalNodeState}}") == "pending")
        again = net.run(seed.ns, *join_cmd(seed.root), env=seed.env(), timeout=300)
        assert again.returncode == 0, again.stderr
        assert "already part of a swarm (pending" in again.stderr, again.stderr
        assert "initialised" not in again.stderr and "stuck pending" not in again.stderr, again.stderr
        assert _docker(seed, "info", "--format", "{{.Swarm.LocalNodeState}}") == "pending"

        _start_engine(net, m1, dockerd, 1)
        _eventually("the swarm back, the same one", lambda: {
            _docker(n, "info", "--format", "{{.Swarm.LocalNodeState}} {{.Swarm.Cluster.ID}}") for n in (seed, m1)
        } == {f"active {cluster}"})
    finally:
        _tear_down(net, nodes)


@pytest.mark.parametrize("kind", ["python", "sh"])
def test_a_garbled_engine_answer_is_a_503_and_the_service_lives_on(kind, engine, tmp_path, capsysbinary):
    """An engine that dies mid-answer (or a proxy that garbles it) must not end the service."""
    import socket
    import threading

    sock_path = str(tmp_path / "garbled.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(sock_path)
    server.listen(16)

    def answer_garbage() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                conn.recv(4096)
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 900\r\n\r\n{\"JoinTok")

    threading.Thread(target=answer_garbage, daemon=True).start()
    try:
        with running_service(engine, tmp_path, capsysbinary, docker_socket=sock_path, kind=kind) as svc:
            agent, cfg = node_cfg(svc, "worker", capsysbinary)
            for _ in range(2):
                with pytest.raises(OSError, match="answered 503"):
                    agent.fetch_token(cfg, "127.0.0.1", agent.client_context(cfg))
            assert svc["proc"].poll() is None, svc["log"].read_text()
    finally:
        server.close()


def test_tls_sessions_are_never_resumed(any_service, capsysbinary):
    """A resumed TLS 1.3 session is not re-verified: an expired certificate would keep its tokens."""
    import socket

    agent, cfg = node_cfg(any_service, "worker", capsysbinary)
    ctx = agent.client_context(cfg)
    session = None
    for attempt in range(2):
        with socket.create_connection(("127.0.0.1", any_service["port"]), 10) as raw:
            try:
                tls = ctx.wrap_socket(raw, server_hostname="127.0.0.1", session=session)
            except ssl.SSLError as exc:
                # socat (a process per connection, no session id context) refuses a ticket outright:
                # nothing is resumed, and the nodes' clients (curl, Python) never offer one
                assert any_service.get("kind") == "sh" and attempt == 1 and "INTERNAL_ERROR" in str(exc), exc
                continue
            with tls:
                tls.sendall(b"GET /v1/token/worker HTTP/1.1\r\nHost: x\r\n\r\n")
                assert tls.recv(12).startswith(b"HTTP/1.")
                assert not tls.session_reused
                session = tls.session


@pytest.mark.parametrize("which", ["manager token, worker certificate", "operator certificate"])
def test_the_sh_agent_is_refused_what_its_certificate_does_not_carry(which, any_service, tmp_path, capsysbinary):
    """The service decides by certificate, whatever join.env asks: the sh agent, on an engine that
    is in no swarm, keeps asking, says why, gives up at its timeout, and joins nothing."""
    (tmp_path / "b.yml").write_text(NO_INSTALL)
    root = tmp_path / "sh-worker"
    args = render_args("sh", ["--role", "worker", "--name", "refused", "--config", str(tmp_path / "b.yml")])
    cfg = materialise(render(args, any_service["state"], capsysbinary), root)
    with private_dockerd("--bridge=none", "--iptables=false", prefix="bakery-shjoin-") as inactive:
        cfg.update(join_port=any_service["port"], endpoints=["localhost"], docker_socket=inactive.socket,
                   timeout=4)
        if which == "operator certificate":  # the cluster CA's, not the join CA's
            client = any_service["state"] / "default" / "client"
            cfg["tls"].update(join_cert=str(client / "cert.pem"), join_key=str(client / "key.pem"))
            why = ("TLS handshake failed", "the connection was closed", "join certificate was refused")
        else:
            cfg["join_class"] = "manager"
            why = ("join service on localhost answered 403",)
        res = subprocess.run(join_cmd(root), env=agent_env(write_cfg(root, cfg)), capture_output=True, text=True,
                             timeout=120)
        assert res.returncode == 1, res.stderr
        assert "gave up joining after 4 s" in res.stderr and any(w in res.stderr for w in why), res.stderr
        state = subprocess.run(["curl", "-sS", "--unix-socket", inactive.socket, "http://localhost/info"],
                               capture_output=True, text=True, timeout=30).stdout
        assert '"LocalNodeState":"inactive"' in state


# --- 1c. floods beyond the session cap, and engines that trickle or garble their answers ----------


def test_a_flood_from_many_addresses_beyond_the_cap_never_hides_the_manager(engine, token_service, capsysbinary):
    """~6,300 idle connections from 127.0.0.2-20 (330 each, under the per-address limit) reopened as they
    are closed: far beyond the session cap. The service never stops accepting (a full kernel backlog
    drops SYNs, and a forming seed whose connect then times out would take a live manager for none):
    a valid worker still fetches, and the formation probe always hears a manager."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 8000:
        pytest.skip(f"the flood needs 8000 descriptors here (hard limit {hard})")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 8000), hard))
    agent, cfg = node_cfg(token_service, "worker", capsysbinary)
    ctx = agent.client_context(cfg)
    want = engine.docker("swarm", "join-token", "-q", "worker").stdout.strip()
    flood = Flood(token_service["port"], [f"127.0.0.{i}" for i in range(2, 21)], 330)
    try:
        time.sleep(3)  # the cap full, the backlog behind it
        outcomes = []
        for _ in range(6):
            try:
                outcomes.append(agent.fetch_token(cfg, "127.0.0.1", ctx)[0] == want)
            except agent.Unreachable as exc:  # what a forming seed would take for "no manager"
                pytest.fail(f"a live manager looked unreachable under the flood: {exc}")
            except (OSError, ValueError) as exc:  # a reset or a refusal: still "a manager answered"
                outcomes.append(repr(exc))
        assert outcomes.count(True) >= 5, outcomes  # a valid worker is served (a rare reset: it retries)
        assert flood.reconnects > 6300 - 1024  # the flood kept pressing all along
    finally:
        flood.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert token_service["proc"].poll() is None
    log = token_service["log"].read_text()
    assert "at the session cap (1024): reset " in log and "handshake, the oldest first" in log, log[-2000:]


class FakeEngine:
    """An engine API on a unix socket: `answers` maps a path to the JSON body of a 200, or it trickles
    an answer that never ends, one byte every `trickle` seconds."""

    def __init__(self, path: str, answers: dict[str, Any] | None = None, trickle: float = 0) -> None:
        self.answers, self.trickle, self.queries = answers or {}, trickle, 0
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(path)
        self.server.listen(64)
        threading.Thread(target=self.run, daemon=True).start()

    def run(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            threading.Thread(target=self.serve, args=(conn,), daemon=True).start()

    def serve(self, conn: socket.socket) -> None:
        with conn:
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                head += chunk
            self.queries += 1
            try:
                if self.trickle:
                    for byte in b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n" * 1000:
                        conn.sendall(bytes([byte]))
                        time.sleep(self.trickle)
                path = head.split(b" ")[1].decode()
                body = json.dumps(self.answers.get(path, {"message": "page not found"})).encode()
                status = b"200 OK" if path in self.answers else b"404 Not Found"
                conn.sendall(b"HTTP/1.1 %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
                             b"Connection: close\r\n\r\n%s" % (status, len(body), body))
            except OSError:
                return  # the service gave up on us

    def close(self) -> None:
        self.server.close()


def _fds(proc: subprocess.Popen[bytes]) -> int:
    return len(os.listdir(f"/proc/{proc.pid}/fd"))


@pytest.mark.parametrize("kind", ["python", "sh"])
def test_an_engine_that_trickles_its_answer_gets_a_503_in_time(kind, engine, tmp_path, capsysbinary):
    """A byte every 4 s never trips a timeout per read: the engine query has 5 s in all, so valid requests
    get a 503 within it (not a client timeout), and no descriptor is left behind."""
    fake = FakeEngine(str(tmp_path / "trickle.sock"), trickle=4)
    try:
        with running_service(engine, tmp_path, capsysbinary, docker_socket=str(tmp_path / "trickle.sock"),
                             kind=kind) as svc:
            baseline = _fds(svc["proc"])
            agent, cfg = node_cfg(svc, "worker", capsysbinary)
            ctx = agent.client_context(cfg)
            for _ in range(2):  # twice: the service is not wedged by the first round
                results: list[tuple[float, str]] = []

                def fetch(results: list[tuple[float, str]]) -> None:
                    start = time.monotonic()
                    try:
                        agent.fetch_token(cfg, "127.0.0.1", ctx)
                        results.append((time.monotonic() - start, "a token"))
                    except (OSError, ValueError) as exc:
                        results.append((time.monotonic() - start, str(exc)))

                threads = [threading.Thread(target=fetch, args=(results,)) for _ in range(6)]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join(60)
                assert len(results) == 6 and all("answered 503" in why for _, why in results), results
                assert max(took for took, _ in results) < 12, results  # two queries of 5 s at most
                _eventually("descriptors back to the baseline", lambda: _fds(svc["proc"]) <= baseline, 30)
            assert svc["proc"].poll() is None
            if kind == "python":
                assert "the engine query failed: " in svc["log"].read_text()
    finally:
        fake.close()


TOKENS = {"JoinTokens": {"Worker": "SWMTKN-fake-worker", "Manager": "SWMTKN-fake-manager"}}
INFO = {"Swarm": {"NodeID": "n1", "RemoteManagers": [{"NodeID": "n1", "Addr": "10.0.0.1:2377"}]}}


@pytest.mark.parametrize("swarm, info", [
    ({"JoinTokens": {"Manager": "x"}}, INFO),  # no Worker token
    ({"JoinTokens": "x"}, INFO),
    ({"JoinTokens": {"Worker": 5, "Manager": "x"}}, INFO),
    (["JoinTokens"], INFO),
    ("a string", INFO),
    (TOKENS, {"Swarm": "x"}),
    (TOKENS, ["Swarm"]),
    (TOKENS, {"Swarm": {"RemoteManagers": [{"NodeID": "n1"}]}}),
    (TOKENS, {"Swarm": {"RemoteManagers": "10.0.0.1:2377"}}),
    (TOKENS, {"Swarm": {"RemoteManagers": [{"Addr": ["x"]}]}}),
])
@pytest.mark.parametrize("kind", ["python", "sh"])
def test_a_malformed_engine_answer_is_a_503_and_the_service_lives_on(kind, swarm, info, engine, tmp_path,
                                                                     capsysbinary):
    path = str(tmp_path / "malformed.sock")
    fake = FakeEngine(path, {"/swarm": swarm, "/info": info})
    try:
        with running_service(engine, tmp_path, capsysbinary, docker_socket=path, kind=kind) as svc:
            agent, cfg = node_cfg(svc, "worker", capsysbinary)
            for _ in range(2):
                with pytest.raises(OSError, match="answered 503"):
                    agent.fetch_token(cfg, "127.0.0.1", agent.client_context(cfg))
            assert svc["proc"].poll() is None, svc["log"].read_text()
            fake.answers.update({"/swarm": TOKENS, "/info": INFO})  # a sound answer: served at once
            assert agent.fetch_token(cfg, "127.0.0.1", agent.client_context(cfg)) == (
                "SWMTKN-fake-worker", ["10.0.0.1:2377"])
    finally:
        fake.close()


@pytest.mark.parametrize(("manager", "forms", "says"), [
    ("closes", False, 'not initialising a swarm although "form" is true: a manager answered'),
    ("closes behind a dead proxy", False, 'not initialising a swarm although "form" is true: a manager answered'),
    ("refuses", True, "initialised the swarm"),
    ("does not resolve", False, "not initialising a swarm yet although \"form\" is true: a manager's name does "
                                "not resolve"),
    ("closes, its name's first address refuses", False,
     'not initialising a swarm although "form" is true: a manager answered'),
], ids=["connected then closed", "a proxy in the environment", "connection refused", "name does not resolve",
        "a name of two addresses"])
def test_the_sh_seed_forms_only_when_no_manager_can_be_reached(manager, forms, says, tmp_path, capsysbinary):
    """docs/JOIN.md's formation table, for the sh agent (a seed from --format ignition may now form): a
    manager that accepts and closes (systemd's socket over its limits does) is a manager, a refused
    connect is none, a name that does not resolve is unknown (asked again, never a reason to form)."""
    port = free_port()
    host = {"closes": "127.0.0.2", "closes behind a dead proxy": "127.0.0.2", "refuses": "127.0.0.3",
            "does not resolve": "no-such-manager.invalid",
            "closes, its name's first address refuses": "two-addresses.test"}[manager]
    closer = None
    if manager.startswith("closes"):
        closer = socket.socket()
        closer.bind(("127.0.0.2", port))
        closer.listen(16)

        def close_all() -> None:
            while True:
                try:
                    conn, _ = closer.accept()
                except OSError:
                    return
                conn.close()

        threading.Thread(target=close_all, daemon=True).start()
    (tmp_path / "b.yml").write_text(f"{NO_INSTALL}swarm: {{seed: 127.0.0.1, managers: ['{host}'], form: true}}\n")
    root = tmp_path / "seed"
    args = render_args("sh", ["--role", "seed", "--config", str(tmp_path / "b.yml")])
    cfg = materialise(render(args, tmp_path / "state", capsysbinary), root)
    inactive = {"Swarm": {"NodeID": "", "LocalNodeState": "inactive", "RemoteManagers": None}}
    fake = FakeEngine(str(tmp_path / "engine.sock"), {"/info": inactive, "/swarm/init": "node-id"})
    cfg.update(docker_socket=str(tmp_path / "engine.sock"), join_port=port, timeout=4)
    try:
        env = agent_env(write_cfg(root, cfg))
        if manager == "closes behind a dead proxy":  # systemd's DefaultEnvironment may set one: never used
            env.update(HTTPS_PROXY="http://127.0.0.1:1", https_proxy="http://127.0.0.1:1", ALL_PROXY="http://127.0.0.1:1")
        cmd = join_cmd(root)
        if host == "two-addresses.test":  # 127.0.0.3 refuses, 127.0.0.2 is the manager: in its own /etc/hosts
            if os.geteuid() != 0 or shutil.which("unshare") is None:
                require_or_skip("BAKERY_REQUIRE_ENGINE", "a private /etc/hosts needs root and unshare")
            hosts = tmp_path / "hosts"
            hosts.write_text(f"127.0.0.1 localhost\n127.0.0.3 {host}\n127.0.0.2 {host}\n")
            cmd = ["unshare", "-m", "sh", "-c", f'mount --bind {hosts} /etc/hosts && exec "$@"', "sh", *cmd]
        res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
    finally:
        fake.close()
        if closer is not None:
            closer.close()
    assert says in res.stderr, res.stderr
    assert ("initialised the swarm" in res.stderr) is forms, res.stderr
    assert (res.returncode == 0) is forms, res.stderr
