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
import yaml
from testkit.nodes import LocalCluster, bakery, boot_cluster

pytestmark = pytest.mark.nodes

SEED = "10.213.0.10"
STACKS = Path(__file__).parent / "stacks"


@pytest.fixture(scope="module")
def cluster(baked_image: dict[str, Any], cache_dir: Path,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    yield from boot_cluster(tmp_path_factory.mktemp("cluster"), cache_dir, managers=3, workers=1)


def test_every_node_is_ready_with_its_role(cluster: LocalCluster) -> None:
    nodes = cluster.nodes()
    assert set(nodes) == {"seed", "manager-1", "manager-2", "worker-1"}
    assert all(n["running"] and n["status"] == "Ready" and n["availability"] == "Active"
               for n in nodes.values()), nodes
    assert nodes["worker-1"]["manager_status"] == ""
    assert sorted(n["manager_status"] for name, n in nodes.items() if name != "worker-1") == [
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


def test_converted_v2_stack_deploys_over_tls_where_its_hint_pins_it(cluster: LocalCluster, tmp_path: Path) -> None:
    """The operator's path from the host: a compose v2 file, `bakery convert`, `bakery deploy` over mutual TLS.

    Compose v2 has no way to ask for a host-mode port (its ports are strings;
    `bakery convert` keeps them in ingress mode) and the routing mesh does not
    answer here (no IPVS), so the converted port is switched to host mode: the
    one step between the two commands.
    """
    stack = tmp_path / "stack.yml"
    bakery("convert", str(STACKS / "pinned-web" / "docker-compose.yml"), "-o", str(stack))
    data = yaml.safe_load(stack.read_text())
    web = data["services"]["web"]
    assert web["deploy"]["placement"]["constraints"] == ["node.hostname==worker-1"]
    assert web["ports"] == ["18081:8080"]
    web["ports"] = [{"target": 8080, "published": 18081, "protocol": "tcp", "mode": "host"}]
    data["version"] = "3.2"
    stack.write_text(yaml.safe_dump(data))
    certs = Path(cluster.up["cert_path"])
    done = bakery("deploy", str(stack), "--name", "pinned", "--host", f"tcp://{SEED}:2376", "--tlsverify",
                  "--tlscacert", str(certs / "ca.pem"), "--tlscert", str(certs / "cert.pem"),
                  "--tlskey", str(certs / "key.pem"), "--timeout", "180", "--output", "json", timeout=300)
    assert json.loads(done.stdout)["result"]["ok"] is True
    placed = cluster.docker("service", "ps", "pinned_web", "--filter", "desired-state=running",
                            "--format", "{{.Node}} {{.CurrentState}}").stdout.split("\n")
    assert [line.split()[0] for line in placed if line] == ["worker-1"], placed
    assert _fetch("10.213.0.31", 18081) == "hello from bakery\n"
    with pytest.raises(OSError):  # host mode: only the node running the task publishes the port
        _fetch(SEED, 18081, tries=1)


def _fetch(address: str, port: int, tries: int = 30) -> str:
    for attempt in range(tries):
        try:
            with urllib.request.urlopen(f"http://{address}:{port}/", timeout=5) as resp:  # noqa: S310
                return str(resp.read().decode())
        except OSError:
            if attempt == tries - 1:
                raise
            time.sleep(2)
    raise AssertionError("unreachable")


def test_a_worker_certificate_gets_only_the_worker_token_and_no_token_leaks(cluster: LocalCluster) -> None:
    """On the worker: its join certificate gets the worker token from the seed's join service (2378)
    and a 403 for the manager's; on every node, neither token is in the journal, cloud-init's logs
    or a world-readable file under /etc, /var/lib/bakery or /run."""
    from bakery.providers.local import cluster as local
    from bakery.providers.local import nodes

    rec = local.load(cluster.state_dir, cluster.name)
    seed = rec.node("seed")
    tokens = {cls: nodes.exec_in(seed, ["docker", "swarm", "join-token", "-q", cls]).stdout.strip()
              for cls in ("worker", "manager")}
    assert all(t.startswith("SWMTKN-1-") for t in tokens.values())
    probe = (Path(__file__).parent / "node_scripts" / "token_probe.py").read_text()
    for node in rec.nodes:
        ask = {"tokens": tokens, "fetch": node.name == "worker-1"}
        done = nodes.exec_in(node, ["python3", "-c", probe], input=json.dumps(ask), timeout=120)
        assert done.returncode == 0, f"{node.name}: {done.stderr[-2000:]}"
        found = json.loads(done.stdout)
        if ask["fetch"]:
            assert found["fetch"]["worker"] == {"status": 200, "token_matches": True, "token_in_body": True}
            assert found["fetch"]["manager"] == {"status": 403, "token_matches": False, "token_in_body": False}
        where = {k: found[k] for k in ("journal_leaks", "log_leaks", "file_leaks")}
        assert where == {"journal_leaks": [], "log_leaks": [], "file_leaks": []}, f"{node.name}: {where}"
        # The places searched are not empty: the search could have found a token.
        assert found["journal_has_join"] and found["journal_lines"] > 100, node.name
        assert "/var/log/cloud-init.log" in found["cloud_init_logs"] and found["files_scanned"] > 100, found


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
