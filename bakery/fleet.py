"""Day two: converge a live swarm to new node counts, and replace its nodes, without losing quorum or a task.

Provider-agnostic: a provider hands in a `Driver` (its nodes as `Member`s, boot, Ready, the swarm's
API on some manager, leave, delete); this module decides the changes and their order, checks them
against raft's majority rule before anything is done, and runs them one node at a time
(docs/DAY-TWO.md has the rules and the reasons).

- A node that goes is drained (and its tasks seen running elsewhere), demoted if a manager, leaves
  the swarm, is removed from the node list, and only then deleted.
- A replacement is booted and Ready before the node it replaces is touched: a broken image never
  costs a node.
- The requested manager count is odd. Managers are added or retired one at a time; each step is
  simulated first: a plan under which, at some step, fewer than a majority of the managers would be
  reachable is refused, naming the step and the counts.
- What goes first when shrinking: nodes already down, then drained ones, then the highest numbered;
  the seed last. A roll replaces workers first (the canary: a bad image shows where it costs least),
  then managers, the seed last (the address operators point DOCKER_HOST at moves last).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from .errors import EXIT_FAILED, BakeryError, UserError

Progress = Callable[[str], None]
MANAGER_ROLES = ("seed", "manager")
GHOST = "ghost"
OPENSTACK_LIMIT = 99  # the highest node number on OpenStack (server names CLUSTER-manager-99 fit a hostname)


class Refused(UserError):
    """The cluster's state forbids the change (no quorum, no manager answers, another run holds it):
    exit 1, with the fix; the input itself was fine."""

    exit_code = EXIT_FAILED


@dataclass(frozen=True)
class Member:
    """A node as the provider and the swarm see it now."""

    name: str
    role: str  # seed / manager / worker / consul
    running: bool  # the machine runs (the provider's view)
    in_swarm: bool = False  # the swarm lists it (by hostname)
    status: str = "Unknown"  # the swarm's: Ready / Down / Unknown
    availability: str = ""  # Active / Pause / Drain
    manager_status: str = ""  # Leader / Reachable / Unreachable; "" for workers
    node_id: str = ""  # the swarm's ID of the entry shown (a ghost's, for the fix)

    @property
    def ghost(self) -> bool:
        """A manager entry of the swarm that no node of the cluster stands for: a deleted machine the
        swarm still counts, or a second, stale entry of a hostname. It counts toward raft's majority."""
        return self.role == GHOST

    @property
    def manager(self) -> bool:
        """A manager by the provider's record (its role, certificate and name)."""
        return self.role in MANAGER_ROLES

    @property
    def swarm_manager(self) -> bool:
        """A manager in the swarm's own view: what raft's majority counts."""
        return self.in_swarm and bool(self.manager_status)

    @property
    def demoted(self) -> bool:
        """A manager by record that the swarm lists as a worker: a retire that stopped after its demote."""
        return self.manager and self.in_swarm and not self.manager_status

    @property
    def left(self) -> bool:
        """Drained, and it left the swarm while it still runs: a retire that stopped after its leave."""
        return self.running and self.in_swarm and self.status == "Down" and self.availability == "Drain"

    @property
    def alive(self) -> bool:
        return self.running and self.status != "Down"

    @property
    def reachable(self) -> bool:
        return self.running and self.manager_status in ("Leader", "Reachable")


def members_of(nodes: Sequence[tuple[str, str, bool]], listed: Sequence[dict[str, str]] | None) -> list[Member]:
    """The cluster's nodes (name, role, running) as Members, with the swarm's entries (`docker node ls`
    rows) matched by hostname: the Ready one when a hostname is listed twice. Every manager entry left
    unmatched comes back as a ghost Member, so that quorum is counted over what raft counts.
    `listed` None: no manager answered (each manager then counts as unreachable)."""
    out: list[Member] = []
    used: set[str] = set()
    for name, role, running in nodes:
        mine = [e for e in listed or [] if e.get("Hostname") == name]
        best = next((e for e in mine if e.get("Status") == "Ready"), mine[0] if mine else {})
        if listed is None and role in MANAGER_ROLES:
            best = {"Status": "Unknown", "ManagerStatus": "Unreachable"}
        if best.get("ID"):
            used.add(best["ID"])
        out.append(Member(name=name, role=role, running=running, in_swarm=bool(best),
                          status=best.get("Status", "Unknown"), availability=best.get("Availability", ""),
                          manager_status=best.get("ManagerStatus", ""), node_id=best.get("ID", "")))
    for e in listed or []:
        if e.get("ManagerStatus") and e.get("ID") not in used:
            # running: it answers (a manager joined by hand counts as reachable, a gone machine does not)
            out.append(Member(name=e.get("Hostname", "?"), role=GHOST, running=e.get("Status") == "Ready",
                              in_swarm=True,
                              status=e.get("Status", "Unknown"), availability=e.get("Availability", ""),
                              manager_status=e["ManagerStatus"], node_id=e.get("ID", "")))
    return out


def forget(swarm: Swarm, name: str, listed: Sequence[dict[str, str]]) -> None:
    """Before a new machine named `name` boots: remove what the swarm still lists under that hostname (a
    machine that is gone; one that stopped a moment ago may still show Ready), so no node is listed twice.
    A manager entry is demoted first: the swarm refuses to remove a manager, even with --force. Best
    effort: what stays shows as a ghost in the next plan."""
    for entry in listed:
        if entry.get("Hostname") != name:
            continue
        try:
            if entry.get("ManagerStatus"):
                swarm.demote(entry["ID"])
            swarm.remove(entry["ID"], force=True)
        except BakeryError:
            pass


def _ghost_note(members: Sequence[Member]) -> list[str]:
    ghosts = [m for m in members if m.ghost]
    if not ghosts:
        return []
    listed = ", ".join(f"{m.name} {m.node_id[:12]} ({m.manager_status})" for m in ghosts)
    ids = " ".join(m.node_id[:12] for m in ghosts)
    return [f"the swarm lists managers that no node of the cluster stands for: {listed}; they count toward the "
            f"majority. If their machines are gone for good: docker node demote {ids} && docker node rm --force "
            f"{ids}"]


@dataclass(frozen=True)
class Change:
    """One node in or out. `replaces`: the node this one takes over from (a roll); it is retired right
    after this one is Ready."""

    kind: str  # "add" or "retire"
    node: str
    role: str
    replaces: str | None = None

    def describe(self) -> str:
        if self.kind == "add" and self.replaces:
            return f"boot {self.node} ({self.role}) to replace {self.replaces}, and wait until Ready"
        if self.kind == "add" and self.role == "consul":
            return f"boot {self.node} (consul, not a swarm member)"
        if self.kind == "add":
            return f"boot {self.node} ({self.role}) and wait until Ready"
        if self.role in MANAGER_ROLES:
            return (f"retire {self.node} ({self.role}): drain, wait for its tasks elsewhere, demote, leave, "
                    "remove, delete")
        if self.role == "consul":
            return f"delete {self.node} (consul, not a swarm member)"
        return f"retire {self.node} ({self.role}): drain, wait for its tasks elsewhere, leave, remove, delete"


@dataclass
class Plan:
    changes: list[Change] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def lines(self, describe: Callable[[Change], str] = Change.describe) -> list[str]:
        """Numbered; `describe`: a provider's wording of a change (its own names, what it can and cannot do)."""
        if not self.changes:
            return ["nothing to change"]
        return [f"{i}. {describe(c)}" for i, c in enumerate(self.changes, 1)]


def _index(name: str) -> int:
    tail = name.rsplit("-", 1)[-1]
    return int(tail) if tail.isdigit() else 0


def next_name(role: str, taken: set[str], limit: int) -> str:
    """The lowest free `role-N` (a seed's replacement is a manager: only a new swarm has a seed)."""
    base = "manager" if role in MANAGER_ROLES else role
    if base == "consul":
        if "consul" not in taken:
            return "consul"
        base = "consul"
    for i in range(1, limit + 1):
        if f"{base}-{i}" not in taken:
            return f"{base}-{i}"
    raise UserError(f"no free {base} name: {base}-1 to {base}-{limit} are all taken",
                    fix="retire nodes first, or roll fewer at once")


def _retire_order(members: Sequence[Member]) -> list[Member]:
    """Which to retire first: down (the seed too), drained, then highest numbered; a live seed last."""
    def key(m: Member) -> tuple[bool, bool, bool, int]:
        return (m.alive, m.role == "seed", m.availability != "Drain", -_index(m.name))

    return sorted(members, key=key)


def _majority(managers: int) -> int:
    return managers // 2 + 1


def quorum_now(members: Sequence[Member]) -> tuple[int, int]:
    """(managers the swarm lists, managers reachable), in the swarm's view (never the record's roles)."""
    listed = [m for m in members if m.swarm_manager]
    return len(listed), sum(1 for m in listed if m.reachable)


def check_quorum(members: Sequence[Member], changes: Sequence[Change]) -> None:
    """Simulate the changes: refuse if at any step fewer than a majority of the managers are reachable."""
    listed, reachable = quorum_now(members)
    if all(c.role == "consul" for c in changes):  # consul is no swarm member
        return
    ours = [m for m in members if m.manager]
    if ours and not any(m.swarm_manager for m in ours):
        raise Refused(
            f"the swarm that answered lists none of the cluster's managers ({', '.join(m.name for m in ours)}): "
            "it is another swarm, so nothing it says can tell which nodes are safe to drain or delete",
            fix="see `docker node ls` on the managers (one may have left the swarm or formed a new one); "
                "bring them back into one swarm, then re-run")
    if listed and reachable < _majority(listed):
        unreachable = [m.name for m in members if m.swarm_manager and not m.reachable]
        raise Refused(
            f"the swarm has no quorum: {reachable} of {listed} managers reachable, a majority is "
            f"{_majority(listed)} (unreachable: {', '.join(unreachable)}); no node can join or leave",
            fix="bring the unreachable managers back; if they are lost for good, run `docker swarm init "
                "--force-new-cluster` on a surviving manager, then re-run")
    by_name = {m.name: m for m in members if not m.ghost}
    for step, change in enumerate(changes, 1):
        gone = by_name.get(change.node)
        # A worker by record that the swarm lists as a manager (promoted by hand) counts as one.
        if change.role not in MANAGER_ROLES and not (change.kind == "retire" and gone and gone.swarm_manager):
            continue
        if change.kind == "add":
            listed, reachable = listed + 1, reachable + 1
        elif gone is None or gone.swarm_manager:
            listed -= 1
            if gone is None or gone.reachable:
                reachable -= 1
        if listed < 1 or reachable < _majority(listed):
            raise Refused(
                f"refused: step {step} ({change.describe()}) would leave {reachable} of {listed} managers "
                f"reachable, fewer than a majority ({_majority(max(listed, 1))})",
                fix="bring unreachable managers back first, or change fewer managers at once")


def kept_managers(have: int, cluster: str) -> int:
    """The manager count when `--managers` is not given: what the cluster has, if that is a count raft can
    run with (an even count means a run stopped part way, or a change by hand: which way is the user's)."""
    if have % 2 == 1:
        return have
    ways = f"--managers {have - 1} or --managers {have + 1}" if have else "--managers 3 (or 1)"
    raise UserError(f"cluster {cluster} has {have} managers now, an even number (a run that stopped part way, or a "
                    "change by hand), and --managers was not given", fix=f"say which way to converge: {ways}")


def plan_scale(members: Sequence[Member], managers: int, workers: int, consul: bool, limit: int) -> Plan:
    """The changes that take the cluster from `members` to the counts asked for."""
    if managers < 1 or managers % 2 == 0:
        raise UserError(f"--managers {managers}: a swarm needs an odd number of managers for raft quorum",
                        fix="use 1, 3, 5 or 7")
    plan = Plan()
    taken = {m.name for m in members}
    # A manager the swarm already lists as a worker, or a node that left while it runs: a retire that
    # stopped part way. Finish it (and count the node no more).
    finishing = [m for m in members if (m.demoted or m.left) and not m.ghost]
    rest = [m for m in members if not (m.demoted or m.left or m.ghost)]
    have_m = [m for m in rest if m.manager]
    have_w = [m for m in rest if m.role == "worker"]
    have_c = [m for m in rest if m.role == "consul"]
    adds: list[Change] = []
    retires: list[Change] = [Change("retire", m.name, m.role) for m in finishing]
    for _ in range(managers - len(have_m)):
        name = next_name("manager", taken, limit)
        taken.add(name)
        adds.append(Change("add", name, "manager"))
    for m in _retire_order(have_m)[: max(0, len(have_m) - managers)]:
        retires.append(Change("retire", m.name, m.role))
    for _ in range(workers - len(have_w)):
        name = next_name("worker", taken, limit)
        taken.add(name)
        adds.append(Change("add", name, "worker"))
    for m in _retire_order(have_w)[: max(0, len(have_w) - workers)]:
        retires.append(Change("retire", m.name, m.role))
    if consul and not have_c:
        adds.append(Change("add", "consul", "consul"))
    if not consul:
        retires += [Change("retire", m.name, "consul") for m in have_c]
    # Managers first when growing (more of them before more work), workers first when shrinking
    # (tasks move while every manager is still there); unreachable managers go before reachable ones.
    retires.sort(key=lambda c: (c.node not in {m.name for m in finishing}, c.role in MANAGER_ROLES))
    going = {c.node for c in retires}
    # Booted by a run that stopped before they joined (running or not): boot again if needed, wait for
    # them (a node the swarm once listed and that died stays as it is: see the note below).
    answered = any(m.reachable for m in members)  # the swarm was asked, so "not listed" means it
    joining = [Change("add", m.name, m.role) for m in members
               if answered and not m.in_swarm and m.role not in ("consul", GHOST) and m.name not in going]
    joined = {c.node for c in joining}
    plan.changes = joining + adds + retires
    down = [m.name for m in members if m.swarm_manager and not m.reachable and not m.ghost]
    if down:
        plan.notes.append(f"unreachable managers: {', '.join(down)} (they count toward the majority until retired)")
    drained = [m.name for m in rest if m.availability == "Drain" and m.name not in {c.node for c in retires}]
    for name in drained:
        plan.notes.append(f"{name} is drained and kept: no task goes there until `docker node update "
                          f"--availability active {name}` (or it is retired first when you shrink)")
    if managers == 1 and len(have_m) > 1:
        plan.notes.append("one manager left: the swarm tolerates no manager failure (3 tolerate one)")
    plan.notes += _ghost_note(members)
    dead = [m.name for m in members if not m.running and not m.ghost and m.name not in going and m.name not in joined]
    if dead:
        plan.notes.append(f"not running, and kept: {', '.join(dead)} (they count as nodes; `bakery roll --nodes "
                          f"{' '.join(dead)}` replaces them)")
    check_quorum(members, plan.changes)
    return plan


def plan_roll(members: Sequence[Member], only: Sequence[str] | None, limit: int,
              done: dict[str, str] | None = None) -> Plan:
    """Replace each node (or only those named) with a fresh one: workers first, then managers, the seed last.
    `done`: replacements already chosen by an interrupted roll (old name -> new name), kept."""
    by_name = {m.name: m for m in members if not m.ghost}
    done = dict(done or {})
    if only:
        # A name the interrupted roll already replaced and deleted is finished, not unknown.
        unknown = [n for n in only if n not in by_name and n not in done]
        if unknown:
            raise UserError(f"no node {', '.join(map(repr, unknown))} in this cluster",
                            fix=f"its nodes: {', '.join(sorted(by_name))}")
        consul = [n for n in only if by_name.get(n) and by_name[n].role == "consul"]
        if consul:
            raise UserError(f"{consul[0]} is the consul server: a roll does not move its data, so it is not rolled",
                            fix="roll the swarm's nodes; replace consul by hand (docs/DAY-TWO.md)")
    chosen = [m for m in members if (not only or m.name in only) and m.name not in done.values()
              and m.role not in ("consul", GHOST)]
    # Workers first; then managers, lost ones first (the majority is back to full sooner), the seed last.
    order = sorted(chosen, key=lambda m: (m.manager, m.alive, m.role == "seed", _index(m.name)))
    taken = {m.name for m in members} | set(done.values())  # a ghost's name too: booting it would forget it
    plan = Plan()
    for m in order:
        new = done.get(m.name)
        if new is None:
            new = next_name(m.role, taken, limit)
            taken.add(new)
        role = "manager" if m.manager else m.role
        plan.changes += [Change("add", new, role, replaces=m.name), Change("retire", m.name, m.role)]
    if not only and any(m.role == "consul" for m in members):
        plan.notes.append("consul is not rolled (its data does not move with it)")
    plan.notes += _ghost_note(members)
    check_quorum(members, plan.changes)
    return plan


# --- the journal of a roll (roll.json): which new node replaces which, so a re-run continues ---------

NODE_NAME = re.compile(r"(seed|(manager|worker)-[1-9][0-9]{0,2})\Z")
NEW_NAME = re.compile(r"(manager|worker)-[1-9][0-9]{0,2}\Z")  # a replacement is never a seed


def read_journal(path: Path, cluster: str) -> dict[str, Any]:
    """The journal of a roll that stopped, checked: a damaged one, or one of another cluster, is named with
    the fix, never half-read. Returns {"image", "only", "pairs"}."""
    fix = f"see where the nodes are with `bakery nodes --cluster {cluster}`, remove {path}, and roll again"
    try:
        data = json.loads(path.read_text())
        pairs, only, image = data["pairs"], data.get("only") or [], data["image"]
        if not (isinstance(pairs, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in pairs.items())
                and isinstance(only, list) and all(isinstance(n, str) for n in only) and isinstance(image, str)):
            raise ValueError("unexpected types")
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise UserError(f"{path} is not the journal of a roll bakery can read ({exc.__class__.__name__}: "
                        f"{str(exc)[:100]})", fix=fix) from None
    if data.get("cluster", cluster) != cluster:
        raise UserError(f"{path} is the journal of a roll of cluster {data['cluster']!r}, not {cluster!r}", fix=fix)
    bad = [f"{old} -> {new}" for old, new in pairs.items() if not NODE_NAME.match(old) or not NEW_NAME.match(new)
           or new in pairs or new.split("-")[0] != ("manager" if old == "seed" else old.split("-")[0])]
    if bad or len(set(pairs.values())) != len(pairs):
        raise UserError(f"{path}: replacements bakery never chooses ({', '.join(bad) or 'one node for two'})", fix=fix)
    return {"pairs": pairs, "only": only, "image": image}


def write_journal(path: Path, cluster: str, image: str, only: Sequence[str], pairs: dict[str, str]) -> dict[str, Any]:
    """Written 0600 before the first change. `pairs`: the earlier runs' and this plan's, merged by the caller
    (a replacement made by an earlier run is never rolled again by this roll)."""
    from .state import write_private

    journal = {"cluster": cluster, "image": image, "only": sorted(set(only)), "pairs": dict(pairs)}
    write_private(path, (json.dumps(journal, indent=2, sort_keys=True) + "\n").encode())
    return journal


def merged_pairs(journal: dict[str, Any], plan: Plan) -> dict[str, str]:
    return {**(journal.get("pairs") or {}), **{c.replaces: c.node for c in plan.changes if c.replaces}}


# --- running a plan ---------------------------------------------------------------------------


class Swarm(Protocol):
    """The swarm's API on a manager (not the node being retired)."""

    def nodes(self) -> list[dict[str, str]]: ...  # ID, Hostname, Status, Availability, ManagerStatus
    def drain(self, node_id: str) -> None: ...
    def tasks(self, node_id: str) -> list[tuple[str, str]]: ...  # (service, current state): every task the node
    # still has, whatever its desired state (a draining task is desired Shutdown and still Running)
    def desired(self) -> dict[str, int]: ...  # replicated service -> replicas wanted
    def running(self, service: str) -> int: ...  # tasks of the service Running now (desired running too)
    def demote(self, node_id: str) -> None: ...
    def remove(self, node_id: str, force: bool) -> None: ...


class Driver(Protocol):
    limit: int

    def members(self) -> list[Member]: ...
    def boot(self, name: str, role: str, progress: Progress) -> None: ...
    def ready(self, names: Sequence[str]) -> dict[str, bool]: ...
    def swarm(self, avoid: Sequence[str] = ()) -> Swarm: ...
    def leave(self, name: str) -> bool: ...  # `docker swarm leave` on the node; False when it is not running
    def running(self, name: str) -> bool: ...
    def delete(self, name: str) -> None: ...


class Stopped(BakeryError):
    """A change could not finish: what was done is kept, a re-run continues from there."""


@dataclass(frozen=True)
class Timeouts:
    ready: float = 600
    drain: float = 300
    step: float = 60


def run_plan(driver: Driver, plan: Plan, progress: Progress, timeouts: Timeouts = Timeouts(),
             on_step: Callable[[Change], None] | None = None) -> list[tuple[str, float]]:
    """Run the changes in order; workers that are only added (no replacement) boot together.
    Returns (node, seconds) for each change."""
    timed: list[tuple[str, float]] = []
    pending: list[Change] = []
    # A node that ran when the plan was made and stops before bakery stops it died under us: stop there
    # (the swarm reschedules its tasks); a re-run retires it as the down node it is.
    alive = {c.node for c in plan.changes if c.kind == "retire" and driver.running(c.node)}

    def flush() -> None:
        if not pending:
            return
        start = time.monotonic()
        for c in pending:
            if not driver.running(c.node):
                driver.boot(c.node, c.role, progress)
        wait_ready(driver, [c.node for c in pending], timeouts.ready, progress)
        timed.extend((c.node, time.monotonic() - start) for c in pending)
        pending.clear()

    for change in plan.changes:
        if change.kind == "add" and change.role == "worker" and not change.replaces:
            pending.append(change)
            continue
        flush()
        if on_step is not None:
            on_step(change)
        start = time.monotonic()
        if change.kind == "add":
            if not driver.running(change.node):
                driver.boot(change.node, change.role, progress)
            if change.role != "consul":
                wait_ready(driver, [change.node], timeouts.ready, progress)
        else:
            if change.node in alive and not driver.running(change.node):
                raise Stopped(f"{change.node} stopped (not by bakery) before it was retired; the swarm "
                              "reschedules its tasks; re-run to continue (it is then retired as a down node)")
            retire(driver, change, progress, timeouts)
        timed.append((change.node, time.monotonic() - start))
    flush()
    return timed


def wait_ready(driver: Driver, names: Sequence[str], timeout: float, progress: Progress) -> None:
    deadline = time.monotonic() + timeout
    last = ""
    while True:
        ready = driver.ready(names)
        done = sorted(n for n, ok in ready.items() if ok)
        line = f"{len(done)}/{len(ready)} Ready" + (f": {', '.join(done)}" if done else "")
        if line != last:
            progress(line)
            last = line
        if all(ready.values()):
            return
        for name in names:
            if not driver.running(name):
                raise Stopped(f"{name} stopped while booting; no node was retired for it")
        if time.monotonic() > deadline:
            missing = ", ".join(n for n, ok in ready.items() if not ok)
            raise Stopped(f"{missing} not Ready after {timeout:.0f}s; no node was retired for it")
        time.sleep(2)


def _swarm_entry(swarm: Swarm, name: str) -> list[dict[str, str]]:
    return [n for n in swarm.nodes() if n["Hostname"] == name]


def _until(check: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():
                return True
        except BakeryError:
            pass
        if time.monotonic() > deadline:
            return False
        time.sleep(1)


def retire(driver: Driver, change: Change, progress: Progress, timeouts: Timeouts) -> None:
    """Drain, wait for the tasks elsewhere, demote, leave, remove, delete. Each step is skipped when
    already done, so a re-run after a stop continues where it stopped."""
    name = change.node
    if change.role != "consul":
        swarm = driver.swarm(avoid=[name])
        entries = _swarm_entry(swarm, name)
        # The hostname listed twice (the machine left and joined again): its live entry is drained and
        # leaves; the stale ones are only demoted and removed (draining one says nothing of the machine).
        live = next((e for e in entries if e["Status"] == "Ready"), entries[0] if entries else None)
        stale = [e for e in entries if e is not live]
        if live is not None:
            _leave_swarm(driver, name, live, progress, timeouts)
        if stale:
            progress(f"{name}: removing its stale swarm entries ({', '.join(e['ID'][:12] for e in stale)})")
            forget(driver.swarm(avoid=[name]), name, stale)
    progress(f"{name}: deleting")
    driver.delete(name)


def _leave_swarm(driver: Driver, name: str, entry: dict[str, str], progress: Progress, timeouts: Timeouts) -> None:
    node_id = entry["ID"]

    def mine() -> list[dict[str, str]]:
        return [n for n in driver.swarm(avoid=[name]).nodes() if n["ID"] == node_id]

    alive = driver.running(name) and entry["Status"] == "Ready"
    swarm = driver.swarm(avoid=[name])
    # The services to see at full strength: those with a task there (a node that is drained already, or
    # dead, by its task history: its tasks' state there is stale or gone).
    tasks = swarm.tasks(node_id)
    fresh = alive and entry["Availability"] != "Drain"
    held = {service for service, state in tasks if state.startswith("Running") or not fresh}
    if entry["Availability"] != "Drain":
        if alive:  # never start a second dip: an earlier change's tasks are all Running again first
            _wait_drained(driver, swarm, name, node_id, held, progress, timeouts.drain, on_node=False, after=False)
        progress(f"{name}: drain")
        swarm.drain(node_id)
    if alive:
        _wait_drained(driver, driver.swarm(avoid=[name]), name, node_id, held, progress, timeouts.drain)
    else:  # its tasks are gone with it: give the swarm a moment to place them, never stop for them
        try:
            _wait_drained(driver, driver.swarm(avoid=[name]), name, node_id, held, progress,
                          min(timeouts.drain, 60), on_node=False, after=True)
        except Stopped as exc:
            progress(f"{name}: not running, so retired anyway: {exc}")
    if entry["ManagerStatus"]:
        progress(f"{name}: demote")
        driver.swarm(avoid=[name]).demote(node_id)
        if not _until(lambda: not any(n["ManagerStatus"] for n in mine()), timeouts.step):
            raise Stopped(f"{name} is drained but still a manager after {timeouts.step:.0f}s; re-run to continue")
    if driver.running(name):
        progress(f"{name}: leave the swarm, and wait until the managers see it Down")
        driver.leave(name)
    down = _until(lambda: all(n["Status"] == "Down" for n in mine()), timeouts.step)
    progress(f"{name}: remove from the swarm")
    driver.swarm(avoid=[name]).remove(node_id, force=not down)


def _wait_drained(driver: Driver, swarm: Swarm, name: str, node_id: str, held: set[str], progress: Progress,
                  timeout: float, on_node: bool = True, after: bool = True) -> None:
    """Until every replicated service in `held` has all its replicas Running (from `docker service ps`,
    not `service ls`, which counts a draining task as running), and with `on_node` no task runs on the
    node any more (then a node that stops meanwhile stops the retirement)."""
    deadline = time.monotonic() + timeout
    said = ""
    while True:
        if on_node and not driver.running(name):
            raise Stopped(f"{name} stopped while it was being drained; re-run to continue (it will be removed)")
        left = sorted({s for s, state in swarm.tasks(node_id) if state.startswith(("Running", "Starting"))}) \
            if on_node else []
        wanted = swarm.desired()
        short = {s: (swarm.running(s), wanted[s]) for s in sorted(held) if s in wanted}
        short = {s: rd for s, rd in short.items() if rd[0] < rd[1]}
        if not left and not short:
            return
        line = (f"{name}: waiting for its tasks to stop ({', '.join(left)})" if left else
                f"{name}: waiting for {'its tasks elsewhere' if after else 'full strength before the drain'}: " +
                ", ".join(f"{s} {r}/{d} running" for s, (r, d) in short.items()))
        if line != said:
            progress(line)
            said = line
        if time.monotonic() > deadline and not after:
            raise Stopped(f"{name} was not drained: after {timeout:.0f}s, before its drain, "
                          f"{line.split(': ', 2)[2]} (a service short already would lose more); see `docker "
                          "service ps`, then re-run")
        if time.monotonic() > deadline:
            raise Stopped(f"{name} is drained but after {timeout:.0f}s {line.split(': ', 1)[1]}: its tasks "
                          "cannot be placed elsewhere (constraints, resources?); see `docker service ps`. "
                          f"Re-run to continue, or undrain it: docker node update --availability active {name}")
        time.sleep(1)


REPLICAS = re.compile(r"(\d+)/(\d+)")


def parse_replicas(text: str) -> tuple[int, int] | None:
    """`docker service ls`'s REPLICAS column: "3/4" or "3/4 (max 1 per node)"."""
    found = REPLICAS.match(text.strip())
    return (int(found.group(1)), int(found.group(2))) if found else None
