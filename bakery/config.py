"""The cluster definition: an optional bakery.yml over embedded defaults.

Every field has a default, so `bakery render --role manager` needs no file.
A given file is validated with the JSON Schema in schemas/cluster.json and
errors point at file:line:column and the YAML path.
"""

from __future__ import annotations

import copy
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ConfigError, gather
from .systemd import nfs_service_name
from .yamlsrc import Document

ROLES = ("seed", "manager", "worker", "consul")
INSTALL_METHODS = ("distro", "apt-repo", "convenience-script", "none")

DEFAULTS: dict[str, Any] = {
    "cluster": {"name": "default"},
    "swarm": {
        "seed": "seed",
        "managers": [],
        "advertise_interface": None,
        "join_port": 2378,
        "join_timeout": 1800,
        "form": False,
    },
    "docker": {
        "install": "distro",
        "version": None,
        "apt_proxy": None,
        "api_port": 2376,
        "daemon": {
            "log_driver": "json-file",
            "log_opts": {"max-size": "10m", "max-file": "3"},
            "storage_driver": None,
            "labels": {},
            "registry_mirrors": [],
            "insecure_registries": [],
        },
    },
    "tls": {"sans": []},
    "nfs": [],
    "consul": {
        "servers": ["consul"],
        "agents": False,
        "image": "hashicorp/consul:1.19",
        "datacenter": "dc1",
        "encrypt": True,
    },
    "labels": {"seed": {}, "manager": {}, "worker": {}, "consul": {}},
    "security": {"block_metadata": True},
}


@dataclass(frozen=True)
class NfsShare:
    server: str
    export: str
    path: str
    options: tuple[str, ...]
    required: bool


@dataclass(frozen=True)
class DaemonSettings:
    log_driver: str
    log_opts: tuple[tuple[str, str], ...]
    storage_driver: str | None
    labels: tuple[tuple[str, str], ...]
    registry_mirrors: tuple[str, ...]
    insecure_registries: tuple[str, ...]


@dataclass(frozen=True)
class DockerSettings:
    install: str
    version: str | None
    apt_proxy: str | None
    api_port: int
    daemon: DaemonSettings


@dataclass(frozen=True)
class SwarmSettings:
    seed: str
    managers: tuple[str, ...]
    advertise_interface: str | None
    join_port: int
    join_timeout: int
    form: bool = False  # the seed may init a new swarm: only for the first formation (docs/ARCHITECTURE.md)


@dataclass(frozen=True)
class ConsulSettings:
    servers: tuple[str, ...]
    agents: bool
    image: str
    datacenter: str
    encrypt: bool


@dataclass(frozen=True)
class ClusterConfig:
    name: str
    swarm: SwarmSettings
    docker: DockerSettings
    tls_sans: tuple[str, ...]
    nfs: tuple[NfsShare, ...]
    consul: ConsulSettings
    labels: dict[str, tuple[tuple[str, str], ...]]
    block_metadata: bool
    source: str  # the file, or "<defaults>"


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _label_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def _pairs(mapping: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((str(k), _label_value(v)) for k, v in mapping.items()))


# What a share mounted there would hide: the system, or what bakery and Docker write on the node.
_SYSTEM_TREES = ("/proc", "/sys", "/dev", "/run", "/boot", "/etc", "/usr", "/bin", "/sbin", "/lib", "/lib64")
_NODE_PATHS = ("/var/lib/docker", "/var/lib/bakery", "/var/lib/containerd", "/var/lib/cloud", "/var/log",
               "/var/lib/dpkg", "/var/lib/apt", "/var/lib/systemd", "/var/cache/apt", "/root", "/tmp")


def _hides_the_system(path: str) -> str | None:
    """The system tree or node path a mount on `path` would cover, if any (None: a place of its own)."""
    if path == "/":
        return "the whole root file system"
    for tree in _SYSTEM_TREES:
        if path == tree or path.startswith(tree + "/"):
            return f"{tree} (system files, bakery's units and keys)"
    for node_path in _NODE_PATHS:
        if path == node_path or node_path.startswith(path + "/"):
            return node_path
    return None


_UNIT_NAME_MAX = 255  # systemd's UNIT_NAME_MAX (256, with the NUL)


def is_host(value: str) -> bool:
    """An IP address or a DNS name (labels joined by dots): what a certificate and a connection can use."""
    import ipaddress

    try:
        ipaddress.ip_address(value)
        return True
    except ValueError:
        pass
    return 0 < len(value) <= 253 and all(_LABEL.match(label) for label in value.split("."))


def _has_port(value: str) -> bool:
    host, sep, port = value.rpartition(":")
    return bool(sep) and port.isdigit() and is_host(host.strip("[]"))


def _check(doc: Document | None, data: dict[str, Any]) -> list[ConfigError]:
    """Rules the schema cannot say: every one broken, for the caller to report together."""
    found: list[ConfigError] = []
    seen: dict[str, int] = {}
    for i, share in enumerate(data["nfs"]):
        path = os.path.normpath(share["path"])
        hidden = _hides_the_system(path)
        if hidden:
            found.append(_err(doc, ("nfs", i, "path"), f"cannot mount an NFS share on {path}: it would hide {hidden}",
                              "pick a directory of its own, like /mnt/data or /srv/nfs/data"))
        elif path in seen:
            found.append(_err(doc, ("nfs", i, "path"), f"{path} is already the mount path of nfs[{seen[path]}]",
                              "give each share its own path"))
        elif len(service := nfs_service_name(path)) > _UNIT_NAME_MAX:
            found.append(_err(doc, ("nfs", i, "path"), f"{path} gives a unit name of {len(service)} "
                              f"characters once escaped; systemd takes at most {_UNIT_NAME_MAX}",
                              "use a shorter path (non-ASCII letters take 4 characters each when escaped)"))
        seen.setdefault(path, i)
    hosts: list[tuple[tuple[str | int, ...], Any]] = [(("swarm", "seed"), data["swarm"]["seed"])]
    hosts += [(("swarm", "managers", i), h) for i, h in enumerate(data["swarm"]["managers"])]
    hosts += [(("tls", "sans", i), h) for i, h in enumerate(data["tls"]["sans"])]
    hosts += [(("nfs", i, "server"), share["server"]) for i, share in enumerate(data["nfs"])]
    hosts += [(("consul", "servers", i), h) for i, h in enumerate(data["consul"]["servers"])]
    for where, host in hosts:
        if isinstance(host, str) and not is_host(host):
            hint = " (no port: the ports are docker.api_port and swarm.join_port)" if _has_port(host) else ""
            found.append(_err(doc, where, f"{host!r} is neither an IP address nor a DNS name{hint}",
                              "e.g. 10.0.0.5, fd00::5 or node1.example.org"))
    ports = {2377: "swarm's manager port", 7946: "swarm's gossip port", 4789: "swarm's VXLAN port"}
    for where, port in ((("docker", "api_port"), data["docker"]["api_port"]),
                        (("swarm", "join_port"), data["swarm"]["join_port"])):
        if port in ports:
            found.append(_err(doc, where, f"port {port} is already {ports[port]}",
                              "pick a free port (defaults: 2376, 2378)"))
        ports.setdefault(port, ".".join(where))
    version = data["docker"]["version"]
    if version and data["docker"]["install"] in ("distro", "none"):
        found.append(_err(doc, ("docker", "version"),
                          f"docker.version pins nothing with install: {data['docker']['install']}",
                          "use install: apt-repo or convenience-script to pin a version, or remove version"))
    return found


def _err(doc: Document | None, path: tuple[Any, ...], message: str, fix: str) -> ConfigError:
    if doc is None:
        return ConfigError(message, path=path, fix=fix)
    err = doc.error(path, message, fix, cls=ConfigError)
    assert isinstance(err, ConfigError)
    return err


def build(data: dict[str, Any], source: str = "<defaults>", doc: Document | None = None) -> ClusterConfig:
    merged = _merge(DEFAULTS, data or {})
    found = _check(doc, merged)
    if found:
        raise gather(found, ConfigError, None if doc is None else source)
    d, s, c = merged["docker"], merged["swarm"], merged["consul"]
    daemon = d["daemon"]
    return ClusterConfig(
        name=merged["cluster"]["name"],
        swarm=SwarmSettings(
            seed=s["seed"],
            managers=tuple(s["managers"]),
            advertise_interface=s["advertise_interface"],
            join_port=s["join_port"],
            join_timeout=s["join_timeout"],
            form=s["form"],
        ),
        docker=DockerSettings(
            install=d["install"],
            version=d["version"],
            apt_proxy=d["apt_proxy"],
            api_port=d["api_port"],
            daemon=DaemonSettings(
                log_driver=daemon["log_driver"],
                log_opts=_pairs(daemon["log_opts"]),
                storage_driver=daemon["storage_driver"],
                labels=_pairs(daemon["labels"]),
                registry_mirrors=tuple(daemon["registry_mirrors"]),
                insecure_registries=tuple(daemon["insecure_registries"]),
            ),
        ),
        tls_sans=tuple(merged["tls"]["sans"]),
        nfs=tuple(
            NfsShare(
                server=n["server"],
                export=n["export"],
                path=os.path.normpath(n["path"]),
                options=tuple(n.get("options", ["vers=4.1", "hard", "timeo=600", "retrans=2"])),
                required=n.get("required", True),
            )
            for n in merged["nfs"]
        ),
        consul=ConsulSettings(
            servers=tuple(c["servers"]),
            agents=c["agents"],
            image=c["image"],
            datacenter=c["datacenter"],
            encrypt=c["encrypt"],
        ),
        labels={role: _pairs(merged["labels"].get(role) or {}) for role in ROLES},
        block_metadata=merged["security"]["block_metadata"],
        source=source,
    )


# One DNS label (RFC 1123): a node's name is its hostname, its certificate's CN and SAN, and a directory.
_LABEL = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\Z", re.ASCII)


def check_node_name(name: str, flag: str) -> None:
    """Node names follow DNS label rules; a non-ASCII name is refused with its IDNA (punycode) form."""
    if _LABEL.match(name):
        return
    fix = "letters, digits and '-' (not first or last), at most 63 characters"
    if not name.isascii():
        try:
            fix = f"use its IDNA form {name.encode('idna').decode('ascii')!r}, or {fix}"
        except UnicodeError:
            pass
    shown = name if len(name) <= 40 else name[:37] + "..."
    raise ConfigError(f"{flag} {shown!r} is not a valid node name (a DNS label)", fix=fix)


def check_address(value: str, flag: str) -> None:
    """An address a certificate must cover: an IP address or a DNS name (labels joined by dots)."""
    if is_host(value):
        return
    raise ConfigError(f"{flag} {value!r} is neither an IP address nor a DNS name",
                      fix=f"e.g. {flag} 10.0.0.5 or {flag} node1.example.org")


def load(path: str | Path | None) -> ClusterConfig:
    """Load `path`, or the embedded defaults when `path` is None."""
    if path is None:
        return build({})
    from . import yamlsrc
    from .schema import load_schema, validate

    doc = yamlsrc.load(path, cls=ConfigError)
    validate(doc, load_schema("cluster.json"), cls=ConfigError)
    return build(doc.data or {}, str(path), doc)


def find_config(explicit: str | None) -> str | None:
    """--config, then $BAKERY_CONFIG, then ./bakery.yml if present, else defaults."""
    if explicit:
        return explicit
    if os.environ.get("BAKERY_CONFIG"):
        return os.environ["BAKERY_CONFIG"]
    return "bakery.yml" if os.path.exists("bakery.yml") else None
