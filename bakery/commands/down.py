"""Remove what `bakery up` created, from its own records (never by name patterns).

  bakery down [--cluster NAME]

Stops the cluster's nodes (by their recorded process ids), removes their
overlays and docker directories, stops dnsmasq and the apt proxy, deletes the
FORWARD rule and the bridge. The cluster's CAs and certificates stay in the
state directory: a later `up` reuses them. If something cannot be removed it
is listed, the record is kept, and running `down` again retries (exit 1).
With nothing to remove (no record: a second `down`, or a cluster that never
was) it says so in one line on stderr and exits 0.

--provider openstack deletes the servers, floating IPs, load balancer, seed
port, server group, imported keypair and security groups that carry the
cluster's tag, and nothing else; nothing tagged is nothing to remove (exit 0).
Once everything is gone, the state directory forgets the cluster's roll journal
and the options `roll` boots with; its certificates stay. Neither provider's
`down` runs while an `up` or `roll` of the cluster holds it.

--output json prints {"cluster", "result", "removed", "problems"} instead:
result is "removed", "nothing-to-remove" or "incomplete" (exit 1), removed
lists what was there and is gone ("node seed", "bridge bkr-NAME", "server
ID"), problems what could not be removed.
"""

from __future__ import annotations

import argparse

from ..output import teardown_result
from .common import cluster_name, refuse_local_for_openstack
from .up import add_cluster_arguments


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_cluster_arguments(p)


def run(args: argparse.Namespace) -> int:
    from ..providers.local import cluster
    from ..providers.local.host import stderr_progress
    from ..state import default_root

    output = args.output
    if args.provider == "openstack":
        from ..providers.openstack import commands

        return commands.run_down(args, commands.tagged_name(cluster_name(args)), output)
    refuse_local_for_openstack(args, "down")
    from ..providers.local.daytwo import exclusive, forget_day_two
    from ..providers.local.state import record_path

    name = cluster_name(args)
    state_dir = args.state_dir or default_root()
    if record_path(state_dir, name).exists():
        with exclusive(state_dir, name, wait=30, progress=stderr_progress("bakery down")):
            done = cluster.down(state_dir, name, stderr_progress("bakery down"))
            if not done.problems:
                forget_day_two(state_dir, name)
    else:
        done = cluster.down(state_dir, name, stderr_progress("bakery down"))
    return teardown_result("down", name, done.removed, done.problems, looked=f"no record of it in {state_dir}",
                           output=output)
