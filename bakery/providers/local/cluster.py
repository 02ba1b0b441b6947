"""A local cluster: network, nodes booted with `bakery render`'s user-data, swarm readiness, teardown.

`up` records every resource the moment it exists (state.py), so `down`
works from that record even after a failed or interrupted `up`.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ...errors import BakeryError, EnvironmentMissing, UserError
from ...state import private_dir
from . import net, nodes, rootfs
from .host import Progress
from .state import ClusterRecord, NodeRecord, Teardown, record_path

APT_PROXY_PORT = 3142
MAX_INDEX = 19  # manager-1..19 and worker-1..19 have fixed addresses


@dataclass(frozen=True)
class UpOptions:
    cluster: str
    managers: int  # including the seed
    workers: int
    consul: bool
    baked: bool
    user_config: str | None
    state_dir: Path
    cache_dir: Path
    timeout: float
    drain_timeout: float = 300  # day two: how long a drained node's tasks may take to run elsewhere
    fmt: str = "cloud-init"  # or "ignition": nodes like Flatcar's, set up by the real Ignition


@dataclass(frozen=True)
class SwarmNode:
    hostname: str
    status: str  # Ready / Down / Unknown
    availability: str
    manager_status: str  # Leader / Reachable / Unreachable / "" for workers

    @property
    def role(self) -> str:
        return "manager" if self.manager_status else "worker"


def node_names(managers: int, workers: int, consul: bool) -> list[tuple[str, str]]:
    """(name, role) in boot order: the seed first."""
    out = [("seed", "seed")]
    out += [(f"manager-{i}", "manager") for i in range(1, managers)]
    out += [(f"worker-{i}", "worker") for i in range(1, workers + 1)]
    if consul:
        out.append(("consul", "consul"))
    return out


def address_for(name: str, role: str) -> str:
    """Fixed per-name addresses (dnsmasq hands them out by DHCP hostname), so certificates can cover them."""
    index = int(name.rsplit("-", 1)[1]) if "-" in name and name.rsplit("-", 1)[1].isdigit() else 0
    base = {"seed": 10, "manager": 10, "worker": 30, "consul": 90}[role]
    if (role in ("manager", "worker") and not 0 < index <= MAX_INDEX) or (role == "consul" and index > 9):
        raise UserError(f"no local address for node {name!r}", fix=f"at most {MAX_INDEX} of each role")
    return f"10.213.0.{base + index}"


def reservations() -> list[tuple[str, str]]:
    """Every name a local cluster can have, with its address: nodes added later are covered too."""
    names = [("seed", "seed"), ("consul", "consul")]
    names += [(f"{role}-{i}", role) for role in ("manager", "worker") for i in range(1, MAX_INDEX + 1)]
    return [(name, address_for(name, role)) for name, role in names]


def cluster_config(opts: UpOptions, names: list[tuple[str, str]], workdir: Path, base_file: str | None = None) -> Path:
    """The user's cluster definition with what a local cluster must have laid over it.

    `names`: every node the cluster will have (manager names go to swarm.managers, which their
    certificates must match). swarm.seed is the seed while there is one; after a roll replaced it,
    the lowest numbered manager. `base_file`: the definition a running cluster was made from, the
    base when `opts.user_config` does not give a new one.
    """
    base: dict[str, Any] = {}
    source = opts.user_config or base_file
    if source:
        from ...config import load

        load(source)  # validate with positions before we merge
        base = yaml.safe_load(Path(source).read_text()) or {}
    docker: dict[str, Any] = {"install": "none" if opts.baked else "distro", "daemon": {"storage_driver": "vfs"}}
    if not opts.baked:
        docker["apt_proxy"] = f"http://{net.HOST_ADDRESS}:{APT_PROXY_PORT}"
    managers = sorted((n for n, r in names if r == "manager"), key=_number)
    seed = next((n for n, r in names if r == "seed"), managers[0] if managers else "seed")
    over = {
        "cluster": {"name": opts.cluster},
        "swarm": {"seed": seed, "managers": [m for m in managers if m != seed]},
        "docker": docker,
    }
    merged = _merge(base, over)
    path = workdir / "cluster.yml"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(yaml.safe_dump(merged, sort_keys=True))
    tmp.replace(path)
    return path


def _number(name: str) -> int:
    tail = name.rsplit("-", 1)[-1]
    return int(tail) if tail.isdigit() else 0


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def render(rec: ClusterRecord, state_dir: Path, name: str, role: str, form: bool = False) -> bytes:
    """The node's user-data, as `bakery render` makes it from the cluster's config. `form` is
    decided here, never taken from the user's file: only the seed of a new cluster may init a swarm."""
    import dataclasses

    from ...config import load
    from ...render import Node, build_userdata

    cfg = load(rec.config)
    cfg = dataclasses.replace(cfg, swarm=dataclasses.replace(cfg.swarm, form=form and role == "seed"))
    userdata, _ = build_userdata(cfg, Node(role, name, (address_for(name, role),)), state_dir, fmt=rec.format)
    return userdata.payload


def refuse_others_identities(opts: UpOptions, names: list[tuple[str, str]]) -> None:
    """A node of this name whose certificate is not for its local address was issued elsewhere
    (`bakery render` for a cloud node of the same cluster name): the local cluster would reissue it
    and the other node's user-data would no longer match. Refused before anything is made."""
    from ...certs import issued_sans
    from ...state import cluster_dir

    cdir = cluster_dir(opts.cluster, opts.state_dir)
    taken = []
    for name, role in names:
        sans = issued_sans(cdir, name)
        if sans is not None and address_for(name, role) not in sans:
            taken.append(f"{name} ({', '.join(sans)})")
    if taken:
        raise UserError(f"cluster {opts.cluster!r} already has node identities issued elsewhere: {'; '.join(taken)}; "
                        "a local cluster of that name would reissue them (new key pairs), and those nodes' "
                        "user-data would no longer match",
                        fix="give the local cluster its own name with --cluster NAME")


def up(opts: UpOptions, progress: Progress) -> ClusterRecord:
    path = record_path(opts.state_dir, opts.cluster)
    if path.exists():
        raise UserError(f"cluster {opts.cluster!r} is already up (record: {path})",
                        fix=f"run `bakery down --cluster {opts.cluster}` first")
    names = node_names(opts.managers, opts.workers, opts.consul)
    refuse_others_identities(opts, names)
    net.require_free_subnet()  # before anything is recorded: a refused `up` leaves nothing behind
    image = rootfs.ensure(rootfs.Recipe(baked=opts.baked, mirror=rootfs.host_mirror()), opts.cache_dir, progress) \
        if not opts.baked else current_baked(opts.cache_dir, progress)
    workdir = path.parent / "local"
    rec = ClusterRecord(cluster=opts.cluster, workdir=str(workdir), image=str(image.root), baked=opts.baked,
                        formed=False, format=opts.fmt)
    private_dir(workdir)

    def save() -> None:
        rec.save(path)

    save()
    rec.config = str(cluster_config(opts, names, workdir))
    save()
    progress(f"network {net.SUBNET} on a new bridge, dnsmasq for DHCP and DNS ({net.DOMAIN})")
    net.create_bridge(rec, save)
    net.start_dnsmasq(rec, save, reservations())
    if not opts.baked:
        start_apt_proxy(rec, save)
    for name, role in names:  # a new cluster (the record did not exist): its seed forms the swarm
        add_node(rec, opts.state_dir, name, role, progress, save, form=True)
    wait_ready(rec, opts.timeout, progress)
    rec.formed = True
    save()
    return rec


def current_baked(cache_dir: Path, progress: Progress) -> rootfs.Image:
    """The image `bakery bake --target local` made last, or a baked image without app images."""
    found = rootfs.current(cache_dir)
    if found is not None:
        progress(f"node image {found.root.parent.name} (from `bakery bake --target local`)")
        return found
    return rootfs.ensure(rootfs.Recipe(baked=True, mirror=rootfs.host_mirror()), cache_dir, progress)


def add_node(rec: ClusterRecord, state_dir: Path, name: str, role: str, progress: Progress,
             save: Callable[[], None], form: bool = False, image: str = "") -> NodeRecord:
    if any(n.name == name for n in rec.nodes):
        raise UserError(f"cluster {rec.cluster} already has a node {name!r}")
    node = NodeRecord(name=name, role=role, dir=str(Path(rec.workdir) / "nodes" / name), image=image or rec.image)
    rec.nodes.append(node)
    save()
    user_data = render(rec, state_dir, name, role, form)
    if rec.format == "ignition":
        nodes.prepare_ignition(node, Path(node.image), user_data)
    else:
        nodes.prepare(node, Path(node.image), user_data)
    progress(f"booting {name} ({role}, {address_for(name, role)})")
    nodes.boot(node, Path(node.image), rec.bridge)
    save()
    node.init = nodes.find_init(node)
    save()
    return node


def api_node(rec: ClusterRecord) -> NodeRecord:
    """The node whose TLS API operators point DOCKER_HOST at: the seed, or once a roll replaced it the
    lowest numbered manager; a running one before a stopped one. (bakery/swarm/connect.py's recorded_seed
    reads the record without the processes: the seed, else the first manager.)"""
    managers = sorted((n for n in rec.nodes if n.role in ("seed", "manager")),
                      key=lambda n: (n.stopped or not nodes.running(n), n.role != "seed", _number(n.name)))
    if not managers:
        raise BakeryError(f"cluster {rec.cluster} has no manager in its record")
    return managers[0]


def ask_swarm(rec: ClusterRecord) -> tuple[NodeRecord, list[SwarmNode]] | None:
    """`docker node ls` from the engine inside the first running manager that answers (the seed first),
    with that manager; None if none does.

    A manager that stopped meanwhile, hangs, or has no quorum ("the swarm does not have a leader")
    is skipped for the next one.
    """
    fmt = "{{.Hostname}}|{{.Status}}|{{.Availability}}|{{.ManagerStatus}}"
    for node in rec.nodes:
        if node.role not in ("seed", "manager") or node.stopped or not nodes.running(node):
            continue
        try:
            done = nodes.exec_in(node, ["docker", "node", "ls", "--format", fmt], timeout=30)
        except (BakeryError, subprocess.TimeoutExpired):
            continue
        if done.returncode == 0:
            return node, [SwarmNode(*line.split("|", 3)) for line in done.stdout.splitlines() if line.count("|") == 3]
    return None


def swarm_nodes(rec: ClusterRecord) -> list[SwarmNode] | None:
    """`docker node ls` as seen by the first running manager that answers; None if none does."""
    asked = ask_swarm(rec)
    return asked[1] if asked else None


def readiness(rec: ClusterRecord, listed: list[SwarmNode] | None) -> dict[str, bool]:
    """For each running swarm node (not consul): Ready in the swarm with its role."""
    ready = {}
    for node in rec.nodes:
        if node.role == "consul" or node.stopped:
            continue
        want = "worker" if node.role == "worker" else "manager"
        ready[node.name] = any(
            s.hostname == node.name and s.status == "Ready" and s.role == want for s in (listed or [])
        )
    return ready


def wait_ready(rec: ClusterRecord, timeout: float, progress: Progress) -> None:
    deadline = time.monotonic() + timeout
    last = ""
    while True:
        for node in rec.nodes:
            if not node.stopped and not nodes.running(node):
                raise BakeryError(f"node {node.name} stopped while booting (console: {node.dir}/console.log)")
        ready = readiness(rec, swarm_nodes(rec))
        done = sorted(n for n, ok in ready.items() if ok)
        line = f"{len(done)}/{len(ready)} nodes Ready" + (f": {', '.join(done)}" if done else "")
        if line != last:
            progress(line)
            last = line
        if all(ready.values()):
            return
        if time.monotonic() > deadline:
            missing = ", ".join(n for n, ok in ready.items() if not ok)
            raise BakeryError(f"not Ready after {timeout:.0f}s: {missing} "
                              f"(see `bakery nodes --cluster {rec.cluster}` and {rec.workdir}/nodes/*/console.log; "
                              f"`bakery down --cluster {rec.cluster}` removes it)")
        time.sleep(2)


def start_apt_proxy(rec: ClusterRecord, save: Callable[[], None]) -> None:
    """The only way out for nodes that install packages at boot: GETs to the image's mirror (docs/local-nodes.md)."""
    from urllib.parse import urlparse

    from .state import Proc

    mirror = urlparse(rootfs.host_mirror()).netloc
    log = Path(rec.workdir) / "aptproxy.log"
    cmd = [sys.executable, "-m", "bakery.providers.local.aptproxy", "--listen",
           f"{net.HOST_ADDRESS}:{APT_PROXY_PORT}", "--allow", mirror]
    with log.open("ab") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    rec.services["aptproxy"] = Proc.of(proc.pid)
    save()


def load(state_dir: Path, cluster: str) -> ClusterRecord:
    path = record_path(state_dir, cluster)
    if not path.exists():
        raise UserError(f"no local cluster {cluster!r} in {state_dir}",
                        fix="start one with `bakery up --provider local`")
    return ClusterRecord.load(path)


def down(state_dir: Path, cluster: str, progress: Progress) -> Teardown:
    """Remove what the record lists; what could not be removed is returned too (and the record kept).

    No record (a cluster that never was, or a second `down`): nothing to remove, an empty
    Teardown, and no root needed.
    """
    import shutil

    from .host import require_host

    path = record_path(state_dir, cluster)
    if not path.exists():
        return Teardown()
    require_host(["ip", "iptables"], "bakery down --provider local")
    rec = ClusterRecord.load(path)

    def save() -> None:
        rec.save(path)

    done = Teardown()
    live = [n for n in rec.nodes if not nodes.is_gone(n)]
    progress(f"stopping {len(live)} node(s)")
    for node in live:  # all at once: each gets its orderly poweroff in parallel
        if node.nspawn is not None:
            node.nspawn.send(signal.SIGTERM)
    for node in live:
        nodes.stop(node, grace=15, signalled=True)
    save()
    done.removed += [f"node {n.name}" for n in live if nodes.is_gone(n)]
    done.problems += [f"node {n.name} is still running" for n in rec.nodes if not nodes.is_gone(n)]
    done.add(net.teardown(rec, save))
    if done.problems:
        return done
    workdir = Path(rec.workdir)
    if workdir == path.parent / "local" and workdir.exists():
        progress(f"removing {workdir}")
        shutil.rmtree(workdir)
        done.removed.append(f"directory {workdir}")
    path.unlink()
    done.removed.append(f"record {path}")
    return done


def require_local() -> None:
    from .host import require_host

    require_host(["systemd-nspawn", "nsenter", "dnsmasq", "iptables", "ip"], "the local provider")
    if not Path("/proc/self/ns/pid").exists():
        raise EnvironmentMissing("this kernel has no PID namespaces; systemd-nspawn cannot boot nodes")


def status(rec: ClusterRecord) -> tuple[list[dict[str, Any]], str | None]:
    """One row per recorded node, with what the swarm says of it, and the manager that said it.

    The swarm's view comes from `docker node ls` on the engine inside a running manager (ask_swarm),
    as an operator on that manager would see it. Row keys: name, role, address, running (the node's
    systemd runs), status (Ready/Down/Unknown/Disconnected; Unknown too when no manager
    answered or the swarm does not list the node), availability (Active/Pause/Drain, "" when
    unknown), manager_status (Leader/Reachable/Unreachable; "" for workers and when unknown).
    A node that is not a swarm member by design (consul) has "" for all three. The manager is None
    when none answered (every manager stopped, or none has quorum).
    """
    asked = ask_swarm(rec)
    listed = asked[1] if asked else []
    rows = []
    for node in rec.nodes:
        mine = [s for s in listed if s.hostname == node.name]
        # A node that left and joined again is listed twice: the Ready entry is the live one.
        best = next((s for s in mine if s.status == "Ready"), mine[0] if mine else None)
        if node.role == "consul" and best is None:
            seen = ("", "", "")
        elif best is None:
            seen = ("Unknown", "", "")
        else:
            seen = (best.status, best.availability, best.manager_status)
        rows.append({
            "name": node.name,
            "role": node.role,
            "address": address_for(node.name, node.role),
            "running": nodes.running(node),
            "status": seen[0],
            "availability": seen[1],
            "manager_status": seen[2],
        })
    order = {"seed": 0, "manager": 1, "worker": 2, "consul": 3}
    rows.sort(key=lambda r: (order.get(str(r["role"]), 9), _number(str(r["name"]))))
    return rows, asked[0].name if asked else None


def grow(state_dir: Path, cluster: str, name: str, role: str, progress: Progress) -> NodeRecord:
    """Boot one more node into a running cluster (a late worker, a replacement manager or seed):
    it only joins, a seed too (never a second swarm)."""
    path = record_path(state_dir, cluster)
    rec = load(state_dir, cluster)
    return add_node(rec, state_dir, name, role, progress, lambda: rec.save(path))


def kill_node(state_dir: Path, cluster: str, name: str) -> None:
    """A hard fault: the node vanishes at once. `down` still removes its directory."""
    path = record_path(state_dir, cluster)
    rec = load(state_dir, cluster)
    nodes.kill(rec.node(name))
    rec.save(path)
