#!/usr/bin/python3
"""bakery-join join|serve: swarm init/join at boot; the managers' mutual-TLS join-token service.

Only a seed rendered with "form" may init a swarm, and only when no manager can be reached.
Config: /etc/bakery/join.json (no secrets). Tokens are never written, logged or put on a command
line. Standard library only (python3 >= 3.9). docs/JOIN.md in bakery explains the limits.
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
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

CONFIG = os.environ.get("BAKERY_JOIN_CONFIG", "/etc/bakery/join.json")
Config = dict[str, Any]
CONNECT_TIMEOUT, FETCH_TIMEOUT = 5.0, 15.0  # client: TCP connect; every later step
RETRY_FIRST, RETRY_MAX = 1.0, 30.0  # client backoff bounds, seconds
HANDSHAKE_TIMEOUT, IDLE_TIMEOUT, REQUEST_TIMEOUT = 10.0, 5.0, 10.0  # service, per session
MAX_SESSIONS, BACKLOG, HEAD_LIMIT = 1024, 4096, 8192  # BACKLOG: at most net.core.somaxconn
# Descriptors never given to sessions (stdio, listener, selectors, engine query, spares).
FD_RESERVE = 16
# Sessions in their TLS handshake from one address, at most (a NAT's nodes share one).
PEER_HANDSHAKES = MAX_SESSIONS // 2
LOOPS, WORKERS = 2, 4  # selector loops; threads for answers slow to write
# C0, DEL, C1, backslash: a log line is one line.
_ESCAPES = {c: f"\\x{c:02x}" for c in [*range(32), *range(127, 160)]} | {92: "\\\\"}
NOT_FORMING = 'not initialising a swarm: this seed was rendered to join a running one ("form" is false in join.json)'
SWARM_EXISTS = ('not initialising a swarm although "form" is true: a manager answered (any answer, even a refusal,'
                ' means a swarm exists), so this seed only joins')
UNDECIDED = ('not initialising a swarm yet although "form" is true: a manager\'s name does not resolve (DNS may'
             ' not be up yet: that proves nothing), so this seed asks again before it decides')
_LOG = threading.Lock()  # threads never interleave their lines


def log(msg: str) -> None:
    with _LOG:
        sys.stderr.write("bakery-join: " + msg.translate(_ESCAPES) + "\n")
        sys.stderr.flush()


class _Deadline(socket.socket):
    """Each read gets only the time left."""

    deadline = float("inf")

    def left(self) -> None:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the engine did not answer in time")
        self.settimeout(left)

    def recv_into(self, buffer: WriteableBuffer, nbytes: int = 0, flags: int = 0) -> int:
        self.left()
        return super().recv_into(buffer, nbytes, flags)


class Docker(http.client.HTTPConnection):
    """HTTP over the local engine's unix socket, all of it by `deadline`."""

    def __init__(self, path: str, timeout: float = 60, deadline: float | None = None) -> None:
        super().__init__("localhost", timeout=timeout)
        self.socket_path = path
        self.deadline = time.monotonic() + timeout if deadline is None else deadline

    def connect(self) -> None:
        self.sock = sock = _Deadline(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.deadline = self.deadline
        sock.left()
        sock.connect(self.socket_path)


# The engine query (/swarm, /info) gets 5 s in all.
TOKEN_QUERY_TIMEOUT, ANSWER_WAIT = 5.0, 12.0


def docker(cfg: Config, method: str, url: str, body: Any = None, timeout: float = 60,
           deadline: float | None = None) -> tuple[int, Any]:
    """One engine API call, within `timeout` s in all (or by `deadline`)."""
    conn = Docker(cfg["docker_socket"], timeout, deadline)
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
    iface = cfg.get("advertise_interface")
    if iface:
        out = subprocess.run(["ip", "-j", "-4", "addr", "show", "dev", iface],
                             capture_output=True, text=True, check=True).stdout
        for link in json.loads(out):
            for a in link.get("addr_info", []):
                return str(a["local"])
        raise SystemExit(f"bakery-join: interface {iface} has no IPv4 address")
    for target in ([peer] if peer else []) + ["192.0.2.1"]:  # TEST-NET: a route lookup, sends nothing
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.connect((target, 9))
                addr = str(s.getsockname()[0])
            if not addr.startswith("127."):
                return addr
        except OSError:
            continue
    raise SystemExit("bakery-join: cannot find an address to advertise; set swarm.advertise_interface")


def client_context(cfg: Config) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=cfg["tls"]["ca"])
    ctx.load_cert_chain(cfg["tls"]["join_cert"], cfg["tls"]["join_key"])
    return ctx


class Unreachable(OSError):
    """The TCP connect failed (refused, timed out, no route): the only "no manager there"."""


class Unresolved(OSError):
    """The name did not resolve: unknown (DNS may not be up yet), asked again, never "no manager"."""


class _Https(http.client.HTTPSConnection):
    """A short TCP connect timeout (a partitioned manager costs 5 s), then FETCH_TIMEOUT."""

    def __init__(self, host: str, port: int, ctx: ssl.SSLContext) -> None:
        super().__init__(host, port, timeout=FETCH_TIMEOUT, context=ctx)
        self.ctx = ctx

    def connect(self) -> None:
        try:
            sock = socket.create_connection((self.host, self.port), CONNECT_TIMEOUT)
        except ConnectionResetError:
            raise  # connected, then reset (a service over its limits): a manager is there
        except socket.gaierror as exc:
            raise Unresolved(f"the name does not resolve ({exc}): unknown, asked again") from exc
        except OSError as exc:
            raise Unreachable(f"unreachable ({type(exc).__name__}: {exc})") from exc
        sock.settimeout(FETCH_TIMEOUT)
        self.sock = self.ctx.wrap_socket(sock, server_hostname=self.host)


def fetch_token(cfg: Config, endpoint: str, ctx: ssl.SSLContext) -> tuple[str, list[str]]:
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
    if isinstance(exc, (Unreachable, Unresolved)) or (isinstance(exc, OSError) and str(exc).startswith("join service")):
        return str(exc)
    return type(exc).__name__


def backoff(attempt: int) -> float:
    ceiling = min(RETRY_MAX, RETRY_FIRST * 2 ** min(attempt, 16))
    return random.uniform(ceiling / 2, ceiling)  # noqa: S311 - retry jitter, not a secret


def try_managers(cfg: Config, known: list[str], ctx: ssl.SSLContext) -> tuple[bool, str, list[str]]:
    """One pass over the managers known: (joined, "answered"/"unknown"/"none", why each failed)."""
    answered, unknown, failures = False, False, []
    for endpoint in known:  # grows: learned managers are tried in the same pass
        try:
            token, managers = fetch_token(cfg, endpoint, ctx)
        except (OSError, ValueError, KeyError, TypeError, AttributeError, http.client.HTTPException) as exc:
            failures.append(f"{endpoint}: {_why(exc)}")
            unknown = unknown or isinstance(exc, Unresolved)
            answered = answered or not isinstance(exc, (Unreachable, Unresolved))
            continue
        answered = True
        known.extend(h for h in (_host(m) for m in managers) if h not in known)
        if do_join(cfg, token, managers or [endpoint], endpoint):
            return True, "answered", failures
        failures.append(f"{endpoint}: the join failed")
    return False, "answered" if answered else "unknown" if unknown else "none", failures


def join(cfg: Config) -> int:
    deadline = time.monotonic() + cfg["timeout"]
    info = wait_for_docker(cfg, deadline)
    if swarm_state(info) == "pending":
        info = settle_pending(cfg)
    if swarm_state(info) == "pending":  # a member whose managers are not back yet
        log("already part of a swarm (pending: its managers are not reachable yet); not joining, not leaving it")
        return 0
    if swarm_state(info) == "active":
        log("already part of a swarm (active); nothing to do")
        return 0
    seed = cfg["role"] == "seed"
    forms = seed and cfg.get("form") is True
    known = [e for e in cfg["endpoints"] if not seed or e != cfg["seed"]]
    if seed and not forms and not known:
        raise SystemExit(f"bakery-join: {NOT_FORMING} and knows no other manager to join (swarm.managers)")
    ctx = client_context(cfg)
    joined, seen, failures = try_managers(cfg, known, ctx)
    attempt = 0
    while not joined:
        # The first pass not "unknown" decides for good: "none" forms, "answered" only joins.
        if forms and seen == "none":
            return init(cfg, failures)
        if forms and seen == "unknown":
            why_not = UNDECIDED
        else:
            why_not, seen = SWARM_EXISTS if forms else NOT_FORMING if seed else "", "answered"
        why = "; ".join(failures)
        left = deadline - time.monotonic()
        if left <= 0:
            raise SystemExit(f"bakery-join: gave up joining after {cfg['timeout']} s ({why})")
        pause = min(backoff(attempt), left)
        log(f"{why_not + ': ' if why_not else ''}no token yet ({why}); retrying in {pause:.0f} s")
        time.sleep(pause)
        attempt += 1
        joined, now, failures = try_managers(cfg, known, ctx)
        seen = now if seen == "unknown" else seen
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
    """A pending engine with a node ID is a member of a swarm whose managers it cannot reach yet
    (a reboot beside managers still down): it is returned as it is, never left. Without one it is
    a join that never completed (its manager died mid-join): after `wait` s it is left."""
    for n in range(wait // 5 + 1):
        _, info = docker(cfg, "GET", "/info")
        if swarm_state(info) != "pending" or _node_id(info):
            return info
        if n < wait // 5:
            time.sleep(5)
    log("a previous join is stuck pending; leaving it to start over")
    docker(cfg, "POST", "/swarm/leave?force=1")
    return docker(cfg, "GET", "/info")[1]


def _node_id(info: Any) -> str:
    swarm = info.get("Swarm") if isinstance(info, dict) else None
    return str(swarm.get("NodeID") or "") if isinstance(swarm, dict) else ""


def do_join(cfg: Config, token: str, managers: list[str], endpoint: str) -> bool:
    # Only the manager that gave the token (alive): a dead one in RemoteAddrs can leave it pending for good.
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


def server_context(cfg: Config) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(cfg["tls"]["join_ca"])
    ctx.load_cert_chain(cfg["tls"]["cert"], cfg["tls"]["key"])
    # No resumption: every connection verifies its certificate again (TLS 1.3 resumption does not).
    ctx.options |= ssl.OP_NO_TICKET | getattr(ssl, "OP_NO_RENEGOTIATION", 0)
    ctx.num_tickets = 0
    return ctx


def listen(cfg: Config) -> socket.socket:
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
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for name, value in (("TCP_KEEPIDLE", 30), ("TCP_KEEPINTVL", 10), ("TCP_KEEPCNT", 3)):
        if hasattr(socket, name):
            sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, name), value)


def swarm_tokens(cfg: Config) -> tuple[dict[str, str], list[str]] | None:
    """(join tokens, managers, this one first); None: not a manager; ValueError: malformed."""
    deadline = time.monotonic() + TOKEN_QUERY_TIMEOUT
    status, swarm = docker(cfg, "GET", "/swarm", deadline=deadline)
    if status != 200:
        return None
    tokens = swarm.get("JoinTokens") if isinstance(swarm, dict) else None
    if not isinstance(tokens, dict) or not all(isinstance(tokens.get(k), str) for k in ("Worker", "Manager")):
        raise ValueError("no JoinTokens in /swarm")
    status, info = docker(cfg, "GET", "/info", deadline=deadline)
    sw = info.get("Swarm") if status == 200 and isinstance(info, dict) else None
    if not isinstance(sw, dict):
        raise ValueError(f"no Swarm in /info ({status})")
    remotes = sw.get("RemoteManagers") or []
    if not isinstance(remotes, list) or not all(isinstance(m, dict) and isinstance(m.get("Addr"), str)
                                                for m in remotes):
        raise ValueError("bad RemoteManagers in /info")
    # This manager first: it is alive.
    mine = [m["Addr"] for m in remotes if m.get("NodeID") == sw.get("NodeID")]
    others = sorted({m["Addr"] for m in remotes} - set(mine))
    return {"Worker": tokens["Worker"], "Manager": tokens["Manager"]}, mine + others


class _Loop:

    def __init__(self, cap: int) -> None:
        self.sel, self.cap, self.count = selectors.DefaultSelector(), cap, 0
        self.handshakes: dict[_Session, None] = {}  # the oldest first


class _Session:
    __slots__ = ("tls", "who", "phase", "deadline", "head", "events", "home")

    def __init__(self, tls: ssl.SSLSocket, who: str, deadline: float, home: _Loop) -> None:
        self.tls, self.who, self.phase, self.deadline, self.head = tls, who, "handshake", deadline, b""
        self.events, self.home = selectors.EVENT_READ, home


def _reset(sock: socket.socket) -> None:
    """SO_LINGER 0: a reset at once, no TIME_WAIT."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    sock.close()


class Service:
    """LOOPS selector loops (accepting always), an engine thread, WORKERS writer threads (docs/JOIN.md)."""

    def __init__(self, cfg: Config, listener: socket.socket, cap: int = MAX_SESSIONS) -> None:
        self.cfg, self.ctx, self.listener = cfg, server_context(cfg), listener
        self.cap, self.per_peer = cap, peer_cap(cap)
        self.loops = [_Loop(cap // LOOPS + (1 if i < cap % LOOPS else 0)) for i in range(LOOPS)]
        self.pool = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="answer")
        self.lock, self.ready = threading.Lock(), threading.Condition()
        self.handshaking: dict[str, int] = {}  # address -> its sessions in their handshake
        self.notes: dict[str, tuple[int, float]] = {}  # reset kind -> (count, next note)
        self.waiting: list[_Session] = []

    def run(self) -> None:
        for target, arg in [(self.loop, home) for home in self.loops[1:]] + [(self.answering, None)]:
            threading.Thread(target=self.guard, args=(target, arg), daemon=True).start()
        self.guard(self.loop, self.loops[0])

    def guard(self, target: Any, arg: Any) -> None:
        try:
            target() if arg is None else target(arg)
        except BaseException as exc:  # a dead thread ends the service: systemd restarts it
            log(f"join service failed: {exc!r}")
            os._exit(1)

    def loop(self, home: _Loop) -> None:
        sel = home.sel
        listening, resume, pause, scan = False, 0.0, 0.05, 0.0
        while True:
            now = time.monotonic()
            if not listening and now >= resume:
                sel.register(self.listener, selectors.EVENT_READ)
                listening = True
            for key, _ in sel.select(0.25):
                if key.data is not None:
                    if key.data.phase != "closed":  # not evicted earlier in this batch
                        self.step(sel, key.data)
                    continue
                for _ in range(16):  # a burst per wake-up
                    try:
                        conn, peer = self.listener.accept()
                    except BlockingIOError:
                        break  # none left, or another loop took it
                    except OSError as exc:
                        if exc.errno in (errno.ECONNABORTED, errno.EPROTO, errno.EINTR):
                            continue  # that client left before it was accepted
                        # EMFILE/ENFILE/ENOBUFS/ENOMEM: it stays queued; retrying at once would spin.
                        log(f"accept failed ({exc.strerror or exc}); pausing {pause:.2f} s")
                        sel.unregister(self.listener)
                        listening, resume, pause = False, time.monotonic() + pause, min(pause * 2, 2.0)
                        break
                    pause = 0.05
                    who = str(peer[0]).removeprefix("::ffff:")
                    self.admit(home, conn, who)
            now = time.monotonic()
            if now >= scan:
                scan = now + 0.25
                for key in list(sel.get_map().values()):
                    if key.data is not None and key.data.deadline < now:
                        self.close(sel, key.data, f"no {key.data.phase} within the time allowed")

    def admit(self, home: _Loop, conn: socket.socket, who: str) -> None:
        """A session, or a reset; at the cap the loop's oldest handshake is reset to make room."""
        victim: _Session | None = None
        with self.lock:
            if self.handshaking.get(who, 0) >= self.per_peer:
                refused = f"from addresses over {self.per_peer} handshakes at once"
            elif home.count >= home.cap and not home.handshakes:
                refused = f"at the session cap ({self.cap}), every session authenticated"
            else:
                refused = ""
                if home.count >= home.cap:
                    victim = next(iter(home.handshakes))
                self.handshaking[who] = self.handshaking.get(who, 0) + 1
                home.count += 1
        if refused:
            _reset(conn)
            self.note(who, f"reset {{}} connection(s) at once {refused}")
            return
        if victim is not None:
            self.close(home.sel, victim, "", reset=True)
            self.note(victim.who, f"at the session cap ({self.cap}): reset {{}} session(s) in their handshake,"
                                  " the oldest first")
        self.start(home, conn, who)

    def note(self, who: str, what: str) -> None:
        now = time.monotonic()
        with self.lock:
            count, quiet = self.notes.get(what, (0, 0.0))
            if now < quiet:
                self.notes[what] = (count + 1, quiet)
                return
            self.notes[what] = (0, now + 10)
        log(f"{who}: {what.format(count + 1)} (notes of this at most every 10 s)")

    def authenticated(self, who: str, s: _Session | None = None) -> None:
        with self.lock:
            if s is not None:
                s.home.handshakes.pop(s, None)
            left = self.handshaking.pop(who, 1) - 1
            if left > 0:
                self.handshaking[who] = left

    def start(self, home: _Loop, conn: socket.socket, who: str) -> None:
        try:
            keepalive(conn)
            conn.setblocking(False)
            tls = self.ctx.wrap_socket(conn, server_side=True, do_handshake_on_connect=False)
        except OSError as exc:
            conn.close()
            self.authenticated(who)
            with self.lock:
                home.count -= 1
            log(f"{who}: closed at once: {exc}")
            return
        session = _Session(tls, who, time.monotonic() + HANDSHAKE_TIMEOUT, home)
        with self.lock:
            home.handshakes[session] = None
        home.sel.register(tls, session.events, session)
        self.step(home.sel, session)

    def step(self, sel: selectors.BaseSelector, s: _Session) -> None:
        try:
            if s.phase == "handshake":
                s.tls.do_handshake()
                s.phase, s.deadline = "idle", time.monotonic() + IDLE_TIMEOUT
                self.authenticated(s.who, s)  # the join CA signed its certificate
            while True:  # the request may sit in TLS's buffer: read until it would block
                chunk = s.tls.recv(4096)
                if not chunk:
                    raise EOFError("the client hung up")
                if s.phase == "idle":
                    s.phase, s.deadline = "request", time.monotonic() + REQUEST_TIMEOUT
                s.head += chunk
                if b"\r\n\r\n" in s.head:
                    sel.unregister(s.tls)
                    s.phase, s.deadline = "answer", time.monotonic() + ANSWER_WAIT
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

    def close(self, sel: selectors.BaseSelector | None, s: _Session, why: str, reset: bool = False) -> None:
        if sel is not None:
            sel.unregister(s.tls)
        if reset:
            _reset(s.tls)
        else:
            s.tls.close()
        if s.phase == "handshake":
            self.authenticated(s.who, s)
        s.phase = "closed"
        with self.lock:
            s.home.count -= 1
        if why:
            log(f"{s.who}: {why}")

    def answering(self) -> None:
        """One engine query per batch of requests; answers a client does not take at once go to the pool."""
        while True:
            with self.ready:
                while not self.waiting:
                    self.ready.wait()
                batch, self.waiting = self.waiting, []
            found: list[tuple[bool, Any]] = []
            for s in batch:
                line = s.head.split(b"\r\n", 1)[0].decode("latin-1")
                cert = s.tls.getpeercert() or {}
                if time.monotonic() > s.deadline:
                    status, payload = 503, {"error": "the local engine did not answer in time"}
                else:
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
        if _subject(cert, "organizationalUnitName") != [wanted]:  # one OU, the class: two are refused (as sh does)
            return 403, {"error": f"this certificate may not obtain the {wanted} token"}
        if not found:  # the batch's first request that may have a token
            try:
                found.append((True, swarm_tokens(self.cfg)))
            except Exception as exc:  # a dying, slow or garbled engine: 503, never an exit
                log(f"the engine query failed: {str(exc)[:200] or type(exc).__name__}")
                found.append((False, None))
        ok, result = found[0]
        if not ok:
            return 503, {"error": "local engine unavailable"}
        if result is None:
            return 503, {"error": "this node is not a swarm manager yet"}
        tokens, managers = result
        return 200, {"token": tokens["Manager" if wanted == "manager" else "Worker"], "managers": managers}

    def reply(self, s: _Session, data: bytes, done: str) -> None:
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
    """(sessions at once, soft RLIMIT_NOFILE raised to 2 x MAX_SESSIONS if allowed, or None), less FD_RESERVE."""
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
