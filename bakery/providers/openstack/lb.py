"""`bakery up --lb`: an Octavia load balancer in front of the managers' mutual-TLS Docker API.

TCP passthrough (the TLS session ends on dockerd, so client certificates keep
working): a TCP listener on the API port limited to the operator's CIDR
(`allowed_cidrs`), a pool of every manager with a TCP health monitor. The VIP
is known as soon as the load balancer is created, before any user-data is
rendered, so it goes into the certificates' SANs. Octavia refuses changes
while a load balancer is PENDING_*, so every step waits for ACTIVE. All of it
carries the cluster tag; `down` deletes the load balancer with cascade.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

from ...errors import CloudError
from .cloud import Clock, Poll
from .errors import cloud_error
from .ledger import Ledger

Progress = Callable[[str], None]
POLL = 2.0


def lb_name(cluster: str) -> str:
    return f"bakery-{cluster}-api"


def tagged(conn: Any, tag: str) -> list[Any]:
    try:
        return [lb for lb in conn.load_balancer.load_balancers(tags=tag) if tag in (lb.tags or [])]
    except Exception as exc:
        raise cloud_error(exc, "listing load balancers") from exc


def ensure(conn: Any, cluster: str, tag: str, subnet_id: str, ledger: Ledger, progress: Progress) -> Any:
    """The cluster's load balancer (created if missing); its vip_address is set from the start."""
    for lb in tagged(conn, tag):
        if lb.name == lb_name(cluster) and lb.provisioning_status not in ("DELETED", "PENDING_DELETE"):
            return lb
    try:
        lb = conn.load_balancer.create_load_balancer(
            name=lb_name(cluster), vip_subnet_id=subnet_id, tags=[tag],
            description=f"bakery cluster {cluster}: the managers' Docker API")
    except Exception as exc:
        raise cloud_error(exc, f"creating load balancer {lb_name(cluster)}") from exc
    ledger.add("load_balancer", lb.id)
    progress(f"load balancer {lb.name} ({lb.id}), VIP {lb.vip_address}")
    return lb


def wait_active(conn: Any, lb_id: str, timeout: float, clock: Clock) -> None:
    deadline = clock.now() + timeout
    retry = Poll()
    while True:
        try:
            status = retry.get(lambda: conn.load_balancer.get_load_balancer(lb_id).provisioning_status)
        except Exception as exc:
            raise cloud_error(exc, f"watching load balancer {lb_id}") from exc
        if retry.again:
            clock.sleep(POLL)
            continue
        if status == "ACTIVE":
            return
        if status == "ERROR":
            raise CloudError(f"load balancer {lb_id} went to ERROR (see `openstack loadbalancer show {lb_id}`; "
                             "`bakery down` removes it)")
        if clock.now() >= deadline:
            raise CloudError(f"load balancer {lb_id} not ACTIVE within {timeout:.0f}s (status {status})")
        clock.sleep(POLL)


def ensure_api(conn: Any, lb: Any, cluster: str, tag: str, port: int, operator_cidr: str, members: Mapping[str, str],
               subnet_id: str, timeout: float, clock: Clock, added: list[str] | None = None) -> None:
    """Listener, pool, health monitor and one member per manager (name -> fixed IP), whatever is missing
    (each appended to `added` when given)."""
    made = added if added is not None else []
    lbs = conn.load_balancer
    name = lb_name(cluster)

    def step(doing: str, action: Callable[[], Any]) -> Any:
        wait_active(conn, lb.id, timeout, clock)
        if not doing.startswith("listing"):
            made.append(f"{doing.removeprefix('creating the ').removeprefix('adding ')} of load balancer {lb.name}")
        try:
            return action()
        except Exception as exc:
            raise cloud_error(exc, f"{doing} of load balancer {lb.id}") from exc

    listener = _find(lbs.listeners, tag, load_balancer_id=lb.id) or step("creating the listener", lambda: (
        lbs.create_listener(name=name, load_balancer_id=lb.id, protocol="TCP", protocol_port=port,
                            allowed_cidrs=[operator_cidr], tags=[tag])))
    if list(getattr(listener, "allowed_cidrs", None) or [operator_cidr]) != [operator_cidr]:  # --operator-cidr changed
        step(f"setting the listener's allowed CIDR to {operator_cidr}",
             lambda: lbs.update_listener(listener, allowed_cidrs=[operator_cidr]))
    pool = _find(lbs.pools, tag, loadbalancer_id=lb.id)
    if pool is not None and not getattr(pool, "listeners", None):  # its listener was deleted: the new one's
        step("attaching the pool to the listener", lambda: lbs.update_listener(listener, default_pool_id=pool.id))
    pool = pool or step("creating the pool", lambda: (
        lbs.create_pool(name=name, listener_id=listener.id, protocol="TCP", lb_algorithm="ROUND_ROBIN",
                        tags=[tag])))
    if not _find(lbs.health_monitors, tag, pool_id=pool.id):
        step("creating the health monitor", lambda: lbs.create_health_monitor(
            name=name, pool_id=pool.id, type="TCP", delay=5, timeout=5, max_retries=3, tags=[tag]))
    have = {m.address for m in step("listing the pool's members", lambda: list(lbs.members(pool.id)))}
    for member, address in sorted(members.items()):
        if address not in have:
            step(f"adding member {member}", partial(lbs.create_member, pool.id, name=member, address=address,
                                                    protocol_port=port, subnet_id=subnet_id, tags=[tag]))
    wait_active(conn, lb.id, timeout, clock)


def the_balancer(conn: Any, cluster: str, tag: str) -> Any:
    """The cluster's load balancer, or None (no --lb, or it is being deleted)."""
    return next((b for b in tagged(conn, tag) if b.name == lb_name(cluster)
                 and b.provisioning_status not in ("DELETED", "PENDING_DELETE")), None)


def remove_member(conn: Any, lb: Any, tag: str, address: str, timeout: float, clock: Clock) -> list[str]:
    """Take every pool member at `address` out (a manager about to be deleted); the names removed."""
    lbs = conn.load_balancer
    pool = _find(lbs.pools, tag, loadbalancer_id=lb.id)
    if pool is None:
        return []
    removed = []
    try:
        wait_active(conn, lb.id, timeout, clock)
        for member in [m for m in lbs.members(pool.id) if m.address == address]:
            wait_active(conn, lb.id, timeout, clock)
            lbs.delete_member(member, pool.id)
            removed.append(str(member.name or member.address))
        wait_active(conn, lb.id, timeout, clock)
    except CloudError:
        raise
    except Exception as exc:
        raise cloud_error(exc, f"removing the member at {address} of load balancer {lb.id}") from exc
    return removed


def _find(lister: Callable[..., Any], tag: str, **query: str) -> Any:
    try:
        found = [r for r in lister(tags=tag, **query) if tag in (r.tags or [])]
    except Exception as exc:
        raise cloud_error(exc, "listing load balancer parts") from exc
    return found[0] if found else None
