"""Create (once) and show the cluster's CAs and certificates, and how to reach the swarm.

  eval "$(bakery certs)"                    # stdout: only the export line; the rest goes to stderr
  bakery certs --output json                # the same as data: env, paths, every certificate
  bakery certs --renew [--nodes NAME ...]   # re-issue node certificates from the existing CAs

The cluster CA signs node server certificates and your Docker client
certificate; the join CA signs the nodes' join-service certificates only.
CA keys stay in the state directory (0600) and never enter user-data.

Every certificate's expiry is listed on stderr: both CAs, your client
certificate, and each node's server and join certificates. One expiring
within 30 days, or expired, gets a WARNING line; the exit code stays 0.
The CAs live 3650 days; what they issue lives 825 days, never past its CA.

Renewing node certificates (same CAs). bakery re-issues; it never changes a
running node, so rolling the node is yours:
  bakery certs --renew --nodes worker-1     # new key pair and certificate, same SANs and class
  bakery render --role worker --name worker-1 ... -o worker-1.userdata   # the flags it had before
then either replace the server with that user-data (docker node update
--availability drain worker-1 first, and demote a manager; docker node rm the
old one after; a replaced seed rejoins only through a running manager listed in
swarm.managers: render it without --form), or copy
nodes/worker-1/{server,join}-{cert,key}.pem from the state directory to
/etc/bakery/tls/ on the node and run `systemctl restart docker` (and
`bakery-join-server` on managers). Later rebuilds of the server must use the
new user-data: the old one carries the old certificates. `--renew` without
--nodes renews every node and your client certificate (which needs no roll).

Rotating the CAs (their 3650 days end, or a key leaked). A CA cannot be
renewed in place: every certificate it signed must be replaced, on every node.
  mv STATE/CLUSTER STATE/CLUSTER.old-ca    # keep it: its client/ still reaches unrolled nodes
  bakery certs                             # new CAs and client certificate
  bakery render ... for every node, with the flags it had before
then on each running node put the new files in /etc/bakery/tls/ (ca.pem from
ca/, join-ca.pem from join-ca/ on managers, the rest from nodes/NAME/) and
restart docker and bakery-join-server: the seed and managers first, workers
after. Boot no new node until every manager has the new join CA: an unrolled
manager's join service refuses the new certificates, so the new node cannot
join until it has (a seed keeps asking: a TLS refusal never lets it form). Or build a new cluster from the new state
directory and move the stacks with bakery deploy. Swarm's own CA (2377) is
Docker's and rotates itself (docker swarm ca --rotate); bakery does not touch it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shlex
import sys
from typing import Any

from .. import certs, state
from ..errors import EXIT_OK, UserError
from .common import add_cluster, add_config, add_output, add_state_dir, cluster_name, load_config


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_config(p)
    add_cluster(p)
    add_state_dir(p)
    p.add_argument("--renew", action="store_true",
                   help="re-issue node certificates from the existing CAs, keeping SANs and class (without "
                        "--nodes: every node and your client certificate); then re-render and roll those nodes")
    p.add_argument("--nodes", nargs="+", metavar="NAME", help="with --renew: only these nodes")
    add_output(p, text="the export line on stdout, the certificates and notes on stderr")


def _row(c: certs.CertInfo, now: dt.datetime) -> dict[str, Any]:
    return {"what": c.what, "node": c.node, "path": str(c.path), "subject": c.subject, "class": c.cert_class,
            "sans": list(c.sans), "not_after": c.not_after.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "days_left": c.days_left(now), "status": c.status(now)}


def _warning(c: certs.CertInfo, now: dt.datetime) -> str:
    end = f"{c.not_after:%Y-%m-%d}"
    when = f"expired on {end}" if c.status(now) == "expired" else f"expires in {c.days_left(now)} days ({end})"
    if c.node:
        fix = f"bakery certs --renew --nodes {c.node}, then re-render and roll {c.node}"
    elif c.what == "client":
        fix = "bakery certs --renew"
    else:
        fix = "rotate the CAs, every node with them (see bakery certs --help)"
    return f"the {c.what} certificate {when}: {fix}"


def _table(rows: list[dict[str, Any]]) -> str:
    cells = [["certificate", "subject", "class", "not after", "days", "SANs"]]
    cells += [[r["what"], r["subject"], r["class"] or "-", r["not_after"][:10], str(r["days_left"]),
               ",".join(r["sans"]) or "-"] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(5)]
    return "\n".join("  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False)) + "  " + row[5]
                     for row in cells)


def _seed_api(cfg: Any, name: str, state_dir: Any) -> str:
    """The seed's TLS API: a local cluster's recorded seed (`up` chose its address), else the config's."""
    from ..swarm.connect import recorded_seed

    recorded = recorded_seed(name, state_dir or state.default_root())
    if recorded:
        return recorded
    host = cfg.swarm.seed if ":" not in cfg.swarm.seed else f"[{cfg.swarm.seed}]"
    return f"tcp://{host}:{cfg.docker.api_port}"


def run(args: argparse.Namespace) -> int:
    if args.nodes and not args.renew:
        raise UserError("--nodes only goes with --renew", fix="bakery certs --renew --nodes NAME ...")
    cfg = load_config(args)
    name = cluster_name(args)
    cdir = state.cluster_dir(name, args.state_dir)
    created = certs.ensure_cluster(cdir, name)
    renewed = certs.renew(cdir, args.nodes) if args.renew else []
    certs.check_keys(cdir)
    client = state.client_cert_dir(name, args.state_dir)
    env = {"DOCKER_HOST": _seed_api(cfg, name, args.state_dir), "DOCKER_TLS_VERIFY": "1",
           "DOCKER_CERT_PATH": str(client.absolute())}  # the export works from any directory
    now = dt.datetime.now(dt.UTC)
    listed = certs.inventory(cdir)
    rows = [_row(c, now) for c in listed]
    warnings = [_warning(c, now) for c in listed if c.status(now) != "ok"]
    info = {
        "cluster": name,
        "created": bool(created),
        "state_dir": str(cdir),
        "cluster_ca": str(cdir / "ca" / "ca.pem"),
        "join_ca": str(cdir / "join-ca" / "ca.pem"),
        "client_cert_path": str(client),
        "docker_host": env["DOCKER_HOST"],
        "env": env,
        "renewed": renewed,
        "certificates": rows,
        "warnings": warnings,
    }
    if args.output == "json":
        print(json.dumps(info, indent=2))
        return EXIT_OK
    err = sys.stderr
    print(f"bakery certs: {'created' if created else 'using'} the certificates of cluster {name!r} in {cdir}:",
          file=err)
    print(_table(rows), file=err)
    for line in warnings:
        print(f"bakery certs: WARNING: {line}", file=err)
    if renewed:
        nodes = [n for n in renewed if n != "client"]
        done = (["your client certificate (in use from now on)"] if "client" in renewed else []) + (
            [f"node{'s' if len(nodes) > 1 else ''} {', '.join(nodes)}"] if nodes else [])
        print(f"bakery certs: renewed {' and '.join(done)}"
              + (f"; re-render {'each' if len(nodes) > 1 else 'it'} with the flags it had before and roll it "
                 "(see bakery certs --help)" if nodes else ""), file=err)
    print("bakery certs: point the Docker CLI at a manager's mutual-TLS API (the seed's, while there is one) with "
          "the line below, or: "
          "eval \"$(bakery certs)\"", file=err)
    print(" ".join(["export", *(f"{k}={shlex.quote(v)}" for k, v in env.items())]))  # eval-able for any path
    return EXIT_OK
