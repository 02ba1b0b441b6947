#!/usr/bin/python3
"""bakery-join: swarm init/join at boot, and the managers' join-token service.

  bakery-join join    seed: init the swarm (or join it if another manager runs
                      one); manager/worker: fetch this node's join token over
                      mutual TLS from a manager's join service, then join.
  bakery-join serve   managers: hand out join tokens over mutual TLS. The class
                      (manager/worker) comes from the OU of the client
                      certificate, which only the cluster's join CA can sign.

Configuration: /etc/bakery/join.json (no secrets). Tokens are held in memory
only: never written, logged or passed on a command line. Standard library
only: every cloud-init node has python3.
"""

import http.client
import http.server
import json
import os
import socket
import ssl
import subprocess
import sys
import time

CONFIG = os.environ.get("BAKERY_JOIN_CONFIG", "/etc/bakery/join.json")


def log(msg):
    print("bakery-join: " + msg, file=sys.stderr, flush=True)


class Docker(http.client.HTTPConnection):
    """HTTP over the local engine's unix socket."""

    def __init__(self, path):
        super().__init__("localhost", timeout=60)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(60)
        self.sock.connect(self.path)


def docker(cfg, method, url, body=None):
    conn = Docker(cfg["docker_socket"])
    try:
        data = json.dumps(body).encode() if body is not None else None
        conn.request(method, url, body=data, headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        raw = resp.read()
    finally:
        conn.close()
    try:
        payload = json.loads(raw) if raw else None
    except ValueError:
        payload = raw.decode(errors="replace")
    return resp.status, payload


def wait_for_docker(cfg, deadline):
    while True:
        try:
            status, info = docker(cfg, "GET", "/info")
            if status == 200:
                return info
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit("bakery-join: the local Docker engine never answered")
        time.sleep(2)


def swarm_state(info):
    return (info.get("Swarm") or {}).get("LocalNodeState", "inactive")


def advertise_address(cfg, peer=None):
    """The address this node uses to reach its peers (or its default route)."""
    iface = cfg.get("advertise_interface")
    if iface:
        out = subprocess.run(["ip", "-j", "-4", "addr", "show", "dev", iface],
                             capture_output=True, text=True, check=True).stdout
        for link in json.loads(out):
            for a in link.get("addr_info", []):
                return a["local"]
        raise SystemExit("bakery-join: interface %s has no IPv4 address" % iface)
    targets = [peer] if peer else []
    targets.append("192.0.2.1")  # TEST-NET: a route lookup only, UDP connect sends nothing
    for target in targets:
        try:
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.connect((target, 9))
            addr = s.getsockname()[0]
            s.close()
            if not addr.startswith("127."):
                return addr
        except OSError:
            continue
    raise SystemExit("bakery-join: cannot find an address to advertise; set swarm.advertise_interface")


def client_context(cfg):
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=cfg["tls"]["ca"])
    ctx.load_cert_chain(cfg["tls"]["join_cert"], cfg["tls"]["join_key"])
    return ctx


def fetch_token(cfg, endpoint, ctx):
    """Returns (token, manager addresses) from one join service, or raises OSError."""
    conn = http.client.HTTPSConnection(endpoint, cfg["join_port"], context=ctx, timeout=15)
    try:
        conn.request("GET", "/v1/token/" + cfg["join_class"])
        resp = conn.getresponse()
        body = resp.read()
    finally:
        conn.close()
    if resp.status != 200:
        raise OSError("join service on %s answered %d" % (endpoint, resp.status))
    data = json.loads(body)
    return data["token"], data.get("managers") or []


def join(cfg):
    deadline = time.monotonic() + cfg["timeout"]
    info = wait_for_docker(cfg, deadline)
    if swarm_state(info) == "pending":
        info = settle_pending(cfg)
    if swarm_state(info) == "active":
        log("already part of a swarm (active); nothing to do")
        return 0
    endpoints = cfg["endpoints"]
    ctx = client_context(cfg)
    if cfg["role"] == "seed":
        others = [e for e in endpoints if e != cfg["seed"]]
        for endpoint in others:  # a rebuilt seed rejoins a running swarm
            try:
                token, managers = fetch_token(cfg, endpoint, ctx)
            except (OSError, ssl.SSLError, ValueError, KeyError):
                continue
            return do_join(cfg, token, managers or [endpoint], endpoint)
        addr = advertise_address(cfg)
        status, body = docker(cfg, "POST", "/swarm/init",
                              {"ListenAddr": "0.0.0.0:%d" % cfg["swarm_port"], "AdvertiseAddr": addr})
        if status != 200:
            raise SystemExit("bakery-join: swarm init failed: %s" % (body,))
        log("initialised the swarm, advertising %s" % addr)
        return 0
    delay = 1
    while True:
        for endpoint in endpoints:
            try:
                token, managers = fetch_token(cfg, endpoint, ctx)
            except (OSError, ssl.SSLError, ValueError, KeyError) as exc:
                log("no token from %s yet: %s" % (endpoint, type(exc).__name__))
                continue
            if do_join(cfg, token, managers or [endpoint], endpoint):
                return 0
        if time.monotonic() > deadline:
            raise SystemExit("bakery-join: gave up joining after %d s" % cfg["timeout"])
        time.sleep(delay)
        delay = min(delay * 2, 30)


def settle_pending(cfg, wait=60):
    """A join left pending (its manager died mid-join) never completes: leave it."""
    for _ in range(wait // 5):
        _, info = docker(cfg, "GET", "/info")
        if swarm_state(info) != "pending":
            return info
        time.sleep(5)
    log("a previous join is stuck pending; leaving it to start over")
    docker(cfg, "POST", "/swarm/leave?force=1")
    _, info = docker(cfg, "GET", "/info")
    return info


def do_join(cfg, token, managers, endpoint):
    # Only the manager that handed out the token: it is known to be alive. A dead
    # manager in RemoteAddrs can leave the engine pending for good.
    remotes = [m if ":" in m else "%s:%d" % (m, cfg["swarm_port"]) for m in managers[:1]]
    addr = advertise_address(cfg, peer=_resolve(endpoint))
    status, body = docker(cfg, "POST", "/swarm/join", {
        "ListenAddr": "0.0.0.0:%d" % cfg["swarm_port"], "AdvertiseAddr": addr,
        "RemoteAddrs": remotes, "JoinToken": token})
    del token
    if status == 200:
        log("joined the swarm as %s through %s, advertising %s" % (cfg["join_class"], endpoint, addr))
        return True
    message = body.get("message", "") if isinstance(body, dict) else str(body)
    # The engine's message never contains the token; still, keep it short.
    log("join through %s failed (%d): %s" % (endpoint, status, message[:200]))
    _, info = docker(cfg, "GET", "/info")
    if swarm_state(info) == "pending":
        docker(cfg, "POST", "/swarm/leave?force=1")
    return False


def _resolve(name):
    try:
        return socket.getaddrinfo(name, None, socket.AF_INET)[0][4][0]
    except OSError:
        return None


class TokenHandler(http.server.BaseHTTPRequestHandler):
    cfg = None

    def log_message(self, fmt, *args):  # never echo request details verbatim
        log("%s %s" % (self.address_string(), fmt % args))

    def send_json(self, status, payload):
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        cert = self.connection.getpeercert() or {}
        ous = [v for rdn in cert.get("subject", ()) for k, v in rdn if k == "organizationalUnitName"]
        wanted = self.path.rsplit("/", 1)[-1]
        if not self.path.startswith("/v1/token/") or wanted not in ("worker", "manager"):
            return self.send_json(404, {"error": "unknown path"})
        if wanted not in ous:
            return self.send_json(403, {"error": "this certificate may not obtain the %s token" % wanted})
        try:
            status, swarm = docker(self.cfg, "GET", "/swarm")
            _, info = docker(self.cfg, "GET", "/info")
        except OSError:
            return self.send_json(503, {"error": "local engine unavailable"})
        if status != 200:
            return self.send_json(503, {"error": "this node is not a swarm manager yet"})
        sw = info.get("Swarm") or {}
        remotes = sw.get("RemoteManagers") or []
        # This manager first: it is alive (it just answered), the others may not be.
        mine = [m["Addr"] for m in remotes if m.get("NodeID") == sw.get("NodeID")]
        managers = mine + sorted(m["Addr"] for m in remotes if m["Addr"] not in mine)
        token = swarm["JoinTokens"]["Manager" if wanted == "manager" else "Worker"]
        self.send_json(200, {"token": token, "managers": managers})


class DualStackServer(http.server.ThreadingHTTPServer):
    address_family = socket.AF_INET6
    daemon_threads = True

    def server_bind(self):
        try:
            self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        except OSError:
            pass
        super().server_bind()


def serve(cfg):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(cfg["tls"]["join_ca"])
    ctx.load_cert_chain(cfg["tls"]["cert"], cfg["tls"]["key"])
    TokenHandler.cfg = cfg
    bind = cfg.get("serve_address", "::")
    try:
        server = DualStackServer((bind, cfg["join_port"]), TokenHandler)
    except OSError:
        DualStackServer.address_family = socket.AF_INET
        server = DualStackServer(("0.0.0.0" if bind == "::" else bind, cfg["join_port"]), TokenHandler)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    log("join service listening on port %d" % cfg["join_port"])
    server.serve_forever()


def main(argv):
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
