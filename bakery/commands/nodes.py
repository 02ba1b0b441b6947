"""List a cluster's nodes: role, address, whether it runs, and what the swarm says of it.

  bakery nodes [--cluster NAME] [--output json]

For each node `bakery up` booted, as `docker node ls` on a running manager
(asked through its engine, inside the node) reports it: STATUS
(Ready/Down/Unknown), AVAILABILITY (Active/Pause/Drain) and MANAGER STATUS
(Leader/Reachable/Unreachable, empty for workers). A node that is down is
still listed: RUNNING no, and Down once the managers have noticed (until then
they still say Ready). When no manager answers, every STATUS is Unknown, a
line on stderr says so, and the exit code is still 0.

--output json: {"cluster", "answered_by", "nodes"}: answered_by is the
manager whose engine listed the swarm (null if none answered); each node has
name, role (seed/manager/worker/consul), address, running (true/false),
status ("Ready", "Down", "Unknown", "Disconnected"; "Unknown" too when the
swarm does not list it), availability ("Active", "Pause", "Drain"; "" when
unknown) and manager_status ("Leader", "Reachable", "Unreachable"; "" for a
worker or when unknown). A consul node, which is not in the swarm, has ""
for the last three.

Certificates: each row has cert_not_after and cert_days_left, the earliest end
of the node's server and join certificates (null when bakery holds none for
it): on the local provider those the node runs with, read from its root (after
`bakery certs --renew` they stay the old ones until the node is replaced);
on OpenStack those the state directory issued. A node whose certificate expires within 30 days, or has expired, gets a
WARNING line on stderr with the fix (a roll: the replacement gets a new one);
the exit code stays 0. `bakery certs` lists every certificate.

--provider openstack lists the cluster's servers: name, role, address,
status (Nova's, e.g. ACTIVE), swarm (ready/down/unknown through the seed's
mutual-TLS API, "-" when it does not answer) and manager.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ..errors import EXIT_OK
from ..output import print_table
from .common import cluster_name, refuse_local_for_openstack
from .up import add_cluster_arguments


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_cluster_arguments(p)


def cert_notes(cluster: str, state_dir: Any, rows: list[dict[str, Any]], provider: str,
               tls_dirs: dict[str, Any] | None = None) -> list[str]:
    """Add each node's earliest certificate end to its row; the warnings for those ending within 30 days.
    `tls_dirs`: where a node's own certificates are (local nodes): what it runs with wins over what the
    state directory issued (a `certs --renew` not yet rolled out)."""
    import datetime as dt

    from .. import certs, state

    cdir = state.cluster_dir(cluster, state_dir)
    ends: dict[str, Any] = {}
    found = certs.inventory(cdir) if (cdir / "nodes").is_dir() else []
    running = {name: certs.on_node(name, folder) for name, folder in (tls_dirs or {}).items()}
    found = [c for c in found if not running.get(c.node or "")] + [c for cs in running.values() for c in cs]
    for cert in found:
        if cert.node and (cert.node not in ends or cert.not_after < ends[cert.node].not_after):
            ends[cert.node] = cert
    now = dt.datetime.now(dt.UTC)
    warnings = []
    for row in rows:
        info = ends.get(row["name"])
        row["cert_not_after"] = info.not_after.strftime("%Y-%m-%dT%H:%M:%SZ") if info else None
        row["cert_days_left"] = info.days_left(now) if info else None
        if info is None or info.status(now) == "ok":
            continue
        end = f"{info.not_after:%Y-%m-%d}"
        expired = info.status(now) == "expired"
        when = f"expired on {end}" if expired else f"expires in {info.days_left(now)} days ({end})"
        fix = (f"bakery roll --nodes {row['name']} (its replacement gets a new certificate)" if provider == "local"
               else f"bakery certs --renew --nodes {row['name']}, then re-render and replace it (bakery certs --help)")
        warnings.append(f"{row['name']}'s {info.what.split()[-1]} certificate {when}: {fix}")
    return warnings


def run(args: argparse.Namespace) -> int:
    from ..providers.local import cluster
    from ..providers.local.host import require_host
    from ..state import default_root

    if args.provider == "openstack":
        from ..providers.openstack import commands

        return commands.run_nodes(args, commands.tagged_name(cluster_name(args)))
    refuse_local_for_openstack(args, "nodes")
    require_host(["nsenter"], "bakery nodes --provider local")
    rec = cluster.load(args.state_dir or default_root(), cluster_name(args))
    rows, answered_by = cluster.status(rec)
    if answered_by is None:
        print(f"bakery nodes: no running manager of cluster {rec.cluster} answered `docker node ls`: "
              "swarm states are Unknown", file=sys.stderr)
    from pathlib import Path

    from ..render import TLS_DIR

    tls = {n.name: Path(n.dir) / "upper" / TLS_DIR.lstrip("/") for n in rec.nodes}  # each node's own files
    for line in cert_notes(rec.cluster, args.state_dir, rows, "local", tls):
        print(f"bakery nodes: WARNING: {line}", file=sys.stderr)
    if args.output == "json":
        print(json.dumps({"cluster": rec.cluster, "answered_by": answered_by, "nodes": rows}, indent=2))
        return EXIT_OK
    print_table(rows, ("name", "role", "address", "running", "status", "availability", "manager_status"))
    return EXIT_OK
