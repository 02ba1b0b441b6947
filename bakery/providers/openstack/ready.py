"""Waiting for the swarm: `docker node ls` through the seed's mutual-TLS Docker API, until every node is Ready.

The operator's client certificate (state.client_cert_dir) is the only
credential; the seed's server certificate must carry the address used (its
fixed IP, floating IP or the load balancer's VIP are all put in its SANs).
While the seed boots, refused connections and TLS handshakes against a
half-started dockerd are expected: they are retried until the deadline, and
the last one is quoted if it passes.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...errors import BakeryError, EnvironmentMissing
from .cloud import Clock

Progress = Callable[[str], None]
CERT_FILES = ("ca.pem", "cert.pem", "key.pem")
API_VERSION = "1.41"


@dataclass(frozen=True)
class SwarmNode:
    hostname: str
    role: str  # manager / worker
    state: str  # ready / down / unknown / disconnected
    manager: str  # Leader / Reachable / Unreachable / "" for workers


def docker_url(address: str, port: int) -> str:
    host = f"[{address}]" if ":" in address else address
    return f"tcp://{host}:{port}"


def tls_client(address: str, port: int, cert_dir: Path, timeout: float = 10.0) -> Any:
    """A docker SDK client for the mutual-TLS API; nothing is sent until the first call."""
    missing = [name for name in CERT_FILES if not (cert_dir / name).is_file()]
    if missing:
        raise EnvironmentMissing(f"no operator client certificate in {cert_dir} (missing {', '.join(missing)}) "
                                 "(the same --state-dir as `bakery up` holds it; `bakery certs` creates one)")
    import docker
    from docker.tls import TLSConfig

    tls = TLSConfig(client_cert=(str(cert_dir / "cert.pem"), str(cert_dir / "key.pem")),
                    ca_cert=str(cert_dir / "ca.pem"), verify=True)
    # A fixed API version: the client then sends nothing until asked (Engine 20.10+ speaks 1.41).
    client = docker.DockerClient(base_url=docker_url(address, port), tls=tls, timeout=timeout, version=API_VERSION)
    # requests lets $REQUESTS_CA_BUNDLE / $CURL_CA_BUNDLE replace the session's CA per request, so with
    # either set (common on operators' machines) the cluster CA would be ignored and every call fail.
    client.api.trust_env = False
    return client


def swarm_nodes(client: Any) -> list[SwarmNode]:
    out = []
    for node in client.nodes.list():
        a = node.attrs
        manager = a.get("ManagerStatus") or {}
        out.append(SwarmNode(
            hostname=str(a.get("Description", {}).get("Hostname", "")),
            role=str(a.get("Spec", {}).get("Role", "")),
            state=str(a.get("Status", {}).get("State", "unknown")),
            manager="Leader" if manager.get("Leader") else str(manager.get("Reachability", "")).capitalize(),
        ))
    return sorted(out, key=lambda n: (n.hostname, n.role, n.state))


def short(hostname: str) -> str:
    """Nova hostnames may carry a domain (`prod-seed.novalocal`); nodes are matched by the first label."""
    return hostname.split(".", 1)[0].lower()


def readiness(expected: Mapping[str, str], listed: list[SwarmNode]) -> dict[str, bool]:
    """name -> Ready in the swarm with the expected role (manager/worker)."""
    return {name: any(short(n.hostname) == short(name) and n.state == "ready" and n.role == role for n in listed)
            for name, role in expected.items()}


def wait_ready(client: Any, expected: Mapping[str, str], timeout: float, poll: float, progress: Progress,
               clock: Clock | None = None) -> list[SwarmNode]:
    """Poll until every expected node is Ready; returns the swarm's node list."""
    clock = clock or Clock()
    deadline = clock.now() + timeout
    last_line, last_error = "", ""
    while True:
        listed, error = list_nodes(client)
        if error and error != last_error:
            progress(f"the seed's Docker API does not answer yet: {error}")
        last_error = error
        ready = readiness(expected, listed or [])
        done = sorted(n for n, ok in ready.items() if ok)
        line = f"{len(done)}/{len(ready)} nodes Ready" + (f": {', '.join(done)}" if done else "")
        if listed is not None and line != last_line:
            progress(line)
            last_line = line
        if listed is not None and all(ready.values()):
            return listed
        if clock.now() >= deadline:
            missing = ", ".join(sorted(n for n, ok in ready.items() if not ok))
            why = f"; the seed's Docker API: {last_error}" if last_error else ""
            raise BakeryError(f"not Ready after {timeout:.0f}s: {missing}{why}")
        clock.sleep(poll)


def list_nodes(client: Any) -> tuple[list[SwarmNode] | None, str]:
    """The node list, or None and why not (a connection error, or a seed not yet in swarm mode)."""
    import docker.errors
    import requests.exceptions

    try:
        return swarm_nodes(client), ""
    except docker.errors.APIError as exc:
        return None, f"HTTP {exc.status_code}: {exc.explanation or exc}"[:300]
    except (requests.exceptions.RequestException, docker.errors.DockerException, OSError) as exc:
        return None, connect_reason(exc)


def connect_reason(exc: BaseException) -> str:
    """Why a TLS API could not be reached, in a few words (urllib3's text nests the OS error three deep)."""
    text = str(exc)
    found = re.findall(r"\[Errno -?\d+\] ([^'\")\]]+)", text)
    if found:
        return f"cannot connect ({found[-1].strip()})"
    if "timed out" in text.lower() or "timeout" in text.lower():
        return "cannot connect (timed out)"
    if "SSL" in text or "certificate" in text.lower():
        return f"TLS failed ({_first_line(exc)[:200]})"
    return f"{type(exc).__name__}: {_first_line(exc)}"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else "")[:300]
