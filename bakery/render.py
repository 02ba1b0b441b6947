"""Per-role cloud-init user-data.

`render(cfg, node, material)` computes every value in Python, fills the
templates in templates/systemd and templates/cloud-init (layout only), and
returns one #cloud-config document (or MIME multipart when the operator adds
parts), gzipped when it must be to fit Nova's user-data limit.
"""

from __future__ import annotations

import gzip
import json
import shlex
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from . import cloudyaml
from .certs import NodeMaterial
from .config import ClusterConfig, NfsShare
from .errors import UserError
from .systemd import exec_arg, mount_unit_name, nfs_service_name, unit_value

# Nova: 65,535 characters of base64 -> 49,149 raw bytes.
NOVA_BASE64_LIMIT = 65535
NOVA_RAW_LIMIT = NOVA_BASE64_LIMIT // 4 * 3

SWARM_PORT = 2377
DOCKER_SOCKET = "/var/run/docker.sock"
TLS_DIR = "/etc/bakery/tls"
LIB_DIR = "/usr/local/lib/bakery"
UNIT_DIR = "/etc/systemd/system"
# Later parts merge into ours by appending lists and never replacing our keys.
MERGE_HOW = "list(append)+dict(no_replace,recurse_list)+str()"
JOIN_CLASS = {"seed": "manager", "manager": "manager", "worker": "worker", "consul": None}
# NFS: one mount attempt is bounded by the mount unit's TimeoutSec; the share's service retries
# after NFS_FIRST_DELAY seconds, doubling up to NFS_MAX_DELAY (docs/FACTS.md §7).
NFS_ATTEMPT_TIMEOUT = 60
NFS_FIRST_DELAY = 5
NFS_MAX_DELAY = 60
NFS_SCRIPT = f"{LIB_DIR}/nfs-mount"
# Before write_files (bootcmd runs first), on the first boot only: cancel the image's queued
# start of Docker, so that it first starts from the bootstrap, with bakery's units loaded.
HOLD_DOCKER = ["cloud-init-per", "instance", "bakery-hold-docker", "sh", "-c",
               "systemctl --no-block stop docker.service docker.socket || true"]


@dataclass(frozen=True)
class Node:
    role: str
    name: str
    addresses: tuple[str, ...] = ()


@dataclass(frozen=True)
class InsecureTcp:
    """An explicit opt-in to plain TCP: bound exactly where the user said."""

    host: str
    port: int


@dataclass(frozen=True)
class Agent:
    """The commands the join units run. `answer` set (bakery/ignition.py: the sh agent, no Python):
    the managers' join service is systemd's socket, socat's TLS and that command per request
    (`sh_service_units`), not the Python `serve`."""

    join: str = f"/usr/bin/python3 {LIB_DIR}/bakery-join join"
    serve: str = f"/usr/bin/python3 {LIB_DIR}/bakery-join serve"
    answer: str | None = None


# The join service without Python (docs/IGNITION.md): systemd's limits per connection.
SH_SERVICE_MAX_CONNECTIONS = 128
SH_SERVICE_PER_SOURCE = 16
SH_SERVICE_LIMIT = 20  # seconds a connection lives in all (the client's whole fetch is 20 s)
SH_SERVICE_IDLE = 10  # seconds without traffic
SH_SERVICE_HEAD_MAX = 8192  # bytes socat reads from a client
SH_SERVICE_LINGER = 6  # s an answer may take after the client's end (two engine queries of 2.5 s)


def inner_port(join_port: int) -> int:
    """socat's TLS listener on 127.0.0.1, behind systemd's socket on the join port."""
    return join_port + 10000 if join_port <= 55535 else join_port - 10000


def sh_service_argv(join_port: int, answer: str, inner: int | None = None,
                    tls_dir: str = TLS_DIR) -> tuple[list[str], list[str]]:
    """(the TLS listener's command, one connection's relay command) of the sh join service (the
    tests run them with another inner port and TLS directory)."""
    inner = inner or inner_port(join_port)
    # readbytes one past the head's limit: the handler sees a head that is too long, and says so (400)
    listen = (f"OPENSSL-LISTEN:{inner},bind=127.0.0.1,reuseaddr,fork,backlog=4096,readbytes={SH_SERVICE_HEAD_MAX + 1},"
              f"cert={tls_dir}/server-cert.pem,key={tls_dir}/server-key.pem,cafile={tls_dir}/join-ca.pem,"
              "verify=1,openssl-min-proto-version=TLS1.2")
    # -t: after one side's end (a client that half-closes after its request; readbytes reached), the
    # answer still has SH_SERVICE_LINGER s to come back (socat's 0.5 s cut off answers that wait for
    # the engine, 2.5 s a query)
    tls = ["/usr/bin/socat", "-T", str(SH_SERVICE_IDLE), "-t", str(SH_SERVICE_LINGER), listen, f"EXEC:{answer}"]
    relay = ["/usr/bin/timeout", str(SH_SERVICE_LIMIT), "/usr/bin/socat", "-T", str(SH_SERVICE_IDLE),
             "-t", str(SH_SERVICE_LINGER), "STDIO",
             f"TCP:127.0.0.1:{inner},retry=25,interval=0.2"]
    return tls, relay


def sh_service_units(join_port: int, answer: str) -> dict[str, str]:
    """The managers' join service without Python: unit name -> text."""
    tls, relay = sh_service_argv(join_port, answer)
    inner = inner_port(join_port)
    return {
        "bakery-join-server.socket": fill(
            "systemd/bakery-join-server.socket.j2", port=join_port, max_connections=SH_SERVICE_MAX_CONNECTIONS,
            per_source=SH_SERVICE_PER_SOURCE),
        "bakery-join-server@.service": fill(
            "systemd/bakery-join-server@.service.j2", inner=inner, limit=SH_SERVICE_LIMIT, idle=SH_SERVICE_IDLE,
            exec_start=" ".join(exec_arg(a) for a in relay)),
        "bakery-join-tls.service": fill(
            "systemd/bakery-join-tls.service.j2", inner=inner, exec_start=" ".join(exec_arg(a) for a in tls)),
    }


@dataclass(frozen=True)
class UserData:
    payload: bytes
    raw_size: int  # before gzip
    gzipped: bool
    content_type: str  # "text/cloud-config" or "multipart/mixed"
    files: tuple[str, ...]  # paths written on the node, for --output json

    @property
    def base64_size(self) -> int:
        return (len(self.payload) + 2) // 3 * 4


def templates_dir() -> Path:
    """The installed package's templates (bakery/templates in the wheel), or the checkout's
    templates/ beside bakery/ for an editable install, which maps no package there."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "templates", here.parent / "templates"):
        if (candidate / "systemd").is_dir():
            return candidate
    from .errors import EnvironmentMissing

    raise EnvironmentMissing(f"bakery's templates are missing from this installation ({here}); reinstall bakery")


@cache
def agent_source() -> str:
    """The join agent's text (bakery/agent/join.py), written to the node as LIB_DIR/bakery-join.
    Read, never imported: it runs on the node's python3, not here."""
    return (Path(__file__).resolve().parent / "agent" / "join.py").read_text()


def _bytecode_cache() -> Any:
    """Compiled templates cached per bakery version; rendering works without it."""
    import os

    import jinja2

    from . import __version__

    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    path = os.path.join(base, "bakery", f"jinja-{__version__}")
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
    except OSError:
        return None
    return jinja2.FileSystemBytecodeCache(path) if os.access(path, os.W_OK) else None


@cache
def _env() -> Any:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        bytecode_cache=_bytecode_cache(),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,  # noqa: S701 - output is YAML/shell/unit text, quoted by filters
    )
    env.filters["sh"] = lambda v: shlex.quote("" if v is None else str(v))
    env.filters["unit"] = unit_value  # every value on a unit line (bakery/systemd.py)
    env.filters["exec_arg"] = exec_arg  # one argument of an Exec*= line
    return env


def fill(template: str, **values: Any) -> str:
    text: str = _env().get_template(template).render(**values)
    return text


def node_sans(cfg: ClusterConfig, node: Node) -> list[str]:
    """Names and addresses the node's server certificate must carry."""
    sans = [node.name, "localhost", "127.0.0.1", "::1", *node.addresses]
    if JOIN_CLASS[node.role] == "manager":  # tls.sans name the managers' front (a load balancer, floating IPs):
        sans.extend(cfg.tls_sans)  # a worker's key must never present a certificate for it
    if node.role == "seed":
        sans.append(cfg.swarm.seed)
    if node.role == "manager" and node.name == "manager":
        sans.extend(cfg.swarm.managers)  # one user-data shared by all managers
    return sorted(set(sans))


def _daemon_json(cfg: ClusterConfig, role: str, tls: bool) -> str:
    d = cfg.docker.daemon
    out: dict[str, Any] = {}
    if tls:
        out.update(
            tlsverify=True,
            tlscacert=f"{TLS_DIR}/ca.pem",
            tlscert=f"{TLS_DIR}/server-cert.pem",
            tlskey=f"{TLS_DIR}/server-key.pem",
        )
    out["log-driver"] = d.log_driver
    if d.log_opts:
        out["log-opts"] = dict(d.log_opts)
    if d.storage_driver:
        out["storage-driver"] = d.storage_driver
    labels = dict(d.labels) | dict(cfg.labels.get(role, ()))
    labels["bakery.role"] = role
    out["labels"] = [f"{k}={v}" for k, v in sorted(labels.items())]
    if d.registry_mirrors:
        out["registry-mirrors"] = list(d.registry_mirrors)
    if d.insecure_registries:
        out["insecure-registries"] = list(d.insecure_registries)
    return json.dumps(out, indent=2, sort_keys=True) + "\n"


def _join_json(cfg: ClusterConfig, node: Node) -> str:
    endpoints = [cfg.swarm.seed, *[m for m in cfg.swarm.managers if m != cfg.swarm.seed]]
    if node.role == "manager":
        endpoints = [e for e in endpoints if e != node.name and e not in node.addresses] or endpoints
    tls = {"ca": f"{TLS_DIR}/ca.pem", "cert": f"{TLS_DIR}/server-cert.pem", "key": f"{TLS_DIR}/server-key.pem",
           "join_cert": f"{TLS_DIR}/join-cert.pem", "join_key": f"{TLS_DIR}/join-key.pem"}
    if JOIN_CLASS[node.role] == "manager":
        tls["join_ca"] = f"{TLS_DIR}/join-ca.pem"
    data = {
        "role": node.role,
        "join_class": JOIN_CLASS[node.role],
        "seed": cfg.swarm.seed,
        "endpoints": endpoints,
        "join_port": cfg.swarm.join_port,
        "swarm_port": SWARM_PORT,
        "docker_socket": DOCKER_SOCKET,
        "advertise_interface": cfg.swarm.advertise_interface,
        "timeout": cfg.swarm.join_timeout,
        "tls": tls,
    }
    if node.role == "seed":
        data["form"] = cfg.swarm.form  # the one node that may init a swarm, and only when rendered to
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


def _consul_json(cfg: ClusterConfig, server: bool) -> str:
    c = cfg.consul
    data: dict[str, Any] = {
        "datacenter": c.datacenter,
        "data_dir": "/consul/data",
        "server": server,
        "retry_join": list(c.servers),
        # go-sockaddr template, evaluated by consul: the node's private address.
        "bind_addr": '{{ GetPrivateInterfaces | attr "address" }}',
        "client_addr": "127.0.0.1",
        "leave_on_terminate": not server,
    }
    if server:
        data["bootstrap_expect"] = len(c.servers)
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


class _Files:
    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []

    def add(self, path: str, content: str, mode: str = "0644") -> None:
        self.entries.append({"path": path, "owner": "root:root", "permissions": mode, "content": content})


def _files(
    cfg: ClusterConfig, node: Node, m: NodeMaterial, insecure: InsecureTcp | None, gossip_key: str | None,
    agent: Agent = Agent(),
) -> _Files:
    f = _Files()
    role, tls = node.role, insecure is None
    join_class = JOIN_CLASS[role]
    f.add(f"{TLS_DIR}/ca.pem", m.ca_pem)
    f.add(f"{TLS_DIR}/server-cert.pem", m.server_cert)
    f.add(f"{TLS_DIR}/server-key.pem", m.server_key, "0600")
    if join_class and m.join_cert and m.join_key:
        f.add(f"{TLS_DIR}/join-cert.pem", m.join_cert)
        f.add(f"{TLS_DIR}/join-key.pem", m.join_key, "0600")
        if m.join_ca_pem:
            f.add(f"{TLS_DIR}/join-ca.pem", m.join_ca_pem)
        f.add("/etc/bakery/join.json", _join_json(cfg, node))
        f.add(f"{LIB_DIR}/bakery-join", agent_source(), "0755")
    f.add("/etc/docker/daemon.json", _daemon_json(cfg, role, tls))

    listen = f"{insecure.host}:{insecure.port}" if insecure else str(cfg.docker.api_port)
    f.add(f"{UNIT_DIR}/docker-tcp.socket",
          fill("systemd/docker-tcp.socket.j2", listen=listen, tls=tls, bind_ipv6_only=tls,
                security="mutual TLS" if tls else "NO TLS"))

    shares = [ShareUnits.of(share) for share in cfg.nfs]
    for s in shares:
        f.add(f"{UNIT_DIR}/{s.mount}", fill("systemd/nfs.mount.j2", what=s.what, where=s.share.path,
                                             options=s.options, service=s.service,
                                             attempt_timeout=NFS_ATTEMPT_TIMEOUT))
        f.add(f"{UNIT_DIR}/{s.service}", fill("systemd/nfs-mount.service.j2", what=s.what, where=s.share.path,
                                               required=s.share.required, script=NFS_SCRIPT))
    if shares:
        f.add(NFS_SCRIPT, fill("cloud-init/nfs-mount.sh.j2", first_delay=NFS_FIRST_DELAY,
                               max_delay=NFS_MAX_DELAY), "0755")
    required = [s for s in shares if s.share.required]
    f.add(f"{UNIT_DIR}/docker.service.d/10-bakery.conf", fill(
        "systemd/docker-bakery.conf.j2", tls=tls, port=cfg.docker.api_port,
        waits=[s.service for s in required], required_mounts=[s.mount for s in required]))
    optional = [s.service for s in shares if not s.share.required]

    units: list[str] = []
    if cfg.block_metadata:
        f.add(f"{UNIT_DIR}/bakery-metadata-block.service", fill("systemd/bakery-metadata-block.service.j2"))
        units.append("bakery-metadata-block.service")
    consul_mode = "server" if role == "consul" else ("agent" if cfg.consul.agents else None)
    if consul_mode:
        f.add("/etc/bakery/consul/consul.json", _consul_json(cfg, consul_mode == "server"))
        if gossip_key:
            f.add("/etc/bakery/consul/encrypt.json", json.dumps({"encrypt": gossip_key}) + "\n", "0600")
        f.add(f"{UNIT_DIR}/bakery-consul.service",
              fill("systemd/bakery-consul.service.j2", mode=consul_mode, image=cfg.consul.image))
        units.append("bakery-consul.service")
    if join_class:
        forms = role == "seed" and cfg.swarm.form
        action = "form the swarm or join a running one" if forms else f"join the swarm as a {join_class}"
        f.add(f"{UNIT_DIR}/bakery-join.service",
              fill("systemd/bakery-join.service.j2", action=action, timeout=cfg.swarm.join_timeout + 60,
                   exec_start=agent.join))
        units.append("bakery-join.service")
    if join_class == "manager" and agent.answer is not None:
        for name, text in sh_service_units(cfg.swarm.join_port, agent.answer).items():
            f.add(f"{UNIT_DIR}/{name}", text)
        units += ["bakery-join-server.socket", "bakery-join-tls.service"]
    elif join_class == "manager":
        f.add(f"{UNIT_DIR}/bakery-join-server.service",
              fill("systemd/bakery-join-server.service.j2", port=cfg.swarm.join_port, exec_start=agent.serve))
        units.append("bakery-join-server.service")

    f.add(f"{LIB_DIR}/bootstrap", fill(
        "cloud-init/bootstrap.sh.j2", role=role, install=cfg.docker.install, version=cfg.docker.version,
        packages=["nfs-common"] if cfg.nfs else [], enable=[*optional, *units], background=optional,
        units=units, waits=[{"what": s.what, "where": s.share.path, "service": s.service} for s in required]),
        "0755")
    return f


@dataclass(frozen=True)
class ShareUnits:
    """An NFS share's mount unit and the service that mounts it, retrying (nfs-mount.service.j2)."""

    share: NfsShare
    mount: str
    service: str
    what: str
    options: str

    @classmethod
    def of(cls, share: NfsShare) -> ShareUnits:
        mount = mount_unit_name(share.path)
        words = [w for option in share.options for w in option.split(",")]
        # The service retries with its own backoff and logs why each attempt failed: mount.nfs tries
        # once (retry=0) instead of retrying silently for two minutes, unless the options say otherwise.
        once = [] if any(w.startswith("retry=") for w in words) else ["retry=0"]
        host = f"[{share.server}]" if ":" in share.server else share.server  # nfs(5): IPv6 in brackets
        return cls(share, mount, nfs_service_name(share.path),
                   f"{host}:{share.export}", ",".join(("_netdev", "nofail", *share.options, *once)))


# bakery's own programs, written gzipped (cloud-init's `encoding: gz+b64`): the join agent alone is over
# a third of Nova's 48 KiB, and a default render must stay plain text (readable, and printable to a
# terminal). Everything the operator configures stays readable in the user-data.
PACKED = frozenset({f"{LIB_DIR}/bakery-join"})


def _packed(entry: dict[str, Any]) -> dict[str, Any]:
    import base64

    data = gzip.compress(entry["content"].encode(), compresslevel=9, mtime=0)
    return {**entry, "encoding": "gz+b64", "content": base64.b64encode(data).decode("ascii")}


def cloud_config(cfg: ClusterConfig, node: Node, material: NodeMaterial,
                 insecure: InsecureTcp | None = None, gossip_key: str | None = None) -> tuple[str, list[str]]:
    """The #cloud-config document text and the paths it writes."""
    files = _files(cfg, node, material, insecure, gossip_key)
    doc: dict[str, Any] = {}
    if cfg.docker.apt_proxy:
        doc["apt"] = {"proxy": cfg.docker.apt_proxy}
    if any(share.required for share in cfg.nfs):
        doc["bootcmd"] = [HOLD_DOCKER]
    doc["write_files"] = [_packed(e) if e["path"] in PACKED else e for e in files.entries]
    doc["runcmd"] = [["/bin/sh", f"{LIB_DIR}/bootstrap"]]
    body = cloudyaml.dump(doc)
    header = f"#cloud-config\n# bakery: role {node.role}, node {node.name}, cluster {cfg.name}\n"
    return header + body, [e["path"] for e in files.entries]


def finish(text: bytes, content_type: str, files: list[str], gzip_mode: str) -> UserData:
    """Apply --gzip (auto/always/never) and Nova's size limit."""
    raw = len(text)
    payload, zipped = text, False
    if gzip_mode == "always" or (gzip_mode == "auto" and raw > NOVA_RAW_LIMIT):
        payload, zipped = gzip.compress(text, mtime=0), True
    result = UserData(payload, raw, zipped, content_type, tuple(files))
    if result.base64_size > NOVA_BASE64_LIMIT:
        how = "gzipped" if zipped else "not gzipped (--gzip never)"
        raise UserError(
            f"user-data is {len(payload)} bytes ({how}), {result.base64_size} base64 characters; "
            f"Nova accepts at most {NOVA_BASE64_LIMIT} base64 characters ({NOVA_RAW_LIMIT} bytes)",
            fix="drop extra parts or NFS shares" + ("" if zipped else ", or let bakery gzip (--gzip auto)"),
        )
    return result


def build_userdata(
    cfg: ClusterConfig,
    node: Node,
    state_root: Path | None = None,
    *,
    gzip_mode: str = "auto",
    parts: tuple[Path, ...] = (),
    insecure: InsecureTcp | None = None,
    reissue: bool = True,
    fmt: str = "cloud-init",
) -> tuple[UserData, list[str]]:
    """The whole pipeline: certificates (made once), document, parts, size.
    `fmt` "ignition" or "butane": the same node for Flatcar and Fedora CoreOS (bakery/ignition.py).

    Returns the user-data and the cluster material created now. `reissue=False` (the CLI's default)
    refuses to change an existing node's class or SANs; providers, which own their nodes' addresses,
    re-issue.
    """
    from . import certs, state

    if fmt != "cloud-init":
        from . import ignition

        ignition.refuse(cfg, fmt, parts)

    cdir = state.cluster_dir(cfg.name, state_root)
    created = certs.ensure_cluster(cdir, cfg.name)
    material = certs.ensure_node(cdir, node.name, JOIN_CLASS[node.role], node_sans(cfg, node), reissue=reissue)
    consul_here = node.role == "consul" or cfg.consul.agents
    gossip = certs.ensure_gossip_key(cdir) if consul_here and cfg.consul.encrypt else None
    if fmt != "cloud-init":
        return ignition.userdata(cfg, node, material, fmt, gzip_mode=gzip_mode, insecure=insecure,
                                 gossip_key=gossip), created
    text, files = cloud_config(cfg, node, material, insecure, gossip)
    if not parts:
        return finish(text.encode(), "text/cloud-config", files, gzip_mode), created
    from .mime import multipart, read_part

    extra = [read_part(p) for p in parts]
    doc = multipart([("bakery.cfg", "cloud-config", text), *extra], MERGE_HOW)
    return finish(doc, "multipart/mixed", files, gzip_mode), created
