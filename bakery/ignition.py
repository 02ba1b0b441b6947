"""The same node as Ignition (spec 3.3.0) or Butane: Flatcar Container Linux and Fedora CoreOS.

`render._files` lays out the node (certificates, daemon.json, units, join configuration), as for
cloud-init; this module only says it in Ignition's words: files as `storage.files` (data URLs,
gzip where they must fit Nova's limit), units as `systemd.units`, the docker.service drop-in as a
`dropins` entry. Both systems ship Docker and run no cloud-init bootstrap, so nothing is
installed, and the join agent is the POSIX sh one (`agent/join.sh`): they have no Python.
"""

from __future__ import annotations

import base64
import gzip
import json
import re
import shlex
from functools import cache
from pathlib import Path
from typing import Any

from .certs import NodeMaterial
from .config import ClusterConfig
from .errors import UserError
from .render import (
    LIB_DIR,
    NOVA_BASE64_LIMIT,
    NOVA_RAW_LIMIT,
    UNIT_DIR,
    Agent,
    InsecureTcp,
    Node,
    UserData,
    _files,
)

SPEC = "3.3.0"  # Flatcar stable and Fedora CoreOS stable accept it; Butane fcos 1.4.0 / flatcar 1.0.0 emit it
BUTANE = ("flatcar", "1.0.0")
CONTENT_TYPE = "application/vnd.coreos.ignition+json"
# /usr is read-only on both systems; /opt is writable (a symlink to /var/opt on Fedora CoreOS).
OPT_DIR = "/opt/bakery"
SH_AGENT = f"{OPT_DIR}/bakery-join.sh"
JOIN_ENV = "/etc/bakery/join.env"
AGENT = Agent(join=f"/bin/sh {SH_AGENT} join", answer=f"/bin/sh {SH_AGENT} answer")
GZIP_FROM = 1024  # with gzip on, every file this big or bigger is compressed
_DROPIN = re.compile(r"(?P<unit>[^/]+)\.d/(?P<name>[^/]+\.conf)\Z")
_MODE = re.compile(r"^(      mode:) (\d+)$", re.M)  # a storage entry's mode, never a line of a file


@cache
def sh_agent_source() -> str:
    """The sh join agent's text, written to the node as SH_AGENT."""
    return (Path(__file__).resolve().parent / "agent" / "join.sh").read_text()


def refuse(cfg: ClusterConfig, fmt: str, parts: tuple[Path, ...]) -> None:
    """What these formats cannot carry, said before any certificate is made."""
    if cfg.docker.install != "none":
        line = column = None
        said = repr(cfg.docker.install)
        if cfg.source and not cfg.source.startswith("<"):
            from .yamlsrc import load as load_yaml

            doc = load_yaml(cfg.source, cls=UserError)
            pos = doc.positions.get(("docker", "install"))
            if pos is not None:
                line, column = pos.line, pos.column
            else:  # not in the file: the default
                said = f"not set, so it is {cfg.docker.install!r} (the default)"
        else:
            said = f"no cluster definition, so it is {cfg.docker.install!r} (the default)"
        raise UserError(
            f"{said}, but --format {fmt} installs nothing: Flatcar and "
            "Fedora CoreOS ship Docker, and Ignition installs no packages",
            source=cfg.source, line=line, column=column, path=("docker", "install"),
            fix="set docker: {install: none} for these nodes")
    if parts:
        raise UserError(f"--part adds MIME parts for cloud-init; --format {fmt} has none",
                        fix="add your files to the Ignition config yourself (Ignition's merge), or drop --part")


def join_env(data: dict[str, Any]) -> str:
    """join.json's settings as the sh agent reads them: one shell assignment a line, quoted."""
    tls = data["tls"]
    values = {
        "ROLE": data["role"], "JOIN_CLASS": data["join_class"], "SEED": data["seed"],
        "ENDPOINTS": " ".join(data["endpoints"]), "JOIN_PORT": data["join_port"],
        "SWARM_PORT": data["swarm_port"], "DOCKER_SOCKET": data["docker_socket"],
        "ADVERTISE_INTERFACE": data.get("advertise_interface") or "", "TIMEOUT": data["timeout"],
        "TLS_CA": tls["ca"], "TLS_JOIN_CERT": tls["join_cert"], "TLS_JOIN_KEY": tls["join_key"],
    }
    if "form" in data:
        values["FORM"] = "true" if data["form"] else "false"
    head = "# Written by bakery: the sh join agent's settings (no secrets), from the same values as join.json.\n"
    return head + "".join(f"{k}={shlex.quote(str(v))}\n" for k, v in values.items())


def layout(cfg: ClusterConfig, node: Node, material: NodeMaterial, insecure: InsecureTcp | None,
           gossip_key: str | None) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(files, units) for these systems, from render's layout of the node."""
    entries = _files(cfg, node, material, insecure, gossip_key, AGENT).entries
    files: list[dict[str, Any]] = []
    units: dict[str, dict[str, Any]] = {"docker.service": {"name": "docker.service", "enabled": True}}
    for e in entries:
        path, content, mode = e["path"], e["content"], int(e["permissions"], 8)
        if path == f"{LIB_DIR}/bootstrap":
            continue  # cloud-init's runcmd script; Ignition enables the units itself
        if path == f"{LIB_DIR}/bakery-join":
            continue  # no Python there: the sh agent joins, and answers for the managers' join service
        if path.startswith(LIB_DIR + "/"):  # /usr is read-only there: bakery's programs live in /opt/bakery
            path = OPT_DIR + path.removeprefix(LIB_DIR)
        if path.startswith(UNIT_DIR + "/"):
            name = path.removeprefix(UNIT_DIR + "/")
            content = content.replace(LIB_DIR + "/", OPT_DIR + "/")
            dropin = _DROPIN.match(name)
            if dropin:
                unit = units.setdefault(dropin["unit"], {"name": dropin["unit"], "enabled": True})
                unit.setdefault("dropins", []).append({"name": dropin["name"], "contents": content})
            else:  # enabled where it can be; the others are pulled in by the units that need them (or, a
                # template, instantiated by its socket): Ignition is told nothing of their state
                units[name] = {"name": name, "contents": content}
                if "\n[Install]\n" in content:
                    units[name]["enabled"] = True
            continue
        files.append({"path": path, "mode": mode, "content": content})
        if path == "/etc/bakery/join.json":
            files.append({"path": JOIN_ENV, "mode": 0o644, "content": join_env(json.loads(content))})
            files.append({"path": SH_AGENT, "mode": 0o755, "content": sh_agent_source()})
    return files, sorted(units.values(), key=lambda u: str(u["name"]))


def data_url(text: str, compress: bool) -> tuple[str, bool]:
    """The shortest data URL for the text: percent-encoded or base64, or gzip+base64 when asked."""
    from urllib.parse import quote

    raw = text.encode()
    if compress and len(raw) >= GZIP_FROM:
        return "data:;base64," + base64.b64encode(gzip.compress(raw, mtime=0)).decode(), True
    plain = "data:," + quote(raw, safe="/:=,;+!*'()@$&~")
    b64 = "data:;base64," + base64.b64encode(raw).decode()
    return (plain if len(plain) <= len(b64) else b64), False


def config(files: list[dict[str, Any]], units: list[dict[str, Any]], compress: bool) -> tuple[dict[str, Any], bool]:
    out, zipped = [], False
    for f in files:
        source, z = data_url(f["content"], compress)
        contents: dict[str, Any] = {"source": source}
        if z:
            contents["compression"] = "gzip"
            zipped = True
        out.append({"path": f["path"], "mode": f["mode"], "overwrite": True, "contents": contents})
    doc = {
        "ignition": {"version": SPEC},
        "storage": {"directories": [{"path": "/var/lib/bakery", "mode": 0o700}], "files": out},
        "systemd": {"units": units},
    }
    return doc, zipped


def ignition(files: list[dict[str, Any]], units: list[dict[str, Any]], gzip_mode: str) -> UserData:
    """The Ignition config within Nova's limit: gzip data URLs when needed (or --gzip always)."""
    def encode(compress: bool) -> tuple[bytes, bool]:
        doc, zipped = config(files, units, compress)
        return (json.dumps(doc, sort_keys=True, separators=(",", ":")) + "\n").encode(), zipped

    plain, _ = encode(False)
    payload, zipped = plain, False
    if gzip_mode == "always" or (gzip_mode == "auto" and len(plain) > NOVA_RAW_LIMIT):
        payload, zipped = encode(True)
    result = UserData(payload, len(plain), zipped, CONTENT_TYPE, tuple(f["path"] for f in files))
    if result.base64_size > NOVA_BASE64_LIMIT:
        how = "with gzip data URLs" if zipped else "without compression (--gzip never)"
        raise UserError(
            f"the Ignition config is {len(payload)} bytes {how}, {result.base64_size} base64 characters; "
            f"Nova accepts at most {NOVA_BASE64_LIMIT} base64 characters ({NOVA_RAW_LIMIT} bytes)",
            fix="drop NFS shares or consul agents" + ("" if zipped else ", or let bakery compress (--gzip auto)"))
    return result


def butane(files: list[dict[str, Any]], units: list[dict[str, Any]]) -> UserData:
    """Butane YAML for people who keep Butane sources; `butane` compresses inline contents itself."""
    from . import cloudyaml

    variant, version = BUTANE
    doc = {
        "variant": variant, "version": version,
        "storage": {
            "directories": [{"path": "/var/lib/bakery", "mode": 0o700}],
            "files": [{"path": f["path"], "mode": f["mode"], "overwrite": True, "contents": {"inline": f["content"]}}
                      for f in files],
        },
        "systemd": {"units": units},
    }
    head = "# bakery: Butane config (variant flatcar 1.0.0; for Fedora CoreOS use variant fcos, version 1.4.0)\n"
    text = head + _MODE.sub(lambda m: f"{m[1]} 0{int(m[2]):o}", cloudyaml.dump(doc))
    return UserData(text.encode(), len(text.encode()), False, "application/yaml", tuple(f["path"] for f in files))


def userdata(cfg: ClusterConfig, node: Node, material: NodeMaterial, fmt: str, *, gzip_mode: str,
             insecure: InsecureTcp | None, gossip_key: str | None) -> UserData:
    files, units = layout(cfg, node, material, insecure, gossip_key)
    return butane(files, units) if fmt == "butane" else ignition(files, units, gzip_mode)
