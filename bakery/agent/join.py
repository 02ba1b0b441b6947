#!/usr/bin/python3
"""bakery-join: swarm init/join at boot, and the managers' join-token service.

  bakery-join join    fetch this node's join token over mutual TLS from a manager's
                      join service and join, retrying every manager it knows with
                      jittered backoff. Only a seed rendered with "form" may init
                      a swarm, and only when no manager can be reached at all.
  bakery-join serve   managers: hand out join tokens over mutual TLS; the class
                      (manager/worker) is the OU of the client certificate, which
                      only the cluster's join CA signs.

Configuration: /etc/bakery/join.json (no secrets). Tokens stay in memory: never
written, logged or put on a command line. Standard library only (python3 >= 3.9).
bakery embeds this file's text in the user-data and never imports it.
"""

from __future__ import annotations

import errno
import http.client
import json
import os
import random
import selectors
import socket
import ssl
import struct
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

CONFIG = os.environ.get("BAKERY_JOIN_CONFIG", "/etc/bakery/join.json")
Config = dict[str, Any]
CONNECT_TIMEOUT, FETCH_TIMEOUT = 5.0, 15.0  # client: TCP connect; every later step
RETRY_FIRST, RETRY_MAX = 1.0, 30.0  # client backoff bounds, seconds
HANDSHAKE_TIMEOUT, IDLE_TIMEOUT, REQUEST_TIMEOUT = 10.0, 5.0, 10.0  # service, per session
MAX_SESSIONS, BACKLOG, HEAD_LIMIT = 1024, 4096, 8192  # the kernel caps BACKLOG at net.core.somaxconn
# Descriptors never given to sessions: stdio, the listener, the selectors, the engine query's socket, spares.
FD_RESERVE = 16
# Sessions still in their TLS handshake (unauthenticated) from one source address, at most: half the
# session cap, so one host never holds the rest. A NAT gateway's nodes share an address (docs/JOIN.md).
PEER_HANDSHAKES = MAX_SESSIONS // 2
LOOPS, WORKERS = 2, 4  # selector loops (handshakes, request reads); threads for answers slow to write
# Control characters (C0, DEL, C1) and the backslash escaped: a log line is one line, unambiguous.
_ESCAPES = {c: f"\\x{c:02x}" for c in [*range(32), *range(127, 160)]} | {92: "\\\\"}
NOT_FORMING = 'not initialising a swarm: this seed was rendered to join a running one ("form" is false in join.json)'
SWARM_EXISTS = ('not initialising a swarm although "form" is true: a manager answered (any answer, even a refusal,'
                ' means a swarm exists), so this seed only joins')
_LOG = threading.Lock()  # one line per write: threads never interleave their lines


def log(msg: str) -> None:
    with _LOG:
        sys.stderr.write("bakery-join: " + msg.translate(_ESCAPES) + "\n")
        sys.stderr.flush()


class Docker(http.client.HTTPConnection):
    """HTTP over the local engine's unix socket."""

    def __init__(self, path: str, timeout: float = 60) -> None:
        super().__init__("localhost", timeout=timeout)
        self.socket_path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.socket_path)


# The join service's engine queries answer within a client's 15 s step, or it says 503.
TOKEN_QUERY_TIMEOUT = 5.0


def docker(cfg: Config, method: str, url: str, body: Any = None, timeout: float = 60) -> tuple[int, Any]:
    conn = Docker(cfg["docker_socket"], timeout)
    try:
        data = json.dumps(body).encode() if body is not None else None
        conn.request(method, url, body=data, headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        raw = resp.read()
    finally:
        conn.close()
    try:
        return resp.status, json.loads(raw) if raw else None
    except ValueError:
        return resp.status, raw.decode(errors="replace")


def wait_for_docker(cfg: Config, deadline: float) -> dict[str, Any]:
    while True:
        try:
            status, info = docker(cfg, "GET", "/info")
            if status == 200 and isinstance(info, dict):
                return info
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit("bakery-join: the local Docker engine never answered")
        time.sleep(2)


def swarm_state(info: Any) -> str:
    return str(((info or {}).get("Swarm") or {}).get("LocalNodeState", "inactive"))


def advertise_address(cfg: Config, peer: str | None = None) -> str:
    """The address this node uses to reach its peers (or its default route)."""
    iface = cfg.get("advertise_interface")
    if iface:
        out = subprocess.run(["ip", "-j", "-4", "addr", "show", "dev", iface],
                             capture_output=True, text=True, check=True).stdout
        for link in json.loads(out):
            for a in link.get("addr_info", []):
                return str(a["local"])
        raise SystemExit(f"bakery-join: interface {iface} has no IPv4 address")
    for target in ([peer] if peer else []) + ["192.0.2.1"]:  # TEST-NET: a route lookup, UDP connect sends nothing
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.connect((target, 9))
                addr = str(s.getsockname()[0])
            if not addr.startswith("127."):
                return addr
        except OSError:
            continue
    raise SystemExit("bakery-join: cannot find an address to advertise; set swarm.advertise_interface")


# --- the client: fetch a token, join ---------------------------------------------------------


def client_context(cfg: Config) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=cfg["tls"]["ca"])
    ctx.load_cert_chain(cfg["tls"]["join_cert"], cfg["tls"]["join_key"])
    return ctx


class Unreachable(OSError):
    """The TCP connection to a manager's join service could not be made (refused, timed out, no route,
    a name that does not resolve): the only failure that counts as "no manager there"."""


class _Https(http.client.HTTPSConnection):
    """A short TCP connect timeout (a partitioned manager costs 5 s, not 15), the longer one after it."""

    def __init__(self, host: str, port: int, ctx: ssl.SSLContext) -> None:
        super().__init__(host, port, timeout=FETCH_TIMEOUT, context=ctx)
        self.ctx = ctx

    def connect(self) -> None:
        try:
            sock = socket.create_connection((self.host, self.port), CONNECT_TIMEOUT)
        except ConnectionResetError:
            raise  # the connection was made, then reset (a service over its limits): a manager is there
        except OSError as exc:
            raise Unreachable(f"unreachable ({type(exc).__name__}: {exc})") from exc
        sock.settimeout(FETCH_TIMEOUT)
        self.sock = self.ctx.wrap_socket(sock, server_hostname=self.host)


def fetch_token(cfg: Config, endpoint: str, ctx: ssl.SSLContext) -> tuple[str, list[str]]:
    """(token, manager swarm addresses) from one join service, or raises OSError/ValueError."""
    conn = _Https(endpoint, cfg["join_port"], ctx)
    try:
        conn.request("GET", "/v1/token/" + cfg["join_class"])
        resp = conn.getresponse()
        body = resp.read()
    finally:
        conn.close()
    if resp.status != 200:
        raise OSError(f"join service on {endpoint} answered {resp.status}")
    data = json.loads(body)
    if not isinstance(data, dict) or not isinstance(data.get("token"), str):
        raise ValueError(f"join service on {endpoint} sent no token")
    return data["token"], [str(m) for m in data.get("managers") or []]


def _host(addr: str) -> str:
    """'10.0.0.5:2377' or '[fd00::5]:2377' -> the host part."""
    return addr.rsplit(":", 1)[0].strip("[]") if addr.count(":") == 1 or addr.startswith("[") else addr


def _why(exc: BaseException) -> str:
    if isinstance(exc, Unreachable) or (isinstance(exc, OSError) and str(exc).startswith("join service")):
        return str(exc)
    return type(exc).__name__


def backoff(attempt: int) -> float:
    """Exponential, capped at RETRY_MAX, jittered over its upper half so that nodes spread out."""
    ceiling = min(RETRY_MAX, RETRY_FIRST * 2 ** min(attempt, 16))
    return random.uniform(ceiling / 2, ceiling)  # noqa: S311 - retry jitter, not a secret


def try_managers(cfg: Config, known: list[str], ctx: ssl.SSLContext) -> tuple[bool, bool, list[str]]:
    """One pass over every manager known (learning more from each answer). Returns (joined, a manager
    answered: some TCP connection to a join service was made, whatever came next, why each one failed)."""
    answered, failures = False, []
    for endpoint in known:  # grows while we iterate: learned managers are tried in the same pass
        try:
            token, managers = fetch_token(cfg, endpoint, ctx)
        except (OSError, ValueError, KeyError, TypeError, AttributeError, http.client.HTTPException) as exc:
            # one bad or broken manager never stops the pass: the next one is asked
            failures.append(f"{endpoint}: {_why(exc)}")
            answered = answered or not isinstance(exc, Unreachable)  # a TLS failure, a 403 or a 503 is an answer
            continue
        answered = True
        known.extend(h for h in (_host(m) for m in managers) if h not in known)
        if do_join(cfg, token, managers or [endpoint], endpoint):
            return True, True, failures
        failures.append(f"{endpoint}: the join failed")
    return False, answered, failures


def join(cfg: Config) -> int:
    deadline = time.monotonic() + cfg["timeout"]
    info = wait_for_docker(cfg, deadline)
    if swarm_state(info) == "pending":
        info = settle_pending(cfg)
    if swarm_state(info) == "active":
        log("already part of a swarm (active); nothing to do")
        return 0
    seed = cfg["role"] == "seed"
    forms = seed and cfg.get("form") is True
    known = [e for e in cfg["endpoints"] if not seed or e != cfg["seed"]]
    if seed and not forms and not known:
        raise SystemExit(f"bakery-join: {NOT_FORMING} and knows no other manager to join (swarm.managers)")
    ctx = client_context(cfg)
    joined, answered, failures = try_managers(cfg, known, ctx)
    if forms and not joined and not answered:  # the first formation: no manager of this cluster can be reached
        return init(cfg, failures)
    why_not = SWARM_EXISTS if forms else NOT_FORMING if seed else ""  # decided on the first pass, for good
    attempt = 0
    while not joined:
        why = "; ".join(failures)
        left = deadline - time.monotonic()
        if left <= 0:
            raise SystemExit(f"bakery-join: gave up joining after {cfg['timeout']} s ({why})")
        pause = min(backoff(attempt), left)
        log(f"{why_not + ': ' if why_not else ''}no token yet ({why}); retrying in {pause:.0f} s")
        time.sleep(pause)
        attempt += 1
        joined, _, failures = try_managers(cfg, known, ctx)
    return 0


def init(cfg: Config, failures: list[str]) -> int:
    addr = advertise_address(cfg)
    status, body = docker(cfg, "POST", "/swarm/init",
                          {"ListenAddr": f"0.0.0.0:{cfg['swarm_port']}", "AdvertiseAddr": addr})
    if status != 200:
        raise SystemExit(f"bakery-join: swarm init failed: {body}")
    why = "; ".join(failures) or "no other manager configured"
    log(f'forming a new swarm ("form" is true in join.json; no manager could be reached: {why})')
    log(f"initialised the swarm, advertising {addr}")
    return 0


def settle_pending(cfg: Config, wait: int = 60) -> Any:
    """A join left pending (its manager died mid-join) never completes: leave it."""
    for _ in range(wait // 5):
        _, info = docker(cfg, "GET", "/info")
        if swarm_state(info) != "pending":
            return info
        time.sleep(5)
    log("a previous join is stuck pending; leaving it to start over")
    docker(cfg, "POST", "/swarm/leave?force=1")
    return docker(cfg, "GET", "/info")[1]


def do_join(cfg: Config, token: str, managers: list[str], endpoint: str) -> bool:
    # Only the manager that handed out the token: it is known to be alive. A dead
    # manager in RemoteAddrs can leave the engine pending for good.
    remotes = [m if ":" in m else f"{m}:{cfg['swarm_port']}" for m in managers[:1]]
    addr = advertise_address(cfg, peer=_resolve(endpoint))
    status, body = docker(cfg, "POST", "/swarm/join", {
        "ListenAddr": f"0.0.0.0:{cfg['swarm_port']}", "AdvertiseAddr": addr,
        "RemoteAddrs": remotes, "JoinToken": token})
    del token
    if status == 200:
        log(f"joined the swarm as {cfg['join_class']} through {endpoint}, advertising {addr}")
        return True
    message = body.get("message", "") if isinstance(body, dict) else str(body)
    log(f"join through {endpoint} failed ({status}): {message[:200]}")  # engine text, never the token
    if swarm_state(docker(cfg, "GET", "/info")[1]) == "pending":
        docker(cfg, "POST", "/swarm/leave?force=1")
    return False


def _resolve(name: str) -> str | None:
    try:
        return str(socket.getaddrinfo(name, None, socket.AF_INET)[0][4][0])
    except OSError:
        return None


# --- the service: join tokens over mutual TLS --------------------------------------------------


def server_context(cfg: Config) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(cfg["tls"]["join_ca"])
    ctx.load_cert_chain(cfg["tls"]["cert"], cfg["tls"]["key"])
    # No session resumption: every connection is a full handshake, so a certificate that expired
    # (or a CA that changed) is checked again; a resumed TLS 1.3 session is not re-verified.
    ctx.options |= ssl.OP_NO_TICKET | getattr(ssl, "OP_NO_RENEGOTIATION", 0)
    ctx.num_tickets = 0
    return ctx


def listen(cfg: Config) -> socket.socket:
    """Dual stack on '::' (IPv4 too), or IPv4 only where IPv6 is off; a backlog sized for a join storm."""
    bind = cfg.get("serve_address", "::")
    try:
        sock = socket.socket(socket.AF_INET6 if ":" in bind else socket.AF_INET)
        if sock.family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((bind, cfg["join_port"]))
    except OSError:
        if bind != "::":
            raise
        sock = socket.socket(socket.AF_INET)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("0.0.0.0", cfg["join_port"]))  # noqa: S104 - mutual TLS; every node must reach it
    sock.listen(BACKLOG)
    sock.setblocking(False)
    return sock


def keepalive(sock: socket.socket) -> None:
    """Dead peers (a node powered off mid-session) are noticed in about a minute."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for name, value in (("TCP_KEEPIDLE", 30), ("TCP_KEEPINTVL", 10), ("TCP_KEEPCNT", 3)):
        if hasattr(socket, name):
            sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, name), value)


def swarm_tokens(cfg: Config) -> tuple[dict[str, str], list[str]] | None:
    """(join tokens, manager addresses, this one first) from the local engine; None if not a manager."""
    status, swarm = docker(cfg, "GET", "/swarm", timeout=TOKEN_QUERY_TIMEOUT)
    if status != 200:
        return None
    sw = docker(cfg, "GET", "/info", timeout=TOKEN_QUERY_TIMEOUT)[1].get("Swarm") or {}
    remotes = sw.get("RemoteManagers") or []
    # This manager first: it is alive (it just answered), the others may not be.
    mine = [m["Addr"] for m in remotes if m.get("NodeID") == sw.get("NodeID")]
    return swarm["JoinTokens"], mine + sorted(m["Addr"] for m in remotes if m["Addr"] not in mine)


class _Session:
    __slots__ = ("tls", "who", "phase", "deadline", "head", "events")

    def __init__(self, tls: ssl.SSLSocket, who: str, deadline: float) -> None:
        self.tls, self.who, self.phase, self.deadline, self.head = tls, who, "handshake", deadline, b""
        self.events = selectors.EVENT_READ


class Service:
    """LOOPS threads, each a selector loop that accepts and runs handshakes and request reads
    without blocking, with a deadline per phase; at most `cap` sessions at once (the rest wait in
    the kernel's backlog), of which at most `per_peer` in their handshake from one address (more are
    reset at once). Complete requests queue for one engine thread, which asks the engine once
    for all those waiting (each answer is as fresh as a query begun after its request); a pool of
    WORKERS threads writes the answers."""

    def __init__(self, cfg: Config, listener: socket.socket, cap: int = MAX_SESSIONS) -> None:
        self.cfg, self.ctx, self.listener = cfg, server_context(cfg), listener
        self.cap, self.per_peer = cap, peer_cap(cap)
        self.pool = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="answer")
        self.lock, self.ready = threading.Lock(), threading.Condition()
        self.sessions = 0
        self.handshaking: dict[str, int] = {}  # source address -> its sessions not yet authenticated
        self.refused, self.quiet = 0, 0.0  # resets since the last note of them; no note before `quiet`
        self.waiting: list[_Session] = []

    def run(self) -> None:
        for target in [self.loop] * (LOOPS - 1) + [self.answering]:
            threading.Thread(target=self.guard, args=(target,), daemon=True).start()
        self.guard(self.loop)

    def guard(self, target: Any) -> None:
        try:
            target()
        except BaseException as exc:  # a dead thread must not go unnoticed: systemd restarts the service
            log(f"join service failed: {exc!r}")
            os._exit(1)

    def loop(self) -> None:
        sel = selectors.DefaultSelector()
        listening, resume, pause, scan = False, 0.0, 0.05, 0.0
        while True:
            now = time.monotonic()
            if not listening and now >= resume and self.sessions < self.cap:
                sel.register(self.listener, selectors.EVENT_READ)
                listening = True
            for key, _ in sel.select(0.25):
                if key.data is not None:
                    self.step(sel, key.data)
                    continue
                for _ in range(16):  # a burst per wake-up: a storm drains from the backlog sooner
                    try:
                        conn, peer = self.listener.accept()
                    except BlockingIOError:
                        break  # none left, or another loop took it
                    except OSError as exc:
                        if exc.errno in (errno.ECONNABORTED, errno.EPROTO, errno.EINTR):
                            continue  # that client left before it was accepted
                        # EMFILE/ENFILE/ENOBUFS/ENOMEM: the connection stays queued; retrying at once would spin.
                        log(f"accept failed ({exc.strerror or exc}); pausing {pause:.2f} s")
                        sel.unregister(self.listener)
                        listening, resume, pause = False, time.monotonic() + pause, min(pause * 2, 2.0)
                        break
                    pause = 0.05
                    who = str(peer[0]).removeprefix("::ffff:")
                    if self.admit(who):
                        self.start(sel, conn, who)
                    else:
                        self.refuse(conn, who)
                    if self.sessions >= self.cap:
                        sel.unregister(self.listener)
                        listening = False
                        break
            now = time.monotonic()
            if now >= scan:
                scan = now + 0.25
                for key in list(sel.get_map().values()):
                    if key.data is not None and key.data.deadline < now:
                        self.close(sel, key.data, f"no {key.data.phase} within the time allowed")

    def admit(self, who: str) -> bool:
        """Count a new session, unless its address already has `per_peer` handshakes under way."""
        with self.lock:
            if self.handshaking.get(who, 0) >= self.per_peer:
                return False
            self.handshaking[who] = self.handshaking.get(who, 0) + 1
            self.sessions += 1
            return True

    def authenticated(self, who: str) -> None:
        """A session of `who` left its handshake (done, or closed): one handshake fewer for that address."""
        with self.lock:
            left = self.handshaking.pop(who, 1) - 1
            if left > 0:
                self.handshaking[who] = left

    def refuse(self, conn: socket.socket, who: str) -> None:
        """A reset at once: no session, no TIME_WAIT left behind; one log note per 10 s at most."""
        try:
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        conn.close()
        now = time.monotonic()
        with self.lock:
            self.refused += 1
            if now < self.quiet:
                return
            count, self.refused, self.quiet = self.refused, 0, now + 10
        log(f"{who}: reset {count} connection(s) at once from addresses over {self.per_peer} handshakes"
            " at once (notes of this at most every 10 s)")

    def start(self, sel: selectors.BaseSelector, conn: socket.socket, who: str) -> None:
        try:
            keepalive(conn)
            conn.setblocking(False)
            tls = self.ctx.wrap_socket(conn, server_side=True, do_handshake_on_connect=False)
        except OSError as exc:
            conn.close()
            self.authenticated(who)
            with self.lock:
                self.sessions -= 1
            log(f"{who}: closed at once: {exc}")
            return
        session = _Session(tls, who, time.monotonic() + HANDSHAKE_TIMEOUT)
        sel.register(tls, session.events, session)
        self.step(sel, session)

    def step(self, sel: selectors.BaseSelector, s: _Session) -> None:
        """Advance one session as far as its bytes allow: handshake, then the request head."""
        try:
            if s.phase == "handshake":
                s.tls.do_handshake()
                s.phase, s.deadline = "idle", time.monotonic() + IDLE_TIMEOUT
                self.authenticated(s.who)  # the join CA signed its certificate
            while True:  # the request may already sit in TLS's buffer: read until it would block
                chunk = s.tls.recv(4096)
                if not chunk:
                    raise EOFError("the client hung up")
                if s.phase == "idle":
                    s.phase, s.deadline = "request", time.monotonic() + REQUEST_TIMEOUT
                s.head += chunk
                if b"\r\n\r\n" in s.head:
                    sel.unregister(s.tls)
                    with self.ready:
                        self.waiting.append(s)
                        self.ready.notify()
                    return
                if len(s.head) > HEAD_LIMIT:
                    raise ValueError(f"a request head over {HEAD_LIMIT} bytes")
        except ssl.SSLWantReadError:
            self.wait(sel, s, selectors.EVENT_READ)
        except ssl.SSLWantWriteError:
            self.wait(sel, s, selectors.EVENT_WRITE)
        except (OSError, EOFError, ValueError) as exc:  # TLS refused, garbage, resets, oversized heads
            self.close(sel, s, f"closed during the {s.phase}: {str(exc)[:200] or type(exc).__name__}")

    def wait(self, sel: selectors.BaseSelector, s: _Session, events: int) -> None:
        if s.events != events:
            s.events = events
            sel.modify(s.tls, events, s)

    def close(self, sel: selectors.BaseSelector | None, s: _Session, why: str) -> None:
        if sel is not None:
            sel.unregister(s.tls)
        s.tls.close()
        if s.phase == "handshake":
            self.authenticated(s.who)
        with self.lock:
            self.sessions -= 1
        if why:
            log(f"{s.who}: {why}")

    def answering(self) -> None:
        """The engine thread: one engine query for every request waiting, asked only when one of them
        may have a token. A fresh connection's send buffer takes the answer at once; a client whose
        buffer is full (it does not read) is left to the pool, REQUEST_TIMEOUT at most."""
        while True:
            with self.ready:
                while not self.waiting:
                    self.ready.wait()
                batch, self.waiting = self.waiting, []
            found: list[tuple[bool, Any]] = []
            for s in batch:
                line = s.head.split(b"\r\n", 1)[0].decode("latin-1")
                cert = s.tls.getpeercert() or {}
                status, payload = self.answer(cert, line, found)
                body = json.dumps(payload).encode()
                reason = http.client.responses[status].encode()
                data = (b"HTTP/1.0 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
                        b"Connection: close\r\n\r\n%s" % (status, reason, len(body), body))
                done = f'{s.who} {(_subject(cert, "commonName") or ["-"])[0]} "{line[:200]}" {status}'
                try:
                    s.tls.send(data)
                except (ssl.SSLWantWriteError, ssl.SSLWantReadError):
                    self.pool.submit(self.reply, s, data, done)
                    continue
                except OSError as exc:
                    self.close(None, s, f"closed while answering: {exc}")
                    continue
                self.finish(s, done)

    def answer(self, cert: Any, line: str, found: list[tuple[bool, Any]]) -> tuple[int, dict[str, Any]]:
        parts = line.split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/"):
            return 400, {"error": "bad request"}
        method, path, _ = parts
        wanted = path.removeprefix("/v1/token/")
        if method != "GET" or not path.startswith("/v1/token/") or wanted not in ("worker", "manager"):
            return 404, {"error": "unknown path"}
        if wanted not in _subject(cert, "organizationalUnitName"):
            return 403, {"error": f"this certificate may not obtain the {wanted} token"}
        if not found:  # the first request of this batch that may have a token
            try:
                found.append((True, swarm_tokens(self.cfg)))
            except (OSError, ValueError, KeyError, AttributeError, TypeError, http.client.HTTPException):
                found.append((False, None))  # a dying or garbled engine is a 503, never the end of the service
        ok, result = found[0]
        if not ok:
            return 503, {"error": "local engine unavailable"}
        if result is None:
            return 503, {"error": "this node is not a swarm manager yet"}
        tokens, managers = result
        return 200, {"token": tokens["Manager" if wanted == "manager" else "Worker"], "managers": managers}

    def reply(self, s: _Session, data: bytes, done: str) -> None:
        """On a pool thread: write an answer the client is slow to take."""
        try:
            s.tls.settimeout(REQUEST_TIMEOUT)
            s.tls.sendall(data)
        except OSError as exc:
            self.close(None, s, f"closed while answering: {exc}")
            return
        self.finish(s, done)

    def finish(self, s: _Session, done: str) -> None:
        try:
            s.tls.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        log(done)
        self.close(None, s, "")


def _subject(cert: Any, key: str) -> list[str]:
    return [str(v) for rdn in cert.get("subject", ()) for k, v in rdn if k == key]


def session_cap() -> tuple[int, int | None]:
    """(sessions at once, the soft RLIMIT_NOFILE or None if unlimited): the soft limit raised to 2 x
    MAX_SESSIONS where the hard one allows, FD_RESERVE of it kept for everything but sessions, so that
    the engine query and accept() never run out of descriptors because of sessions."""
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        want = MAX_SESSIONS * 2 if hard == resource.RLIM_INFINITY else min(MAX_SESSIONS * 2, hard)
        if soft != resource.RLIM_INFINITY and soft < want:
            try:
                resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
                soft = want
            except (ValueError, OSError):
                pass
    except ImportError:
        return MAX_SESSIONS, None
    if soft == resource.RLIM_INFINITY:
        return MAX_SESSIONS, None
    return max(1, min(MAX_SESSIONS, soft - FD_RESERVE)), soft


def peer_cap(cap: int) -> int:
    return max(1, min(PEER_HANDSHAKES, cap // 2))


def serve(cfg: Config) -> None:
    cap, nofile = session_cap()
    listener = listen(cfg)
    log(f"join service listening on port {cfg['join_port']}: at most {cap} sessions at once, {peer_cap(cap)}"
        f" of them in their TLS handshake from one address (RLIMIT_NOFILE {nofile or 'unlimited'},"
        f" {FD_RESERVE} kept for the engine queries and the listener)")
    Service(cfg, listener, cap).run()


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[1] not in ("join", "serve"):
        print("usage: bakery-join join|serve", file=sys.stderr)
        return 2
    with open(CONFIG) as f:
        cfg = json.load(f)
    if argv[1] == "join":
        return join(cfg)
    serve(cfg)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
