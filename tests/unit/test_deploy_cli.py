"""`bakery deploy` where no engine is needed or none is there: the files are read and checked before
anything connects, --dry-run plans for an empty swarm, and an unreachable engine is one line, exit 4.
No dockerd is used: every engine address here is a socket that does not exist or a closed loopback port."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import pytest

from bakery.cli import main

STACK = """\
version: "3.8"
services:
  web:
    image: local/busybox:1
    command: ["sleep", "3600"]
    networks: [front]
    volumes: [data:/data]
    secrets: [token]
    configs: [motd]
networks:
  front: {}
volumes:
  data: {}
secrets:
  token:
    file: ./token.txt
configs:
  motd:
    file: ./token.txt
"""
KINDS = ["network", "volume", "secret", "config", "service"]
RAW = ("Traceback", "HTTPConnectionPool", "Max retries", "urllib3", "Connection aborted", "NewConnectionError")


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A directory with the stack, no engine anywhere: DOCKER_HOST names a socket that does not exist,
    and the default socket is moved there too (the machine may have one)."""
    (tmp_path / "stack.yml").write_text(STACK)
    (tmp_path / "token.txt").write_text("s3cret\n")
    for var in ("DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH", "BAKERY_CONFIG"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/nonexistent.sock")
    monkeypatch.setenv("BAKERY_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setattr(importlib.import_module("bakery.swarm.connect"), "DEFAULT_HOST", f"unix://{tmp_path}/none.sock")
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def no_connect(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("deploy connected before the file was read and checked")

    monkeypatch.setattr("bakery.swarm.connect", refuse)
    monkeypatch.setattr("bakery.swarm.endpoint", refuse)


def deploy(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["deploy", *argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("output", ["text", "json"])
def test_a_missing_file_is_exit_2_before_connecting(here, no_connect, capsys, output):
    code, out, err = deploy(capsys, "nofile.yml", "--dry-run", "--output", output)
    assert code == 2, err
    assert "nofile.yml" in err and not any(r in err for r in RAW)
    if output == "json":
        assert json.loads(out)["exit_code"] == 2


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ('version: "3.8"\nservices:\n  web:\n    image: x\n    ports: [ "80:80"\n', "bad.yml:5:12"),
        ('version: "3.8"\nservices:\n  web:\n    image: x\n    mem_limit: 12x\n', "bad.yml:5"),
        ('version: "3.8"\nservices:\n  web:\n    image: x\n    secrets: [nope]\n', "bad.yml"),
    ],
)
def test_a_bad_file_is_exit_2_with_its_line_before_connecting(here, no_connect, capsys, text, where):
    (here / "bad.yml").write_text(text)
    code, _, err = deploy(capsys, "bad.yml", "--dry-run")
    assert code == 2, err
    assert err.startswith(f"bakery deploy: error: {where}"), err
    assert not any(r in err for r in RAW)


@pytest.mark.parametrize(
    "engine",
    [
        [],  # $DOCKER_HOST: a socket that does not exist
        ["-H", "tcp://127.0.0.1:1"],  # nothing listens on port 1
        ["-H", "unix:///nonexistent.sock"],
    ],
)
def test_dry_run_without_an_engine_plans_for_an_empty_swarm(here, capsys, engine):
    code, out, err = deploy(capsys, "stack.yml", "--name", "app", "--dry-run", *engine)
    assert code == 0, err
    lines = out.splitlines()
    assert [line.split()[:2] for line in lines] == [["create", k] for k in KINDS]
    assert "create    service app_web" in lines
    assert "no engine reachable, so the plan assumes an empty swarm" in err
    assert not any(r in err for r in RAW)


def test_dry_run_without_any_engine_setting(here, capsys, monkeypatch):
    """No -H, no DOCKER_HOST, no --cluster, no bakery.yml, and no local socket."""
    monkeypatch.delenv("DOCKER_HOST")
    code, out, err = deploy(capsys, "stack.yml", "--dry-run", "--output", "json")
    assert code == 0, err
    doc = json.loads(out)  # one document, nothing before it
    assert (doc["ok"], doc["exit_code"]) == (True, 0)
    assert [c["action"] for c in doc["plan"]] == ["create"] * 5
    assert [c["kind"] for c in doc["plan"]] == KINDS
    assert doc["engine"]["reachable"] is False and "none.sock" in doc["engine"]["problem"]
    assert "the default" in doc["engine"]["origin"]
    assert any("empty swarm" in f["message"] for f in doc["findings"])
    assert "no engine reachable" in err


@pytest.mark.parametrize(
    ("engine", "said"),
    [
        (["-H", "tcp://127.0.0.1:1"], "tcp://127.0.0.1:1 (from -H): connection refused"),
        (["-H", "unix:///nonexistent.sock"], "no socket /nonexistent.sock"),
        ([], "(from $DOCKER_HOST): no socket"),
    ],
)
@pytest.mark.parametrize("output", ["text", "json"])
def test_an_unreachable_engine_is_one_line_and_exit_4(here, capsys, engine, said, output):
    code, out, err = deploy(capsys, "stack.yml", "--output", output, *engine)
    assert code == 4, err
    assert err.count("\n") == 1 and said in err and "-H ADDR" in err, err
    assert not any(r in err for r in RAW)
    if output == "json":
        doc = json.loads(out)  # the error only: no partial plan before it
        assert (doc["ok"], doc["exit_code"]) == (False, 4) and said in doc["error"]["message"]
    else:
        assert out == ""


GLOB = (
    'version: "2"\nservices:\n  web:\n    image: local/busybox:1\n'
    '    environment:\n      - "constraint:node==web*"\n'
)


def test_a_glob_hint_without_an_engine_plans_its_label_constraint(here, capsys):
    """A pattern converts to a node-label constraint with no node list at all: the dry run plans
    it for an empty swarm and says the labelling was not planned. The `docker node update`
    advice for docker stack deploy users is no finding of deploy's (it labels the nodes itself)."""
    (here / "glob.yml").write_text(GLOB)
    code, out, err = deploy(capsys, "glob.yml", "--dry-run", "--output", "json", "-H", "tcp://127.0.0.1:1")
    assert code == 0, err
    doc = json.loads(out)
    assert [c["action"] for c in doc["plan"]] == ["create", "create"]
    codes = {f["code"] for f in doc["findings"]}
    assert "compose.hint.node_label" in codes and "compose.hint.label_nodes" not in codes
    assert any("the nodes pattern hints label were not checked" in f["message"] for f in doc["findings"])


def test_a_file_without_glob_hints_never_asks_for_nodes(here, capsys):
    """Exact hints convert to exact constraints, with no engine at all."""
    (here / "hint.yml").write_text(GLOB.replace("web*", "web1"))
    code, out, err = deploy(capsys, "hint.yml", "--dry-run")
    assert code == 0, err
    assert "create    service" in out


def test_a_found_cluster_definition_chooses_the_engine(here, capsys, monkeypatch):
    """No -H or DOCKER_HOST: ./bakery.yml's seed, with that cluster's client certificates."""
    monkeypatch.delenv("DOCKER_HOST")
    (here / "bakery.yml").write_text("cluster:\n  name: lab\nswarm:\n  seed: 127.0.0.1\ndocker:\n  api_port: 1\n")
    code, _, err = deploy(capsys, "stack.yml", "--dry-run")
    assert code == 2, err  # bakery certs has not run for lab yet
    assert "no client certificates for cluster 'lab'" in err and "cluster lab of bakery.yml" in err
    assert main(["certs"]) == 0
    capsys.readouterr()
    code, out, err = deploy(capsys, "stack.yml", "--dry-run")
    assert code == 0, err
    assert "tcp://127.0.0.1:1 (from cluster lab of bakery.yml, mutual TLS)" in err
    code, _, err = deploy(capsys, "stack.yml", "--dry-run", "--cluster", "lab")
    assert code == 0 and "from --cluster lab: the seed in bakery.yml" in err, err


def test_cluster_without_an_address_is_exit_2(here, capsys, monkeypatch):
    monkeypatch.delenv("DOCKER_HOST")
    code, _, err = deploy(capsys, "stack.yml", "--cluster", "prod")
    assert code == 2 and "--cluster prod: no address" in err, err


def test_ctrl_c_before_applying_is_a_json_error_too(here, capsys, monkeypatch):
    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("bakery.swarm.build", interrupted)
    code, out, err = deploy(capsys, "stack.yml", "--output", "json")
    assert code == 130
    assert json.loads(out)["exit_code"] == 130 and "interrupted before anything was changed" in err
