"""The end-to-end proof: booted nodes run bakery's user-data and form a swarm (CI tier).

One cluster for the module: seed + 2 managers + 1 worker from the baked image.
The last test takes it down and checks nothing is left.
"""

from __future__ import annotations

import json
import ssl
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import LocalCluster, boot_cluster

pytestmark = pytest.mark.nodes

SEED = "10.213.0.10"


@pytest.fixture(scope="module")
def cluster(baked_image: dict[str, Any], cache_dir: Path,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    yield from boot_cluster(tmp_path_factory.mktemp("cluster"), cache_dir, managers=3, workers=1)


def test_every_node_is_ready_with_its_role(cluster: LocalCluster) -> None:
    nodes = cluster.nodes()
    assert set(nodes) == {"seed", "manager-1", "manager-2", "worker-1"}
    assert all(n["running"] and n["swarm"] == "Ready" for n in nodes.values()), nodes
    assert nodes["worker-1"]["manager"] == "-"
    assert sorted(n["manager"] for name, n in nodes.items() if name != "worker-1") == [
        "Leader", "Reachable", "Reachable"]
    # The same, seen through the operator's TLS client as `up` told us to reach it.
    listed = cluster.docker("node", "ls", "--format", "{{.Hostname}} {{.Status}} {{.ManagerStatus}}").stdout
    assert "worker-1 Ready" in listed and listed.count("Ready") == 4


def _get(url: str, context: ssl.SSLContext | None) -> int:
    with urllib.request.urlopen(url, context=context, timeout=10) as resp:  # noqa: S310
        return int(resp.status)


def test_docker_api_needs_a_client_certificate(cluster: LocalCluster, tmp_path: Path) -> None:
    certs = Path(cluster.up["cert_path"])
    trusted = ssl.create_default_context(cafile=str(certs / "ca.pem"))
    with_cert = ssl.create_default_context(cafile=str(certs / "ca.pem"))
    with_cert.load_cert_chain(str(certs / "cert.pem"), str(certs / "key.pem"))
    assert _get(f"https://{SEED}:2376/version", with_cert) == 200
    with pytest.raises((ssl.SSLError, ConnectionError, urllib.error.URLError)):
        _get(f"https://{SEED}:2376/version", trusted)  # server verified, but no client certificate
    stranger = _stranger_context(tmp_path, certs / "ca.pem")
    with pytest.raises((ssl.SSLError, ConnectionError, urllib.error.URLError)):
        _get(f"https://{SEED}:2376/version", stranger)  # a certificate from another CA
    with pytest.raises(urllib.error.HTTPError) as plain:
        _get(f"http://{SEED}:2376/version", None)  # plain HTTP gets a TLS server's 400, no API
    assert plain.value.code == 400
    with pytest.raises(OSError):
        _get(f"http://{SEED}:2375/version", None)  # and nothing listens on the plain port


def _stranger_context(tmp: Path, server_ca: Path) -> ssl.SSLContext:
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "stranger")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1)).sign(key, hashes.SHA256()))
    (tmp / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                    serialization.NoEncryption()))
    ctx = ssl.create_default_context(cafile=str(server_ca))
    ctx.load_cert_chain(str(tmp / "cert.pem"), str(tmp / "key.pem"))
    return ctx


def test_nodes_are_distinct_machines_from_one_image(cluster: LocalCluster) -> None:
    """Hygiene pays off: each clone got its own machine-id and Docker engine identity."""
    info = cluster.docker("node", "ls", "--format", "{{.ID}}").stdout.split()
    assert len(set(info)) == 4
    from bakery.providers.local import cluster as local
    from bakery.providers.local import nodes

    rec = local.load(cluster.state_dir, cluster.name)
    ids = {nodes.exec_in(n, ["cat", "/etc/machine-id"]).stdout.strip() for n in rec.nodes}
    assert len(ids) == 4 and "" not in ids
    seen = {nodes.exec_in(n, ["docker", "info", "--format", "{{.ID}}"]).stdout.strip() for n in rec.nodes}
    assert len(seen) == 4
    done = nodes.exec_in(rec.node("worker-1"), ["cloud-init", "status", "--wait"], timeout=120)
    assert "done" in done.stdout, done.stdout


def test_preloaded_image_serves_on_a_host_mode_port(cluster: LocalCluster) -> None:
    cluster.docker("service", "create", "--detach", "--name", "web", "--mode", "global", "--no-resolve-image",
                   "--publish", "mode=host,published=18080,target=8080",
                   "local/busybox:1", "httpd", "-f", "-p", "8080", "-h", "/www")
    bodies = {}
    deadline = time.monotonic() + 120
    for address in ("10.213.0.10", "10.213.0.11", "10.213.0.12", "10.213.0.31"):
        while address not in bodies:
            try:
                with urllib.request.urlopen(f"http://{address}:18080/", timeout=5) as resp:  # noqa: S310
                    bodies[address] = resp.read().decode()
            except OSError:
                if time.monotonic() > deadline:
                    tasks = cluster.docker("service", "ps", "web", "--no-trunc", check=False).stdout
                    pytest.fail(f"nothing served on {address}:18080 after 120s:\n{tasks}")
                time.sleep(2)
    assert set(bodies.values()) == {"hello from bakery\n"}


def test_down_removes_everything_it_recorded(cluster: LocalCluster) -> None:
    record = json.loads(cluster.record.read_text())
    pids = [p["pid"] for p in record["services"].values()]
    pids += [n[k]["pid"] for n in record["nodes"] for k in ("nspawn", "init")]
    done = cluster.down()
    assert done.returncode == 0, done.stderr
    assert not cluster.record.exists()
    assert not Path(record["workdir"]).exists()
    links = subprocess.run(["ip", "-br", "link"], capture_output=True, text=True, check=True).stdout
    assert record["bridge"] not in links and "vb-seed" not in links
    rules = subprocess.run(["iptables", "-S", "FORWARD"], capture_output=True, text=True, check=True).stdout
    assert record["bridge"] not in rules
    from bakery.providers.local.state import proc_starttime

    assert [p for p in pids if proc_starttime(p) is not None] == []
    # The CAs stay: a later `up` reuses them.
    assert (cluster.state_dir / cluster.name / "client" / "cert.pem").exists()
