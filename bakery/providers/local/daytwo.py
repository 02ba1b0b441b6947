"""Day two on a local cluster: `bakery up` re-run with other counts, and `bakery roll` (bakery/fleet.py decides).

The swarm is asked and changed with the Docker CLI of a running manager, inside that node (as an
operator on it would); a node leaves with `docker swarm leave` run inside it. A roll keeps a
journal (roll.json beside the record: the image and which node replaces which), so a re-run after
a stop continues with the same names and image.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ... import fleet
from ...errors import BakeryError, UserError
from . import cluster, nodes, rootfs
from .host import Progress
from .state import ClusterRecord, NodeRecord, record_path

JOURNAL = "roll.json"


@contextmanager
def exclusive(state_dir: Path, name: str, wait: float = 0, progress: Progress | None = None) -> Iterator[None]:
    """One `up`, `roll` or `down` per cluster at a time: another is refused (after `wait` seconds, said once
    through `progress`), not queued."""
    import time

    from ...state import private_dir

    folder = record_path(state_dir, name).parent
    private_dir(folder)
    fd = os.open(folder / "day2.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if progress is not None and wait:
                    progress(f"another `bakery up`, `roll` or `down` is changing cluster {name} now: waiting up "
                             f"to {wait:.0f}s for it to finish")
                    progress = None
                if time.monotonic() >= deadline:
                    raise fleet.Refused(f"another `bakery up`, `roll` or `down` is changing cluster {name} now",
                                    fix="wait for it to finish (or stop it), then re-run") from None
                time.sleep(0.5)
        yield
    finally:
        os.close(fd)


class CliSwarm:
    """fleet.Swarm through the docker CLI inside one manager node."""

    def __init__(self, node: NodeRecord) -> None:
        self.node = node

    def _docker(self, *args: str) -> str:
        try:
            done = nodes.exec_in(self.node, ["docker", *args], timeout=60)
        except subprocess.TimeoutExpired as exc:
            raise BakeryError(f"`docker {' '.join(args)}` on {self.node.name} timed out") from exc
        if done.returncode != 0:
            raise BakeryError(f"`docker {' '.join(args)}` on {self.node.name}: {done.stderr.strip()[-400:]}")
        return done.stdout

    def nodes(self) -> list[dict[str, str]]:
        return [json.loads(line) for line in self._docker("node", "ls", "--format", "{{json .}}").splitlines()
                if line.strip()]

    def drain(self, node_id: str) -> None:
        self._docker("node", "update", "--availability", "drain", node_id)

    def tasks(self, node_id: str) -> list[tuple[str, str]]:
        # Every task the node has (a draining one is desired Shutdown while still Running); the
        # history's ended tasks show as Shutdown/Complete/Failed and are told apart by the caller.
        out = self._docker("node", "ps", node_id, "--no-trunc", "--format", "{{.Name}}|{{.CurrentState}}")
        rows = [line.split("|", 1) for line in out.splitlines() if "|" in line]
        return [(name.strip().lstrip("\\_ ").rsplit(".", 1)[0], state) for name, state in rows]

    def desired(self) -> dict[str, int]:
        out = self._docker("service", "ls", "--format", "{{.Name}}|{{.Mode}}|{{.Replicas}}")
        found = {}
        for line in out.splitlines():
            name, mode, reps = (line.split("|", 2) + ["", ""])[:3]
            counts = fleet.parse_replicas(reps)
            if mode == "replicated" and counts:
                found[name] = counts[1]
        return found

    def running(self, service: str) -> int:
        out = self._docker("service", "ps", service, "--filter", "desired-state=running",
                           "--format", "{{.CurrentState}}")
        return sum(1 for line in out.splitlines() if line.startswith("Running"))

    def demote(self, node_id: str) -> None:
        self._docker("node", "demote", node_id)

    def remove(self, node_id: str, force: bool) -> None:
        self._docker("node", "rm", *(["--force"] if force else []), node_id)


@dataclass
class LocalDriver:
    """fleet.Driver for the local provider: nodes in the record, booted with `bakery render`'s user-data."""

    rec: ClusterRecord
    state_dir: Path
    opts: cluster.UpOptions
    image: str = ""  # the image new nodes boot from ("": the cluster's)
    limit: int = cluster.MAX_INDEX
    leaderless: bool = False  # the last ask: a manager answered "the swarm does not have a leader"

    def save(self) -> None:
        self.rec.save(record_path(self.state_dir, self.rec.cluster))

    def _manager(self, avoid: Sequence[str] = ()) -> tuple[NodeRecord, list[dict[str, str]]] | None:
        self.leaderless = False
        for node in self.rec.nodes:
            if node.role not in fleet.MANAGER_ROLES or node.name in avoid or node.stopped or not nodes.running(node):
                continue
            try:
                return node, CliSwarm(node).nodes()
            except (BakeryError, ValueError) as exc:
                self.leaderless |= "does not have a leader" in str(exc) or "no leader" in str(exc)
                continue
        return None

    def members(self) -> list[fleet.Member]:
        asked = self._manager()
        if asked is None and self.leaderless:
            raise fleet.Refused(
                f"the swarm of cluster {self.rec.cluster} has no leader: its managers answer, but fewer than a "
                "majority of them are reachable (no quorum); no node can join or leave",
                fix="bring the lost managers back; if they are lost for good, run `docker swarm init "
                    "--force-new-cluster` on a surviving manager, then re-run")
        if asked is None and any(n.role in fleet.MANAGER_ROLES for n in self.rec.nodes):
            raise fleet.Refused(f"no running manager of cluster {self.rec.cluster} answers `docker node ls`, so "
                            "nothing can join or leave its swarm",
                            fix=f"see `bakery nodes --cluster {self.rec.cluster}`; if the swarm is lost, "
                                f"`bakery down --cluster {self.rec.cluster}` and up again")
        return fleet.members_of([(n.name, n.role, not n.stopped and nodes.running(n)) for n in self.rec.nodes],
                                asked[1] if asked else [])

    def swarm(self, avoid: Sequence[str] = ()) -> fleet.Swarm:
        asked = self._manager(avoid)
        if asked is None:
            raise fleet.Stopped(f"no running manager of cluster {self.rec.cluster} (other than "
                                f"{', '.join(avoid) or 'none'}) answers `docker node ls`; re-run when one does")
        return CliSwarm(asked[0])

    def running(self, name: str) -> bool:
        found = [n for n in self.rec.nodes if n.name == name]
        return bool(found) and not found[0].stopped and nodes.running(found[0])

    def ready(self, names: Sequence[str]) -> dict[str, bool]:
        asked = self._manager()
        listed = asked[1] if asked else []
        out = {}
        for name in names:
            role = self.rec.node(name).role
            want = "" if role == "worker" else "manager"
            out[name] = any(s.get("Hostname") == name and s.get("Status") == "Ready"
                            and ("manager" if s.get("ManagerStatus") else "") == want for s in listed)
            if out[name]:
                self._check_address(name, role)
        return out

    def _check_address(self, name: str, role: str) -> None:
        """A node must have its reserved address: its certificate, `bakery nodes` and DOCKER_HOST name it."""
        want = cluster.address_for(name, role)
        try:
            done = nodes.exec_in(self.rec.node(name), ["ip", "-4", "-o", "addr", "show"], timeout=20)
        except (BakeryError, subprocess.TimeoutExpired):
            return
        if done.returncode == 0 and f" {want}/" not in done.stdout:
            got = [w.split("/")[0] for w in done.stdout.split() if w.count(".") == 3 and "/" in w
                   and not w.startswith("127.")]
            raise fleet.Stopped(f"{name} is Ready but has address {', '.join(got) or 'none'}, not its reserved {want} "
                                f"(dnsmasq's log: {self.rec.workdir}/dnsmasq.log); its certificate names {want}")

    def boot(self, name: str, role: str, progress: Progress) -> None:
        from ... import certs, state

        stale = [n for n in self.rec.nodes if n.name == name]
        if stale:  # booted by a run that stopped, and not running now: start it afresh
            self.delete(name)
        names = [(n.name, n.role) for n in self.rec.nodes] + [(name, role)]
        self.rec.config = str(cluster.cluster_config(self.opts, names, Path(self.rec.workdir),
                                                     base_file=self.rec.config or None))
        self.save()
        cdir = state.cluster_dir(self.rec.cluster, self.state_dir)
        if name in certs.node_names(cdir):  # a name used before: the new node gets a new identity
            certs.renew(cdir, [name])
        if role != "consul":
            self._forget(name)
        cluster.add_node(self.rec, self.state_dir, name, role, progress, self.save, image=self.image)

    def _forget(self, name: str) -> None:
        """A Down entry left with this hostname by an earlier run: removed, so no node is listed twice."""
        asked = self._manager()
        if asked is not None:
            fleet.forget(CliSwarm(asked[0]), name, asked[1])

    def leave(self, name: str) -> bool:
        node = self.rec.node(name)
        if not self.running(name):
            return False
        try:
            done = nodes.exec_in(node, ["docker", "swarm", "leave"], timeout=60)
        except subprocess.TimeoutExpired:
            return False
        return done.returncode == 0

    def delete(self, name: str) -> None:
        node = self.rec.node(name)
        nodes.stop(node, grace=15)
        self.save()
        if not nodes.is_gone(node):
            raise fleet.Stopped(f"{name} is still running after a stop; re-run to retry")
        workdir = Path(self.rec.workdir)
        if Path(node.dir).parent == workdir / "nodes":
            shutil.rmtree(node.dir, ignore_errors=True)
        self.rec.nodes.remove(node)
        self.save()
        from ... import certs, state

        certs.forget(state.cluster_dir(self.rec.cluster, self.state_dir), name)


def _driver(opts: cluster.UpOptions, rec: ClusterRecord, image: str = "") -> LocalDriver:
    return LocalDriver(rec=rec, state_dir=opts.state_dir, opts=opts, image=image)


def _check_kind(opts: cluster.UpOptions, rec: ClusterRecord) -> None:
    if opts.baked != rec.baked:
        made = "baked" if rec.baked else "--unbaked"
        raise UserError(f"cluster {rec.cluster} was made {made}; this run asks for "
                        f"{'baked' if opts.baked else '--unbaked'} nodes",
                        fix="re-run with the same option (move to another image with `bakery roll --image`)")


def forget_day_two(state_dir: Path, name: str) -> None:
    """`down`: a removed cluster leaves no roll journal a new cluster of the same name would continue.
    The lock file stays: removing it while another run waits on it would let two runs hold "the" lock."""
    journal_path(state_dir, name).unlink(missing_ok=True)


def converge(opts: cluster.UpOptions, dry_run: bool, progress: Progress) -> tuple[fleet.Plan, list[tuple[str, float]]]:
    """`bakery up` on a cluster that exists: the plan to the counts asked for, and (unless dry_run) run it."""
    rec = cluster.load(opts.state_dir, opts.cluster)
    _check_kind(opts, rec)
    with exclusive(opts.state_dir, opts.cluster):  # a running roll is refused as running, not as stopped
        if journal_path(opts.state_dir, opts.cluster).exists():
            raise fleet.Refused(f"a roll of cluster {rec.cluster} stopped part way "
                                f"({journal_path(opts.state_dir, opts.cluster)}): changing the counts now could "
                                "retire its fresh nodes and keep the old ones",
                                fix="finish it with `bakery roll`, then re-run")
        driver = _driver(opts, rec)
        plan = fleet.plan_scale(driver.members(), opts.managers, opts.workers, opts.consul, driver.limit)
        if dry_run or not plan.changes:
            return plan, []
        timed = fleet.run_plan(driver, plan, progress, fleet.Timeouts(ready=opts.timeout, drain=opts.drain_timeout))
        return plan, timed


def swarm_formed(rec: ClusterRecord) -> bool:
    """Whether a manager of the cluster runs and answers `docker node ls`: its swarm exists."""
    for node in rec.nodes:
        if node.role in fleet.MANAGER_ROLES and not node.stopped and nodes.running(node):
            try:
                CliSwarm(node).nodes()
                return True
            except (BakeryError, ValueError):
                continue
    return False


def journal_path(state_dir: Path, name: str) -> Path:
    return record_path(state_dir, name).parent / JOURNAL


def resolve_image(cache_dir: Path, image: str | None) -> str:
    """--image: an image directory of the cache (its name, e.g. baked-1a2b3c) or a path; default the
    image `bakery bake --target local` made last."""
    if image is None:
        found = rootfs.current(cache_dir)
        if found is None:
            raise UserError(f"no baked image in {cache_dir} to roll to",
                            fix="bake one with `bakery bake --target local`, or name one with --image")
        return str(found.root)
    for candidate in (cache_dir / image / "rootfs", Path(image) / "rootfs", Path(image)):
        if is_baked_image(candidate):
            return str(candidate.resolve())
    raise UserError(f"--image {image}: not a baked image in {cache_dir} nor a baked image's directory "
                    f"(one has {rootfs.MARKER})",
                    fix=f"see `ls {cache_dir}` (baked-*), or bake one with `bakery bake --target local`")


def is_baked_image(root: Path) -> bool:
    """An image root `bakery bake --target local` made: its marker says so (never any directory tree)."""
    try:
        return root.is_dir() and isinstance(json.loads((root / rootfs.MARKER).read_text()), dict)
    except (OSError, ValueError):
        return False


def roll(opts: cluster.UpOptions, only: Sequence[str] | None, image: str | None, dry_run: bool,
         progress: Progress) -> tuple[fleet.Plan, list[tuple[str, float]], dict[str, Any]]:
    """Replace nodes one at a time (fleet.plan_roll), continuing an interrupted roll's journal."""
    rec = cluster.load(opts.state_dir, opts.cluster)
    opts = replace(opts, baked=rec.baked)
    path = journal_path(opts.state_dir, opts.cluster)
    with exclusive(opts.state_dir, opts.cluster):
        journal: dict[str, Any] = {}
        if path.exists():
            journal = fleet.read_journal(path, rec.cluster)
            if only and sorted(set(only)) != sorted(set(journal["only"])):
                raise UserError(f"a roll of cluster {rec.cluster} stopped part way ({path}); finish it first",
                                fix="re-run `bakery roll` without --nodes (it continues), or remove the journal")
            if image is not None and resolve_image(opts.cache_dir, image) != journal["image"]:
                raise UserError(f"a roll to {journal['image']} stopped part way ({path}); --image names another",
                                fix="re-run without --image to finish it, then roll again to the new image")
            if journal["image"] != rec.image and not is_baked_image(Path(journal["image"])):
                raise UserError(f"{path}: the roll's image {journal['image']} is not a baked image any more",
                                fix=f"remove {path} and roll again")
            progress(f"continuing the roll recorded in {path}")
        target = journal.get("image") or (resolve_image(opts.cache_dir, image) if image or rec.baked else rec.image)
        if not journal and image is None:
            _check_images(rec.image, target)
        driver = _driver(opts, rec, image=target)
        plan = fleet.plan_roll(driver.members(), only or journal.get("only"), driver.limit,
                               done=journal.get("pairs") or {})
        info = {"image": target, "journal": str(path)}
        if dry_run:
            return plan, [], info
        if not plan.changes:
            if journal:  # stopped after its last change: the roll is done
                if not journal["only"]:
                    rec.image = target
                driver.save()
                path.unlink()
            return plan, [], info
        # Pairs of earlier runs stay: a replacement made then is never rolled again by this roll.
        journal = fleet.write_journal(path, rec.cluster, target, only or journal.get("only") or [],
                                      fleet.merged_pairs(journal, plan))

        api_before = cluster.api_node(rec)  # the address the last `up` or `roll` told operators to use

        def on_step(change: fleet.Change) -> None:
            if change.kind != "retire" or change.node != api_before.name:
                return
            rest = replace(rec, nodes=[n for n in rec.nodes if n.name != change.node])
            if any(n.role in fleet.MANAGER_ROLES for n in rest.nodes):
                api, old = cluster.api_node(rest), cluster.address_for(api_before.name, api_before.role)
                progress(f"retiring {change.node}: its address ({old}), the one DOCKER_HOST was given, stops "
                         f"answering; reach the swarm at tcp://{cluster.address_for(api.name, api.role)}:2376 "
                         "from now on")

        timeouts = fleet.Timeouts(ready=opts.timeout, drain=opts.drain_timeout)
        timed = fleet.run_plan(driver, plan, progress, timeouts, on_step=on_step)
        if not journal["only"]:  # every node is on it now: the image new nodes boot from
            rec.image = target
        driver.save()
        path.unlink()
        return plan, timed, info


def _images_of(root: str) -> set[str]:
    try:
        marker = json.loads((Path(root) / rootfs.MARKER).read_text())
    except (OSError, ValueError):
        return set()
    images = marker.get("images") if isinstance(marker, dict) else None
    return {str(i.get("ref") if isinstance(i, dict) else i) for i in images or []}


def _check_images(current: str, target: str) -> None:
    """The default image (the last bake) must hold the application images the cluster's nodes have:
    a plain re-bake without --pre-pull-archive would otherwise roll every node to an image without them."""
    missing = sorted(_images_of(current) - _images_of(target))
    if missing and Path(current).resolve() != Path(target).resolve():
        raise fleet.Refused(
            f"the last baked image ({Path(target).parent.name}) lacks application images the cluster's "
            f"nodes have: {', '.join(missing)}",
            fix=f"bake with the same --pre-pull-archive options, or name the image with --image "
                f"(the cluster's own: --image {Path(current).parent.name})")


def where(state_dir: Path, name: str) -> list[str]:
    """Each node and what the swarm says of it: the "which node is where" of a stopped change."""
    rec = cluster.load(state_dir, name)
    rows, _ = cluster.status(rec)
    return [f"{r['name']} ({r['role']}): {'running' if r['running'] else 'stopped'}, {r['status']}"
            + (f", {r['availability']}" if r["availability"] else "")
            + (f", {r['manager_status']}" if r["manager_status"] else "") for r in rows]
