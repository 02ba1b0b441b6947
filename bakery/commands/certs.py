"""Create (once) and show the cluster's CAs and the operator's client certificate.

The cluster CA signs node server certificates and your Docker client
certificate; the join CA signs the nodes' join-service certificates only.
CA keys stay in the state directory (0600) and never enter user-data.
Prints how to point the Docker CLI at the seed's TLS API.
"""

from __future__ import annotations

import argparse
import json
import sys

from .. import certs, state
from ..errors import EXIT_OK
from .common import add_cluster, add_config, add_output, add_state_dir, cluster_name, load_config


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_config(p)
    add_cluster(p)
    add_state_dir(p)
    add_output(p, text="text: the export line on stdout, notes on stderr")


def run(args: argparse.Namespace) -> int:
    cfg = load_config(args)
    name = cluster_name(args)
    cdir = state.cluster_dir(name, args.state_dir)
    created = certs.ensure_cluster(cdir, name)
    client = state.client_cert_dir(name, args.state_dir)
    host = cfg.swarm.seed if ":" not in cfg.swarm.seed else f"[{cfg.swarm.seed}]"
    info = {
        "cluster": name,
        "created": created,
        "state_dir": str(cdir),
        "cluster_ca": str(cdir / "ca" / "ca.pem"),
        "join_ca": str(cdir / "join-ca" / "ca.pem"),
        "client_cert_path": str(client),
        "docker_host": f"tcp://{host}:{cfg.docker.api_port}",
    }
    if args.output == "json":
        print(json.dumps(info, indent=2))
        return EXIT_OK
    print(f"bakery certs: {'created' if created else 'using'} the certificates of cluster {name!r} in {cdir}; "
          "point the Docker CLI at the seed's mutual-TLS API with the line below, or: eval \"$(bakery certs)\"",
          file=sys.stderr)
    print(f"export DOCKER_HOST={info['docker_host']} DOCKER_TLS_VERIFY=1 DOCKER_CERT_PATH={client}")
    return EXIT_OK
