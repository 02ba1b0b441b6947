"""Reach the engine the way Docker users expect.

Precedence: flags (`--host`, `--tlsverify`, `--tlscacert/--tlscert/--tlskey`),
then the certificates `bakery certs` issued for `--cluster NAME`
(`<state>/<NAME>/client/`), then DOCKER_HOST, DOCKER_TLS_VERIFY and
DOCKER_CERT_PATH, then the local socket. docker is imported only here, when
a deploy actually connects.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import EnvironmentMissing, UserError
from .engine import Engine

DEFAULT_HOST = "unix:///var/run/docker.sock"


@dataclass(frozen=True)
class Endpoint:
    host: str
    tls_verify: bool = False
    ca: Path | None = None
    cert: Path | None = None
    key: Path | None = None

    def describe(self) -> str:
        return self.host + (" (mutual TLS)" if self.tls_verify else "")


def _truthy(value: str | None) -> bool:
    return bool(value) and str(value).lower() not in ("0", "false", "no")


def cluster_cert_dir(cluster: str, state_dir: Path | None, environ: Mapping[str, str]) -> Path:
    """`<state>/<cluster>/client`, the layout `bakery certs` writes."""
    from ..state import client_cert_dir, default_root

    return client_cert_dir(cluster, state_dir or default_root(environ))


def endpoint(
    *,
    host: str | None = None,
    tls_verify: bool = False,
    ca: str | None = None,
    cert: str | None = None,
    key: str | None = None,
    cluster: str | None = None,
    state_dir: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> Endpoint:
    env = os.environ if environ is None else environ
    chosen_host = host or env.get("DOCKER_HOST") or DEFAULT_HOST
    cert_dir: Path | None = None
    if cluster:
        cert_dir = cluster_cert_dir(cluster, state_dir, env)
        if not cert_dir.is_dir():
            raise UserError(
                f"no client certificates for cluster {cluster!r} in {cert_dir}",
                fix=f"run `bakery certs` for {cluster}, or pass --state-dir",
            )
        tls_verify = True
    elif env.get("DOCKER_CERT_PATH"):
        cert_dir = Path(env["DOCKER_CERT_PATH"])
    tls_verify = tls_verify or _truthy(env.get("DOCKER_TLS_VERIFY")) or bool(ca or cert or key)
    if not tls_verify:
        return Endpoint(chosen_host)
    if chosen_host.startswith("unix://"):
        raise UserError(
            f"TLS asked for, but the host {chosen_host} is a local socket",
            fix="give --host tcp://MANAGER:2376 (or DOCKER_HOST)",
        )
    base = cert_dir or Path(os.path.expanduser("~/.docker"))
    files = {
        "ca": Path(ca) if ca else base / "ca.pem",
        "cert": Path(cert) if cert else base / "cert.pem",
        "key": Path(key) if key else base / "key.pem",
    }
    for what, path in files.items():
        if not path.is_file():
            raise UserError(
                f"TLS {what} file {path} does not exist",
                fix="pass --tlscacert/--tlscert/--tlskey, --cluster, or set DOCKER_CERT_PATH",
            )
    return Endpoint(chosen_host, True, files["ca"], files["cert"], files["key"])


# What the TLS layer says, and what the user should do about it.
_TLS_HINTS = (
    (
        "Client sent an HTTP request to an HTTPS server",
        "it only speaks mutual TLS: pass --cluster NAME (the certificates `bakery certs` issued), "
        "--tlsverify with --tlscacert/--tlscert/--tlskey, or DOCKER_TLS_VERIFY=1 and DOCKER_CERT_PATH",
    ),
    (
        "BAD_CERTIFICATE",
        "it refused the client certificate: use one issued by the cluster's CA (`bakery certs` for this cluster)",
    ),
    (
        "CERTIFICATE_REQUIRED",
        "it asks for a client certificate: pass --cluster NAME or --tlscert/--tlskey",
    ),
    ("UNKNOWN_CA", "it does not know the CA of the client certificate: use the cluster's client certificate"),
    (
        # Go's TLS server may just hang up on a certificate it does not trust, without an alert.
        "EOF occurred in violation of protocol",
        "it closed the TLS connection, most likely refusing the client certificate: "
        "use one issued by the cluster's CA (`bakery certs` for this cluster)",
    ),
    (
        "CERTIFICATE_VERIFY_FAILED",
        "its certificate is not signed by the given CA, or not issued for this host name: "
        "check --tlscacert (or the cluster given) and the address",
    ),
)


def _why(exc: Exception) -> str:
    text = str(exc)
    for needle, hint in _TLS_HINTS:
        if needle in text:
            return hint
    return text


def connect(ep: Endpoint, *, timeout: int = 60) -> Engine:
    """An Engine for a swarm manager, or EnvironmentMissing saying why not."""
    import docker
    import docker.errors
    import docker.tls
    import requests

    class Client(docker.APIClient):
        """requests lets REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE replace a session's CA (psf/requests#3829,
        docker/docker-py#2433): the cluster CA must win, or a machine with those set cannot verify."""

        def merge_environment_settings(self, *args: Any, **kwargs: Any) -> Any:
            settings = super().merge_environment_settings(*args, **kwargs)
            if isinstance(self.verify, str):
                settings["verify"] = self.verify
            return settings

    tls = False
    if ep.tls_verify:
        tls = docker.tls.TLSConfig(client_cert=(str(ep.cert), str(ep.key)), ca_cert=str(ep.ca), verify=True)
    host = ep.host.replace("tcp://", "https://", 1) if ep.tls_verify else ep.host
    try:
        api = Client(base_url=host, tls=tls, version="auto", timeout=timeout, max_pool_size=16)
        info = api.info()
    except (docker.errors.DockerException, requests.exceptions.RequestException, OSError) as exc:
        raise EnvironmentMissing(f"cannot reach the Docker engine at {ep.describe()}: {_why(exc)}") from None
    swarm = info.get("Swarm") or {}
    if swarm.get("LocalNodeState") != "active" or not swarm.get("ControlAvailable"):
        raise EnvironmentMissing(
            f"the engine at {ep.describe()} is not a swarm manager (run `docker swarm init` or use a manager)"
        )
    return Engine(api)
