"""What a run created, and deleting it: newest first, servers waited for, problems listed (never raised).

Bake and up record every resource the moment the cloud returns its id, so a
failure or Ctrl-C one step later still deletes it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .cloud import Clock, Poll
from .errors import cloud_error

Progress = Callable[[str], None]
# Deletion order when kinds are mixed (cleanup by tag): dependants before what they depend on.
ORDER = ("image", "floating_ip", "load_balancer", "server", "port", "server_group", "keypair", "security_group")


@dataclass
class Ledger:
    items: list[tuple[str, str]] = field(default_factory=list)

    def add(self, kind: str, ident: str) -> None:
        self.items.append((kind, ident))

    def forget(self, kind: str, ident: str) -> None:
        self.items.remove((kind, ident))

    def sort_for_deletion(self) -> None:
        """Order so that delete_all (newest first) removes dependants first."""
        self.items.sort(key=lambda item: -ORDER.index(item[0]))


def quiet(action: Callable[[], object], clock: Clock | None = None, poll: float = 2.0) -> str | None:
    """Run a delete; a transient failure (a reset connection, a 503) is tried again (deletes are idempotent)."""
    clock = clock or Clock()
    retry = Poll()
    while True:
        try:
            retry.get(action)
        except Exception as exc:
            return str(cloud_error(exc, "deleting"))
        if not retry.again:
            return None
        clock.sleep(poll)


def delete_all(conn: Any, ledger: Ledger, progress: Progress, clock: Clock) -> list[str]:
    """Delete the ledger newest first; what could not be deleted stays in it and is returned."""
    problems: list[str] = []
    left: list[tuple[str, str]] = []
    for kind, ident in reversed(ledger.items):
        problem = _delete_one(conn, kind, ident, clock)
        if problem:
            problems.append(f"{kind} {ident}: {problem}")
            left.append((kind, ident))
        else:
            progress(f"deleted {kind.replace('_', ' ')} {ident}")
    ledger.items = list(reversed(left))
    return problems


def _delete_one(conn: Any, kind: str, ident: str, clock: Clock) -> str | None:
    from . import glance

    net = conn.network
    actions: dict[str, Callable[[], object]] = {
        "server": lambda: conn.compute.delete_server(ident, ignore_missing=True),
        "image": lambda: glance.delete(conn, ident),
        "security_group": lambda: net.delete_security_group(ident, ignore_missing=True),
        "port": lambda: net.delete_port(ident, ignore_missing=True),
        "floating_ip": lambda: net.delete_ip(ident, ignore_missing=True),
        "server_group": lambda: conn.compute.delete_server_group(ident, ignore_missing=True),
        "keypair": lambda: conn.compute.delete_keypair(ident, ignore_missing=True),
        # cascade: the listener, pool, members and health monitor go with it
        "load_balancer": lambda: conn.load_balancer.delete_load_balancer(ident, ignore_missing=True, cascade=True),
    }
    problem = quiet(actions[kind], clock)
    if problem is None and kind == "server":
        # A server's ports and security groups stay in use until it is really gone.
        problem = wait_gone(lambda: conn.compute.get_server(ident).status, f"server {ident}", clock)
    if problem is None and kind == "load_balancer":
        # Its VIP port and amphorae sit on the tenant network until Octavia has finished.
        problem = wait_gone(lambda: conn.load_balancer.get_load_balancer(ident).provisioning_status,
                            f"load balancer {ident}", clock)
    return problem


def wait_gone(status: Callable[[], str], what: str, clock: Clock, timeout: float = 300.0,
              poll: float = 2.0) -> str | None:
    from openstack import exceptions

    deadline = clock.now() + timeout
    retry = Poll()
    while clock.now() < deadline:
        try:
            if retry.get(status) == "DELETED":
                return None
        except exceptions.NotFoundException:
            return None
        except Exception as exc:
            return str(cloud_error(exc, f"waiting for {what} to go"))
        clock.sleep(poll)
    return f"still present after {timeout:.0f}s"
