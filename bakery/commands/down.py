"""Remove what `bakery up` created, from its own records (never by name patterns).

  bakery down [--cluster local]

Stops the cluster's nodes (by their recorded process ids), removes their
overlays and docker directories, stops dnsmasq and the apt proxy, deletes the
FORWARD rule and the bridge. The cluster's CAs and certificates stay in the
state directory: a later `up` reuses them. If something cannot be removed it
is listed, the record is kept, and running `down` again retries.

--provider openstack deletes the servers, floating IPs, load balancer, seed
port, server group, imported keypair and security groups that carry the
cluster's tag, and nothing else.
"""

from __future__ import annotations

import argparse

from ..output import teardown_result
from .common import cluster_name
from .up import add_cluster_arguments


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_cluster_arguments(p)


def run(args: argparse.Namespace) -> int:

    from ..providers.local import cluster
    from ..providers.local.host import require_host, stderr_progress
    from ..state import default_root

    if args.provider == "openstack":
        from ..providers.openstack import commands

        return commands.run_down(args, commands.tagged_name(cluster_name(args)))
    require_host(["ip", "iptables"], "bakery down --provider local")
    name = cluster_name(args)
    return teardown_result("down", name, cluster.down(args.state_dir or default_root(), name,
                                                      stderr_progress("bakery down")))
