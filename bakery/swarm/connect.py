"""Reach the engine the way Docker users expect, and say where it was looked for.

Which engine, first match wins:

1. `--host ADDR`: that address. Mutual TLS with the --tls* files, else with
   the client certificates of `--cluster NAME`, else as DOCKER_TLS_VERIFY and
   DOCKER_CERT_PATH say (as the Docker CLI does), else plain.
2. `--cluster NAME`: NAME's client certificates (`<state>/<NAME>/client/`,
   what `bakery certs` issued) at the seed's API of the cluster definition
   when the one found is NAME's, else at $DOCKER_HOST; with neither, an error.
3. `$DOCKER_HOST`, with DOCKER_TLS_VERIFY and DOCKER_CERT_PATH.
4. a cluster definition that was actually found (`--config`, $BAKERY_CONFIG,
   ./bakery.yml): its seed's API, `tcp://SEED:API_PORT` as `bakery certs`
   prints it, with its cluster's client certificates.
5. the local socket.

docker is imported only in `connect`, when a deploy actually connects.
"""

from __future__ import annotations

import os
import socket
import ssl
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import EnvironmentMissing, UserError
from ..state import default_root
from .engine import Engine

DEFAULT_HOST = "unix:///var/run/docker.sock"


@dataclass(frozen=True)
class Endpoint:
    host: str
    tls_verify: bool = False
    ca: Path | None = None
    cert: Path | None = None
    key: Path | None = None
    origin: str = ""  # why this engine: `from -H`, `from $DOCKER_HOST`, `from cluster prod of bakery.yml`, ...

    def where(self) -> str:
        """The address and where it came from, for messages."""
        notes = [n for n in (self.origin, "mutual TLS" if self.tls_verify else "") if n]
        return f"{self.host} ({', '.join(notes)})" if notes else self.host


@dataclass(frozen=True)
class ClusterAddress:
    """A cluster definition's name and its seed's Docker API, and the file that says so."""

    name: str
    host: str  # tcp://SEED:API_PORT
    source: str


def _truthy(value: str | None) -> bool:
    return bool(value) and str(value).lower() not in ("0", "false", "no")


def cluster_cert_dir(cluster: str, state_dir: Path | None, environ: Mapping[str, str]) -> Path:
    """`<state>/<cluster>/client`, the layout `bakery certs` writes."""
    from ..state import client_cert_dir, default_root

    return client_cert_dir(cluster, state_dir or default_root(environ))


def _address(
    host: str | None,
    cluster: str | None,
    env: Mapping[str, str],
    config: Callable[[], ClusterAddress | None] | None,
    recorded: Callable[[str], str | None] | None = None,
) -> tuple[str, str, str | None]:
    """(address, where it came from, the cluster whose certificates to use): rules 1-5 above.
    The cluster definition is read only when the rule gets to it."""
    if host:
        return host, "from -H", cluster
    if cluster:
        found = config() if config else None
        if found and found.name == cluster:
            return found.host, f"from --cluster {cluster}: the seed in {found.source}", cluster
        if env.get("DOCKER_HOST"):
            return env["DOCKER_HOST"], f"from $DOCKER_HOST, with --cluster {cluster}", cluster
        booted = recorded(cluster) if recorded else None
        if booted:
            return booted, f"from --cluster {cluster}: the seed `bakery up` recorded", cluster
        raise UserError(
            f"--cluster {cluster}: no address for its engine (no -H, no $DOCKER_HOST, and no cluster "
            f"definition for {cluster!r} found)",
            fix=f"pass -H tcp://MANAGER:2376, or --config with the definition of cluster {cluster}",
        )
    if env.get("DOCKER_HOST"):
        return env["DOCKER_HOST"], "from $DOCKER_HOST", None
    found = config() if config else None
    if found:
        return found.host, f"from cluster {found.name} of {found.source}", found.name
    return DEFAULT_HOST, "the default: no -H, --cluster, $DOCKER_HOST or bakery.yml", None


_SCHEMES = ("tcp://", "http://", "https://")


def check_host(host: str, origin: str = "from -H") -> None:
    """Refuse an engine address that is not `unix:///PATH`, `tcp://HOST:PORT` (or `HOST:PORT`),
    with the form to use: the SDK would otherwise stop on it with a traceback."""
    fix = "give unix:///var/run/docker.sock, tcp://HOST:2376 or tcp://[IPv6]:2376"
    if host.startswith("unix://"):
        if not host.removeprefix("unix://").startswith("/"):
            raise UserError(f"engine address {host!r} ({origin}): a unix socket needs an absolute path", fix=fix)
        return
    if "://" in host and not host.startswith(_SCHEMES):
        scheme = host.split("://", 1)[0]
        raise UserError(f"engine address {host!r} ({origin}): scheme {scheme!r} is not supported", fix=fix)
    rest = host.split("://", 1)[-1]
    from urllib.parse import urlsplit

    try:
        parts = urlsplit("//" + rest)
        port = parts.port
    except ValueError as exc:
        raise UserError(f"engine address {host!r} ({origin}) is not an address: {exc}", fix=fix) from None
    if not parts.hostname or any(c.isspace() for c in rest) or parts.path not in ("", "/"):
        raise UserError(f"engine address {host!r} ({origin}) is not HOST:PORT", fix=fix)
    if port == 0:
        raise UserError(f"engine address {host!r} ({origin}): port 0 is not a port", fix=fix)


def recorded_seed(cluster: str, state_dir: Path) -> str | None:
    """The TLS API of a cluster `bakery up` booted, from its record: a local cluster's seed, an OpenStack
    cluster's load balancer or seed floating IP (what `up` printed), if any."""
    import json

    from ..providers.local.state import record_path
    from ..providers.openstack.daytwo import RECORD, recorded_docker_host

    host = recorded_docker_host(state_dir / cluster / RECORD)
    if host:
        return host
    record = record_path(state_dir, cluster)
    try:
        nodes = json.loads(record.read_text()).get("nodes") or []
    except (OSError, ValueError, AttributeError):
        return None
    # The seed, or after a roll replaced it the first manager (a roll moves the seed last).
    managers = [n for n in nodes if isinstance(n, dict) and n.get("role") in ("seed", "manager")]
    def number(name: object) -> int:
        tail = str(name).rsplit("-", 1)[-1]
        return int(tail) if tail.isdigit() else 0

    managers.sort(key=lambda n: (bool(n.get("stopped")), n.get("role") != "seed", number(n.get("name"))))
    if not managers:
        return None
    from ..providers.local.cluster import address_for

    return f"tcp://{address_for(str(managers[0].get('name')), str(managers[0].get('role')))}:2376"


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
    config: Callable[[], ClusterAddress | None] | None = None,
) -> Endpoint:
    """Where the engine is and how to talk to it; `config` finds the cluster definition, if any."""
    env = os.environ if environ is None else environ
    chosen_host, origin, cluster = _address(host, cluster, env, config,
                                            lambda name: recorded_seed(name, state_dir or default_root(env)))
    check_host(chosen_host, origin)
    cert_dir: Path | None = None
    if cluster:
        cert_dir = cluster_cert_dir(cluster, state_dir, env)
        if not cert_dir.is_dir():
            raise UserError(
                f"no client certificates for cluster {cluster!r} in {cert_dir} ({chosen_host}, {origin})",
                fix=f"run `bakery certs` for {cluster}, pass --state-dir, or -H for another engine",
            )
        tls_verify = True
    elif env.get("DOCKER_CERT_PATH"):
        cert_dir = Path(env["DOCKER_CERT_PATH"])
    tls_verify = tls_verify or _truthy(env.get("DOCKER_TLS_VERIFY")) or bool(ca or cert or key)
    if not tls_verify:
        return Endpoint(chosen_host, origin=origin)
    if chosen_host.startswith("unix://"):
        raise UserError(
            f"TLS asked for, but the host {chosen_host} ({origin}) is a local socket",
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
    return Endpoint(chosen_host, True, files["ca"], files["cert"], files["key"], origin)


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
    (
        "WRONG_VERSION_NUMBER",
        "it does not speak TLS at that port: drop --tlsverify/--cluster and DOCKER_TLS_VERIFY, "
        "or use the engine's TLS port (2376)",
    ),
)
_ELSEWHERE = "or choose the engine with -H ADDR, --cluster NAME or DOCKER_HOST"


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception and everything it wraps (causes, urllib3's `reason`, requests' args), outermost first."""
    todo, seen = [exc], set()
    while todo:
        e = todo.pop(0)
        if id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        inner = (getattr(e, "reason", None), *getattr(e, "args", ()), e.__cause__, e.__context__)
        todo += [x for x in inner if isinstance(x, BaseException)]


def _why(exc: BaseException, ep: Endpoint) -> str:
    """What went wrong and what to do, in words: never the SDK's or urllib3's text."""
    chain = list(_chain(exc))
    text = " ".join(str(e) for e in chain)
    for needle, hint in _TLS_HINTS:
        if needle in text:
            return hint
    path = ep.host.removeprefix("unix://")
    for e in reversed(chain):  # innermost first: the operating system's word is the precise one
        if isinstance(e, socket.gaierror):
            return f"its host name does not resolve (check the address, {_ELSEWHERE})"
        if isinstance(e, ConnectionRefusedError):
            return f"connection refused, nothing listens there (start dockerd there, {_ELSEWHERE})"
        if isinstance(e, FileNotFoundError):
            return f"no socket {path}, dockerd does not run here (start it, {_ELSEWHERE})"
        if isinstance(e, PermissionError):
            return f"permission denied on {path} (run as root or as a member of the docker group)"
        if isinstance(e, TimeoutError) or type(e).__name__ in ("ConnectTimeoutError", "ReadTimeoutError"):
            return f"no answer in time (check the address and that a firewall lets the port through, {_ELSEWHERE})"
        if isinstance(e, ConnectionResetError | ssl.SSLError):
            return f"it closed the connection ({e.__class__.__name__}): is that the Docker API port? ({_ELSEWHERE})"
    return f"{chain[-1]} ({_ELSEWHERE})"


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
        raise EnvironmentMissing(f"cannot reach the Docker engine at {ep.where()}: {_why(exc, ep)}") from None
    swarm = info.get("Swarm") or {}
    if swarm.get("LocalNodeState") != "active" or not swarm.get("ControlAvailable"):
        raise EnvironmentMissing(
            f"the engine at {ep.where()} is not a swarm manager (run `docker swarm init` there, or use a manager)"
        )
    return Engine(api)
