"""Create (once) and show the cluster's CAs and the operator's client certificate.

The cluster CA signs node server certificates and your Docker client
certificate; the join CA signs the nodes' join-service certificates only.
CA keys stay in the state directory (0600) and never enter user-data.
Prints how to point the Docker CLI at the seed's TLS API.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from .. import certs, state
from .. import config as config_mod
from ..errors import EXIT_OK


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", "-c", metavar="FILE", help="cluster definition (default: as for render)")
    p.add_argument("--state-dir", type=Path, metavar="DIR", help="state directory (default: as for render)")
    p.add_argument("--output", choices=("text", "json"), default="text")


def run(args: argparse.Namespace) -> int:
    cfg = config_mod.load(config_mod.find_config(args.config))
    cdir = state.cluster_dir(cfg.name, args.state_dir)
    created = certs.ensure_cluster(cdir, cfg.name)
    client = state.client_cert_dir(cfg.name, args.state_dir)
    host = cfg.swarm.seed if ":" not in cfg.swarm.seed else f"[{cfg.swarm.seed}]"
    info = {
        "cluster": cfg.name,
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
    print(f"{'created' if created else 'using'} the certificates of cluster {cfg.name!r} in {cdir}")
    print("point the Docker CLI at the seed's mutual-TLS API with:")
    print(f"  export DOCKER_HOST={info['docker_host']} DOCKER_TLS_VERIFY=1 DOCKER_CERT_PATH={client}")
    return EXIT_OK
