import pytest

from bakery.errors import UserError
from bakery.swarm.connect import DEFAULT_HOST, cluster_cert_dir, endpoint


@pytest.fixture
def certs(tmp_path):
    d = tmp_path / "state" / "prod" / "client"
    d.mkdir(parents=True)
    for f in ("ca.pem", "cert.pem", "key.pem"):
        (d / f).write_text("-")
    return tmp_path / "state"


def test_defaults_to_the_local_socket():
    assert endpoint(environ={}).host == DEFAULT_HOST


def test_docker_host_and_flag_precedence():
    assert endpoint(environ={"DOCKER_HOST": "tcp://a:2375"}).host == "tcp://a:2375"
    assert endpoint(host="tcp://b:2375", environ={"DOCKER_HOST": "tcp://a:2375"}).host == "tcp://b:2375"


def test_cluster_certs_mean_mutual_tls(certs):
    ep = endpoint(host="tcp://m1:2376", cluster="prod", state_dir=certs, environ={})
    assert ep.tls_verify and ep.key == certs / "prod" / "client" / "key.pem"
    assert "key" not in ep.describe()


def test_state_dir_from_environment(certs):
    assert cluster_cert_dir("prod", None, {"BAKERY_STATE_DIR": str(certs)}) == certs / "prod" / "client"
    assert cluster_cert_dir("x", None, {"XDG_STATE_HOME": "/s"}).as_posix() == "/s/bakery/x/client"


def test_docker_cert_path_and_tls_verify(certs):
    env = {"DOCKER_HOST": "tcp://m1:2376", "DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": str(certs / "prod" / "client")}
    ep = endpoint(environ=env)
    assert ep.tls_verify and ep.ca == certs / "prod" / "client" / "ca.pem"
    assert not endpoint(environ={**env, "DOCKER_TLS_VERIFY": ""}).tls_verify


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"cluster": "missing"}, "no client certificates"),
        ({"host": "unix:///run/docker.sock", "tls_verify": True}, "local socket"),
        ({"host": "tcp://m:2376", "tls_verify": True, "ca": "/nonexistent/ca.pem"}, "does not exist"),
    ],
)
def test_connection_mistakes_are_user_errors(tmp_path, kw, message):
    with pytest.raises(UserError, match=message):
        endpoint(state_dir=tmp_path, environ={}, **kw)
