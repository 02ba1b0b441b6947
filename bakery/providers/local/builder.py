"""A local builder: the plain image booted once with a bake user-data, as a cloud's builder server is.

`bakery bake --target openstack` boots a builder with bakery/bakedata.py's
user-data, waits for it to power off and snapshots it. This does the same on
this machine, so that user-data is proven on a real boot: a fresh network
(bridge, dnsmasq, the apt proxy, as `up` makes them), one node from the plain
image (no Docker: the bake installs it), and a wait until cloud-init's
power_state powers the node off (its systemd-nspawn exits). What the bake
left is then in the node's overlay and docker directory. The NoCloud seed is
written into the overlay rather than bind-mounted, so the bake's own
`cloud-init clean --seed` can remove it as on a cloud. Recorded like a
cluster: `bakery down --cluster NAME` removes everything.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ...errors import BakeryError, UserError
from . import cluster, net, nodes, rootfs
from .host import Progress, tail
from .state import ClusterRecord, NodeRecord, record_path

NAME = "builder"
APT_PROXY = f"http://{net.HOST_ADDRESS}:{cluster.APT_PROXY_PORT}"


@dataclass(frozen=True)
class Result:
    """Where the powered-off builder's disk is: the image it booted under its overlay, and /var/lib/docker."""

    lower: Path
    upper: Path
    docker: Path
    console: Path


def boot(state_dir: Path, name: str, cache_dir: Path, user_data: bytes, progress: Progress,
         binds: Sequence[str] = ()) -> ClusterRecord:
    """Boot the builder; `binds` are nspawn --bind-ro options (e.g. image archives it loads)."""
    path = record_path(state_dir, name)
    if path.exists():
        raise UserError(f"{name!r} is already up (record: {path})", fix=f"run `bakery down --cluster {name}` first")
    image = rootfs.ensure(rootfs.Recipe(baked=False, mirror=rootfs.host_mirror()), cache_dir, progress)
    workdir = path.parent / "local"
    rec = ClusterRecord(cluster=name, workdir=str(workdir), image=str(image.root), baked=False)
    workdir.mkdir(parents=True, exist_ok=True)

    def save() -> None:
        rec.save(path)

    save()
    net.create_bridge(rec, save)
    net.start_dnsmasq(rec, save, [])
    cluster.start_apt_proxy(rec, save)
    node = NodeRecord(name=NAME, role="builder", dir=str(workdir / "nodes" / NAME))
    rec.nodes.append(node)
    save()
    nodes.prepare(node, image.root, user_data, seed_in_overlay=True)
    progress(f"booting {NAME} from the plain image {image.root.parent.name}")
    nodes.boot(node, image.root, rec.bridge, binds, console="passive")  # a VM's console log
    save()
    node.init = nodes.find_init(node)
    save()
    return rec


def wait_poweroff(state_dir: Path, name: str, timeout: float, progress: Progress) -> Result:
    """Until the builder powers itself off; its console's tail if it does not within `timeout`."""
    path = record_path(state_dir, name)
    rec = cluster.load(state_dir, name)
    node = rec.node(NAME)
    console = Path(node.dir) / "console.log"
    deadline = time.monotonic() + timeout
    while node.nspawn is not None and node.nspawn.alive():
        if time.monotonic() > deadline:
            raise BakeryError(f"the builder did not power off within {timeout:.0f}s:\n{tail(console, 25)}")
        time.sleep(2)
    node.stopped = True
    rec.save(path)
    progress(f"{NAME} powered off")
    return Result(lower=Path(rec.image), upper=Path(node.dir) / "upper", docker=Path(node.dir) / "docker",
                  console=console)
