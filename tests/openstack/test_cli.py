"""The CLI wiring: `bakery bake --target openstack`, `bakery up/down/nodes --provider openstack`.

The whole `up` runs in-process against the fake cloud, and waits for Ready
through a real dockerd behind mutual TLS: the fake gives the seed's port the
engine's address (127.0.0.1), and the cluster's CA is the engine's.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from testkit import fakecloud

from bakery import cli

UP = ["up", "--provider", "openstack", "--flavor", "m1.small", "--image", "debian-12", "--network", "private",
      "--operator-cidr", "198.51.100.0/24"]


@pytest.fixture
def cloud():
    """The fake cloud, letting through what it does not answer: the Docker API of the engine on 127.0.0.1."""
    import requests_mock

    with requests_mock.Mocker(real_http=True) as m:
        yield fakecloud.FakeCloud(m)


@pytest.fixture
def fake(cloud, monkeypatch):
    from bakery.providers.openstack import cloud as cloud_mod

    monkeypatch.setattr(cloud_mod, "connect", lambda os_cloud: fakecloud.connect())
    cloud.default_statuses = ["ACTIVE"]
    return cloud


@pytest.mark.parametrize("argv", [["up", "--help"], ["down", "--help"], ["nodes", "--help"], ["bake", "--help"]])
def test_help_imports_neither_openstacksdk_nor_docker(argv):
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "bakery", *argv], capture_output=True,
                          text=True, cwd="/", check=True)
    loaded = {line.split("|")[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}
    assert not {m for m in loaded if m.split(".")[0] in ("openstack", "docker", "keystoneauth1")}
    assert "--provider openstack" in done.stdout or "--target openstack" in done.stdout


def one_line_error(capsys, argv, code):
    assert cli.main(argv) == code
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


def test_up_names_the_missing_flags(capsys, tmp_path):
    line = one_line_error(capsys, ["up", "--provider", "openstack", "--cluster", "prod", "--flavor", "x"], 2)
    assert line.startswith("bakery up: error: up --provider openstack needs --image, --network, --operator-cidr")


@pytest.mark.parametrize("cidr, message", [("0.0.0.0/0", "opens the Docker API to the whole internet"),
                                           ("198.51.100.7/24", "has host bits set")])
def test_operator_cidr_is_checked(capsys, cidr, message):
    argv = [*UP[:-1], cidr, "--cluster", "prod"]
    assert message in one_line_error(capsys, argv, 2)


def test_cluster_name_is_never_guessed(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for argv in (UP, ["down", "--provider", "openstack"], ["nodes", "--provider", "openstack"]):
        assert "needs a cluster name" in one_line_error(capsys, argv, 2)


def test_local_only_flags_are_refused_for_openstack(capsys):
    assert "are for --provider local" in one_line_error(capsys, [*UP, "--cluster", "p", "--unbaked"], 2)


def test_bake_target_openstack_dry_run(fake, capsys):
    argv = ["bake", "--target", "openstack", "--base-image", "debian-12", "--flavor", "m1.small", "--network",
            "private", "--dry-run", "--output", "json"]
    assert cli.main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["plan"][0] == "resolve flavor 'm1.small', base image 'debian-12', network 'private'"
    assert fake.m.request_history == []


def test_bake_snapshot_wait_is_a_flag(fake, capsys):
    argv = ["bake", "--target", "openstack", "--base-image", "debian-12", "--flavor", "m1.small", "--network",
            "private", "--dry-run", "--output", "json", "--snapshot-timeout", "900", "--build-timeout", "1200"]
    assert cli.main(argv) == 0
    plan = json.loads(capsys.readouterr().out)["plan"]
    assert any("wait up to 1200s for it to power off" in step for step in plan)
    assert any("wait up to 900s for it to become active" in step for step in plan)


def test_bake_target_openstack_refuses_local_flags(capsys):
    argv = ["bake", "--target", "openstack", "--plain", "--base-image", "b", "--flavor", "f", "--network", "n"]
    assert "are for --target local" in one_line_error(capsys, argv, 2)


def test_down_without_anything_tagged_is_nothing_to_remove(fake, capsys):
    assert cli.main(["down", "--provider", "openstack", "--cluster", "ghost"]) == 0
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines() == [
        "bakery down: cluster ghost: nothing to remove (nothing on this cloud carries the tag bakery.cluster=ghost)"]


def down_json(cluster):
    """`bakery down --output json`."""
    return cli.main(["down", "--provider", "openstack", "--cluster", cluster, "--output", "json"])


def test_down_twice_json_removed_then_nothing(fake, clock, capsys, tmp_path):
    from bakery import config
    from bakery.providers.openstack import up as ou

    opts = ou.UpOptions(cluster="prod", flavor="m1.small", image="debian-12", network="private",
                        operator_cidr="198.51.100.0/24", managers=1, workers=1, poll=1)
    ou.up(fakecloud.connect(), opts, config.build({}), tmp_path / "state", lambda m: None, clock)
    servers = sorted(fake.servers)
    capsys.readouterr()
    assert down_json("prod") == 0
    first = json.loads(capsys.readouterr().out)
    assert first["cluster"] == "prod" and first["result"] == "removed" and first["problems"] == []
    kinds = [r.rsplit(" ", 1) for r in first["removed"]]  # "KIND ID", newest first
    assert sorted(ident for kind, ident in kinds if kind == "server") == servers
    assert {kind for kind, _ in kinds} == {"server", "port", "server group", "security group"}
    assert down_json("prod") == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out) == {"cluster": "prod", "result": "nothing-to-remove", "removed": [],
                                        "problems": []}
    assert [line for line in captured.err.splitlines() if "nothing to remove" in line] == [
        "bakery down: cluster prod: nothing to remove (nothing on this cloud carries the tag bakery.cluster=prod)"]


@pytest.mark.engine
def test_up_waits_for_ready_through_tls_then_nodes_then_down(fake, tls_engine, capsys, tmp_path):
    cfg = tmp_path / "cluster.yml"
    cfg.write_text(f"cluster:\n  name: {tls_engine.cluster}\ndocker:\n  api_port: {tls_engine.port}\n")
    fake.port_ip = "127.0.0.1"  # the seed's port: where the engine listens
    common = ["--config", str(cfg), "--state-dir", str(tls_engine.state_dir)]
    assert cli.main([*UP, *common, "--managers", "1", "--workers", "0", "--output", "json"]) == 0
    captured = capsys.readouterr()
    out = json.loads(captured.out)
    assert out["docker_host"] == f"tcp://127.0.0.1:{tls_engine.port}"
    assert out["swarm"] == [{"hostname": "tlstest-seed", "role": "manager", "state": "ready", "manager": "Leader"}]
    assert [n["name"] for n in out["nodes"]] == ["tlstest-seed"]
    assert "1/1 nodes Ready: tlstest-seed" in captured.err
    assert cli.main(["nodes", "--provider", "openstack", *common, "--output", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)["nodes"]
    assert rows[0].pop("cert_days_left") > 800 and rows[0].pop("cert_not_after")  # bakery nodes' certificate columns
    assert rows == [{"name": "tlstest-seed", "role": "seed", "address": "127.0.0.1", "status": "ACTIVE",
                     "swarm": "ready", "manager": "Leader"}]
    assert cli.main(["down", "--provider", "openstack", *common]) == 0
    assert not fake.neutron["ports"] and not fake.neutron["security-groups"] and not fake.server_groups
    assert all(s.get("_deleted") for s in fake.servers.values())


def _cluster_with_record(clock, tmp_path):
    """A 1-manager, 1-worker cluster `prod` on the fake cloud, and the options `up` records for `roll`."""
    from bakery import config
    from bakery.providers.openstack import daytwo
    from bakery.providers.openstack import up as ou

    state = tmp_path / "state"
    opts = ou.UpOptions(cluster="prod", flavor="m1.small", image="debian-12", network="private",
                        operator_cidr="198.51.100.0/24", managers=1, workers=1, poll=1)
    ou.up(fakecloud.connect(), opts, config.build({}), state, lambda m: None, clock)
    daytwo.save_options(opts, state)
    return state


def test_down_forgets_the_roll_journal_and_the_recorded_options(fake, clock, capsys, tmp_path):
    """A new cluster of the same name must not continue the old one's roll, nor boot with its options."""
    from bakery import fleet
    from bakery.providers.openstack import daytwo

    state = _cluster_with_record(clock, tmp_path)
    journal = daytwo.state_file("prod", state, daytwo.JOURNAL)
    fleet.write_journal(journal, "prod", "debian-12", [], {"worker-1": "worker-2"})
    record = daytwo.state_file("prod", state, daytwo.RECORD)
    assert journal.exists() and record.exists()
    assert cli.main(["down", "--provider", "openstack", "--cluster", "prod", "--state-dir", str(state)]) == 0
    assert not journal.exists() and not record.exists()


@pytest.mark.parametrize("text", ["{", '{"flavor": 1}', "[]"])
def test_a_damaged_record_of_up_is_one_line_not_a_traceback(fake, capsys, tmp_path, text):
    from bakery.providers.openstack import daytwo

    state = tmp_path / "state"
    daytwo.state_file("prod", state, daytwo.RECORD).write_text(text)
    code = cli.main(["roll", "--provider", "openstack", "--cluster", "prod", "--state-dir", str(state)])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert "openstack.json is not a record of `bakery up` bakery can read" in err and "remove it" in err


def test_a_damaged_roll_journal_is_one_line_not_a_traceback(fake, clock, capsys, tmp_path):
    from bakery.providers.openstack import daytwo

    state = _cluster_with_record(clock, tmp_path)
    daytwo.state_file("prod", state, daytwo.JOURNAL).write_text('{"image": "x", "pairs": {"worker-1": "seed"}}')
    code = cli.main(["roll", "--provider", "openstack", "--cluster", "prod", "--state-dir", str(state)])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and "replacements bakery never chooses (worker-1 -> seed)" in err


@pytest.mark.parametrize("command", ["up", "roll"])
def test_drain_and_ready_timeouts_reach_the_day_two_run(fake, clock, capsys, tmp_path, monkeypatch, command):
    from bakery import fleet
    from bakery.providers.openstack import daytwo

    state = _cluster_with_record(clock, tmp_path)
    seen = []
    monkeypatch.setattr(daytwo, "converge", lambda driver, dry, timeouts: seen.append(timeouts) or (fleet.Plan(), []))
    monkeypatch.setattr(daytwo, "roll", lambda driver, only, dry, timeouts, image: seen.append(timeouts) or (
        fleet.Plan(), [], "debian-12"))
    argv = [command, "--provider", "openstack", "--cluster", "prod", "--state-dir", str(state),
            "--drain-timeout", "7", "--timeout", "11"]
    if command == "up":
        argv += ["--flavor", "m1.small", "--image", "debian-12", "--network", "private",
                 "--operator-cidr", "198.51.100.0/24"]
    assert cli.main(argv) == 0, capsys.readouterr().err
    assert seen == [fleet.Timeouts(ready=11, drain=7)]


def test_a_cluster_name_too_long_for_its_servers_hostnames_is_refused_up_front(capsys):
    name = "a" * 53
    assert cli.main([*UP, "--cluster", name]) == 2
    err = capsys.readouterr().err
    assert f"cluster name '{name}' is 53 characters" in err and "(use at most 52 characters)" in err


def test_format_ignition_is_local_only_and_not_unbaked(capsys, tmp_path):
    line = one_line_error(capsys, [*UP, "--cluster", "prod", "--format", "ignition"], 2)
    assert line.startswith("bakery up: error: --format ignition is for --provider local"), line
    line = one_line_error(capsys, ["up", "--provider", "local", "--cluster", "ig", "--state-dir", str(tmp_path),
                                   "--format", "ignition", "--unbaked"], 2)
    assert line.startswith("bakery up: error: --format ignition with --unbaked"), line
    assert not (tmp_path / "ig").exists()


def test_a_local_command_on_a_cluster_made_on_openstack_names_the_provider(capsys, tmp_path):
    (tmp_path / "prod").mkdir()
    (tmp_path / "prod" / "openstack.json").write_text("{}\n")
    for argv in (["down"], ["nodes"], ["up", "--workers", "1"]):
        line = one_line_error(capsys, [*argv, "--cluster", "prod", "--state-dir", str(tmp_path)], 2)
        assert "was made by `bakery up --provider openstack`" in line and "--provider openstack" in line, line
