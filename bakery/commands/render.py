"""Print one node role's user-data on stdout: cloud-init, or an Ignition config (--format ignition).

  bakery render --role manager | openstack server create --user-data /dev/stdin ...

Roles: seed (the first manager: inits the swarm), manager, worker, consul.
With no --config (and no ./bakery.yml) the embedded defaults are used. The
cluster's CAs and the node's certificates are created on first use in the
state directory and reused afterwards, so the same inputs give the same bytes.
No join token is ever in the output: nodes fetch theirs at boot over mutual TLS.

Give every node its own --name: the name is its certificates' identity. Without
one a node is named after its role, so all workers rendered without --name are
node `worker` and share one server and join key pair (and all managers share
`manager`'s, whose certificate covers every swarm.managers address). One leaked
node then leaks them all, and none can be renewed or told apart alone; render
says so on stderr. There is no unique default: rendering is deterministic, and
two renders with the same inputs must give the same bytes.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from ..config import ROLES, ClusterConfig, check_address, check_node_name
from ..errors import EXIT_OK, UserError
from ..render import NOVA_BASE64_LIMIT, InsecureTcp, Node, build_userdata
from ..state import write_output_file
from .common import add_cluster, add_config, add_out_file, add_output, add_state_dir, cluster_name, load_config


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--role", required=True, choices=ROLES, help="the node's role")
    p.add_argument("--name", help="node name for its certificate (default: the role's name, which every node "
                                  "rendered without --name shares, key pair included)")
    p.add_argument("--address", action="append", default=[], metavar="IP",
                   help="an address the node's certificate must cover (repeatable); a named manager needs its "
                        "entry of swarm.managers, where other nodes reach it")
    p.add_argument("--reissue", action="store_true",
                   help="give an existing node new certificates and a new key pair for other flags (another "
                        "--address, role or SANs); without it such a render is refused")
    add_config(p)
    add_cluster(p)
    add_state_dir(p)
    p.add_argument("--format", choices=("cloud-init", "ignition", "butane"), default="cloud-init",
                   help="cloud-init user-data (default), an Ignition config (Flatcar, Fedora CoreOS; needs "
                        "docker.install: none), or its Butane source")
    p.add_argument("--gzip", choices=("auto", "always", "never"), default="auto",
                   help="gzip the user-data (with --format ignition: its files, as gzip data URLs): "
                        "auto = only when needed to fit Nova's limit (default)")
    p.add_argument("--part", action="append", default=[], type=Path, metavar="FILE",
                   help="append your own cloud-config or script as a MIME part (repeatable)")
    p.add_argument("--insecure-tcp", metavar="ADDR:PORT",
                   help="DANGEROUS: serve the Docker API as plain TCP without TLS on ADDR:PORT")
    p.add_argument("--form", action="store_true",
                   help="seed only: this seed may init a new swarm (the first formation; same as swarm.form: true). "
                        "Without it a seed only joins the swarm its managers run: a rebuilt seed never forms a second")
    add_output(p, aliases={"userdata": "text"}, text="the user-data",
               json="a summary: sizes, budget, files (the user-data still goes to -o FILE)")
    add_out_file(p, "the user-data (0600: it holds the node's keys)")


def _insecure(value: str | None) -> InsecureTcp | None:
    if value is None:
        return None
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UserError(f"--insecure-tcp {value!r} is not ADDR:PORT", fix="e.g. --insecure-tcp 127.0.0.1:2375")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    check_address(host, "--insecure-tcp")
    if host not in ("127.0.0.1", "::1", "localhost"):
        print(f"bakery render: WARNING: the Docker API will be plain TCP on {value}: anyone who can reach "
              "it controls the node. Prefer the default mutual TLS on 2376.", file=sys.stderr)
    return InsecureTcp(f"[{host}]" if ":" in host else host, int(port))


def _check_reachable(cfg: ClusterConfig, node: Node) -> None:
    """A named manager whose certificate names none of swarm.managers works on day one (everything joins
    through the seed) and fails the day the seed is rebuilt: refused. A seed that may not form and knows
    no other manager can never start: warned."""
    from ..render import node_sans

    managers = set(cfg.swarm.managers)
    if node.role == "manager" and node.name != "manager" and managers and not managers & set(node_sans(cfg, node)):
        raise UserError(
            f"manager {node.name!r}: its certificate would name none of swarm.managers "
            f"({', '.join(sorted(managers))}), the addresses other nodes reach managers at: a rebuilt seed "
            "and new nodes would refuse it",
            fix=f"add --address with {node.name}'s entry of swarm.managers (e.g. --address {sorted(managers)[0]})")
    if node.role == "seed" and not cfg.swarm.form and not managers:
        print("bakery render: WARNING: this seed may not form a swarm (no --form, swarm.form false) and "
              "knows no other manager (swarm.managers is empty): it can never start a node. For the first "
              "formation add --form; to rebuild a seed, list the managers in swarm.managers", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    cfg = load_config(args)
    if args.cluster is not None:  # the node joins cluster NAME: its CAs, its certificates
        cfg = dataclasses.replace(cfg, name=cluster_name(args))
    if args.form:
        if args.role != "seed":
            raise UserError("--form is for --role seed: only the seed may init a swarm")
        cfg = dataclasses.replace(cfg, swarm=dataclasses.replace(cfg.swarm, form=True))
    name = args.role if args.name is None else args.name
    check_node_name(name, "--name")
    for address in args.address:
        check_address(address, "--address")
    node = Node(args.role, name, tuple(args.address))
    _check_reachable(cfg, node)
    userdata, created = build_userdata(cfg, node, args.state_dir, gzip_mode=args.gzip, parts=tuple(args.part),
                                       insecure=_insecure(args.insecure_tcp), reissue=args.reissue, fmt=args.format)
    if created:
        from ..state import cluster_dir

        made = ", ".join(created[:-1]) + " and " + created[-1] if len(created) > 1 else created[0]
        print(f"bakery render: created the {made} of cluster {cfg.name!r} in "
              f"{cluster_dir(cfg.name, args.state_dir)}", file=sys.stderr)
    if args.out:  # -o always gets the user-data; --output says what stdout gets
        write_output_file(args.out, userdata.payload)
    if args.output == "json":
        summary = {
            "cluster": cfg.name, "role": node.role, "name": node.name, "config": cfg.source,
            "content_type": userdata.content_type, "gzip": userdata.gzipped,
            "bytes": len(userdata.payload), "raw_bytes": userdata.raw_size,
            "base64_chars": userdata.base64_size, "nova_base64_limit": NOVA_BASE64_LIMIT,
            "files": list(userdata.files), "out": str(args.out) if args.out else None,
        }
        sys.stdout.write(json.dumps(summary, indent=2) + "\n")
        sys.stdout.flush()
    elif not args.out:
        if userdata.gzipped and sys.stdout.isatty():
            raise UserError("the user-data is gzipped (binary); not writing it to a terminal",
                            fix="pipe it (| openstack server create --user-data /dev/stdin) or use -o FILE")
        sys.stdout.buffer.write(userdata.payload)
        sys.stdout.flush()
    if args.name is None and args.role != "seed":  # the seed is one node; the other roles are many
        print(f"bakery render: WARNING: no --name: this {args.role} is node {name!r}, and every {args.role} "
              f"rendered without --name shares its key pair; give each its own: --name {args.role}-1, "
              f"--name {args.role}-2, ...", file=sys.stderr)
    return EXIT_OK
