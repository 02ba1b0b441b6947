"""Which engine `bakery deploy` talks to (the rule in bakery/swarm/connect.py), and how a failure to
reach it is put in words."""

from __future__ import annotations

import socket
import ssl
from pathlib import Path

import pytest

from bakery.errors import UserError
from bakery.swarm.connect import DEFAULT_HOST, ClusterAddress, Endpoint, _why, cluster_cert_dir, endpoint

PROD = ClusterAddress("prod", "tcp://seed.prod:2376", "bakery.yml")
DEV = ClusterAddress("dev", "tcp://seed.dev:2376", "dev.yml")


@pytest.fixture
def certs(tmp_path: Path) -> Path:
    for cluster in ("prod", "dev"):
        d = tmp_path / "state" / cluster / "client"
        d.mkdir(parents=True)
        for f in ("ca.pem", "cert.pem", "key.pem"):
            (d / f).write_text("-")
    return tmp_path / "state"


def _unread() -> ClusterAddress | None:
    raise AssertionError("the cluster definition was read although an earlier rule decided")


def test_defaults_to_the_local_socket():
    ep = endpoint(environ={})
    assert (ep.host, ep.tls_verify) == (DEFAULT_HOST, False)
    assert endpoint(environ={}, config=lambda: None).host == DEFAULT_HOST  # no definition found


@pytest.mark.parametrize(
    ("kw", "env", "config", "host", "certs_of", "origin"),
    [
        # 1. -H wins over everything; the config is not even read.
        ({"host": "tcp://b:2375"}, {"DOCKER_HOST": "tcp://a:2375"}, _unread, "tcp://b:2375", None, "-H"),
        # -H with --cluster: that address, the cluster's certificates.
        ({"host": "tcp://m1:2376", "cluster": "prod"}, {}, _unread, "tcp://m1:2376", "prod", "-H"),
        # 2. --cluster: the seed of its definition, when the one found is that cluster's ...
        ({"cluster": "prod"}, {"DOCKER_HOST": "tcp://a:2376"}, lambda: PROD, PROD.host, "prod", "seed in bakery.yml"),
        # ... else $DOCKER_HOST, still with the cluster's certificates.
        ({"cluster": "prod"}, {"DOCKER_HOST": "tcp://a:2376"}, lambda: DEV, "tcp://a:2376", "prod", "$DOCKER_HOST"),
        ({"cluster": "prod"}, {"DOCKER_HOST": "tcp://a:2376"}, lambda: None, "tcp://a:2376", "prod", "$DOCKER_HOST"),
        # 3. $DOCKER_HOST before a discovered definition.
        ({}, {"DOCKER_HOST": "tcp://a:2375"}, _unread, "tcp://a:2375", None, "$DOCKER_HOST"),
        # 4. a definition that was found: its seed and its cluster's certificates.
        ({}, {}, lambda: DEV, DEV.host, "dev", "cluster dev of dev.yml"),
        # 5. nothing: the local socket.
        ({}, {}, lambda: None, DEFAULT_HOST, None, "the default"),
    ],
)
def test_the_endpoint_rule(certs, kw, env, config, host, certs_of, origin):
    ep = endpoint(state_dir=certs, environ=env, config=config, **kw)
    assert ep.host == host
    assert ep.tls_verify is (certs_of is not None)
    if certs_of:
        client = certs / certs_of / "client"
        assert (ep.ca, ep.cert, ep.key) == (client / "ca.pem", client / "cert.pem", client / "key.pem")
    assert origin in ep.origin and origin in ep.where()


def test_cluster_certs_mean_mutual_tls(certs):
    ep = endpoint(host="tcp://m1:2376", cluster="prod", state_dir=certs, environ={})
    assert ep.tls_verify and ep.key == certs / "prod" / "client" / "key.pem"
    assert ep.where() == "tcp://m1:2376 (from -H, mutual TLS)"  # no key path in messages


def test_cluster_certificates_beat_docker_cert_path(certs):
    env = {"DOCKER_CERT_PATH": str(certs / "dev" / "client"), "DOCKER_TLS_VERIFY": "1"}
    assert endpoint(host="tcp://m:2376", cluster="prod", state_dir=certs, environ=env).ca == (
        certs / "prod" / "client" / "ca.pem"
    )


def test_state_dir_from_environment(certs):
    assert cluster_cert_dir("prod", None, {"BAKERY_STATE_DIR": str(certs)}) == certs / "prod" / "client"
    assert cluster_cert_dir("x", None, {"XDG_STATE_HOME": "/s"}).as_posix() == "/s/bakery/x/client"


def test_docker_cert_path_and_tls_verify(certs):
    env = {"DOCKER_HOST": "tcp://m1:2376", "DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": str(certs / "prod" / "client")}
    ep = endpoint(environ=env)
    assert ep.tls_verify and ep.ca == certs / "prod" / "client" / "ca.pem"
    assert not endpoint(environ={**env, "DOCKER_TLS_VERIFY": ""}).tls_verify


@pytest.mark.parametrize(
    ("kw", "config", "message"),
    [
        ({"host": "tcp://m:2376", "cluster": "missing"}, None, "no client certificates for cluster 'missing'"),
        ({"cluster": "prod"}, lambda: DEV, "no address for its engine"),
        ({"cluster": "prod"}, None, "no address for its engine"),
        # A definition found for a cluster that has no certificates yet: say which file chose it.
        ({}, lambda: ClusterAddress("new", "tcp://s:2376", "./bakery.yml"), "cluster new of ./bakery.yml"),
        ({"host": "unix:///run/docker.sock", "tls_verify": True}, None, "local socket"),
        ({"host": "tcp://m:2376", "tls_verify": True, "ca": "/nonexistent/ca.pem"}, None, "does not exist"),
    ],
)
def test_connection_mistakes_are_user_errors(certs, kw, config, message):
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(".", r"\.")):
        endpoint(state_dir=certs, environ={}, config=config, **kw)


def _wrapped(*chain: BaseException) -> BaseException:
    """An SDK-style exception chain, outermost first (each the __cause__ of the one before)."""
    for outer, inner in zip(chain, chain[1:], strict=False):
        outer.__cause__ = inner
    return chain[0]


SDK = "Error while fetching server API version: HTTPConnectionPool(host='m', port=1): Max retries exceeded"
TCP = Endpoint("tcp://m:2376", origin="from -H")
SOCK = Endpoint("unix:///nonexistent.sock", origin="from -H")


@pytest.mark.parametrize(
    ("exc", "ep", "hint"),
    [
        (RuntimeError('400 Client Error: Bad Request ("Client sent an HTTP request to an HTTPS server.")'), TCP,
         "only speaks mutual TLS"),
        (RuntimeError("SSLError(1, '[SSL: SSLV3_ALERT_BAD_CERTIFICATE] sslv3 alert bad certificate')"), TCP,
         "refused the client"),
        (RuntimeError("[SSL: TLSV13_ALERT_CERTIFICATE_REQUIRED] tlsv13 alert certificate required"), TCP,
         "asks for a client"),
        (RuntimeError("[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed"), TCP, "not signed by the given CA"),
        (RuntimeError("SSLEOFError(8, 'EOF occurred in violation of protocol (_ssl.c:2427)')"), TCP,
         "refusing the client"),
        (_wrapped(RuntimeError(SDK), ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number")), TCP,
         "does not speak TLS"),
        (_wrapped(RuntimeError(SDK), OSError("new connection"), ConnectionRefusedError(111, "Connection refused")), TCP,
         "connection refused, nothing listens there"),
        (_wrapped(RuntimeError(SDK), FileNotFoundError(2, "No such file or directory")), SOCK,
         "no socket /nonexistent.sock"),
        (_wrapped(RuntimeError(SDK), PermissionError(13, "Permission denied")), SOCK, "docker group"),
        (_wrapped(RuntimeError(SDK), socket.gaierror(-2, "Name or service not known")), TCP, "does not resolve"),
        (_wrapped(RuntimeError(SDK), TimeoutError("timed out")), TCP, "no answer in time"),
    ],
)
def test_failures_to_connect_say_what_to_do(exc, ep, hint):
    why = _why(exc, ep)
    assert hint in why
    assert "HTTPConnectionPool" not in why and "Max retries" not in why


def test_urllib3_reason_is_followed():
    class MaxRetryError(Exception):
        def __init__(self, reason: BaseException) -> None:
            super().__init__("Max retries exceeded")
            self.reason = reason

    exc = _wrapped(RuntimeError(SDK), MaxRetryError(ConnectionRefusedError(111, "Connection refused")))
    assert "connection refused" in _why(exc, TCP)


def test_cluster_of_a_local_up_is_reached_at_its_recorded_seed(tmp_path):
    import json

    from bakery.swarm.connect import endpoint

    (tmp_path / "lab" / "client").mkdir(parents=True)
    for name in ("ca.pem", "cert.pem", "key.pem"):
        (tmp_path / "lab" / "client" / name).write_text("x")
    (tmp_path / "lab" / "local.json").write_text(json.dumps({"nodes": [{"name": "seed", "role": "seed"}]}))
    ep = endpoint(cluster="lab", state_dir=tmp_path, environ={})
    assert ep.host == "tcp://10.213.0.10:2376" and "recorded" in ep.origin


@pytest.mark.parametrize(
    ("host", "message"),
    [
        ("::::", "is not an address"),
        ("tcp://[::1", "is not an address: Invalid IPv6 URL"),
        ("tcp://manager:99999", "Port out of range"),
        ("tcp://manager:0", "port 0 is not a port"),
        ("ssh://manager", "scheme 'ssh' is not supported"),
        ("unix://relative.sock", "needs an absolute path"),
        ("tcp://a b:2376", "is not HOST:PORT"),
        ("tcp://manager:2376/path", "is not HOST:PORT"),
        ("tcp://:2376", "is not HOST:PORT"),
    ],
)
def test_an_engine_address_that_is_not_one_is_a_user_error(host, message):
    with pytest.raises(UserError) as caught:
        endpoint(host=host, environ={})
    assert message in str(caught.value)
    assert "tcp://HOST:2376" in caught.value.fix


@pytest.mark.parametrize("host", ["tcp://[::1]:2376", "manager:2376", "tcp://10.0.0.5:2376", "unix:///run/d.sock"])
def test_engine_addresses_docker_takes_pass(host):
    assert endpoint(host=host, environ={}).host == host


def test_a_bad_docker_host_names_where_it_came_from():
    with pytest.raises(UserError, match=r"from \$DOCKER_HOST"):
        endpoint(environ={"DOCKER_HOST": "tcp://x:70000"})
