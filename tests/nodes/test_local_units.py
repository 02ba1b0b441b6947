"""The local provider's pure parts: mirror discovery, names and addresses, records. No root needed."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import pytest
import yaml

from bakery.errors import UserError
from bakery.providers.local import cluster, rootfs
from bakery.providers.local.state import ClusterRecord, NodeRecord, Proc, proc_starttime

DEB822 = """\
Types: deb
# http://snapshot.debian.org/archive/debian/20250520T000000Z
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main

Types: deb
URIs: http://security.example/debian-security
Suites: bookworm-security
Components: main
"""


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("debian.sources", DEB822, "http://mirror.example/debian"),
        ("x.list", "deb http://one.example/debian bookworm main\n", "http://one.example/debian"),
        ("x.list", "deb [arch=amd64] http://two.example/debian bookworm main\n", "http://two.example/debian"),
        ("x.list", "# deb http://no.example/debian bookworm main\ndeb http://3.example/d bookworm main\n",
         "http://3.example/d"),
    ],
)
def test_host_mirror(tmp_path: Path, name: str, text: str, expected: str) -> None:
    (tmp_path / name).write_text(text)
    assert rootfs.host_mirror(tmp_path) == expected


def test_no_bookworm_source_is_a_plain_error(tmp_path: Path) -> None:
    (tmp_path / "x.list").write_text("deb http://old.example/debian bullseye main\n")
    with pytest.raises(Exception, match="no apt source for Debian bookworm"):
        rootfs.host_mirror(tmp_path)


def test_names_and_fixed_addresses() -> None:
    names = cluster.node_names(3, 2, consul=True)
    assert names == [("seed", "seed"), ("manager-1", "manager"), ("manager-2", "manager"),
                     ("worker-1", "worker"), ("worker-2", "worker"), ("consul", "consul")]
    addresses = [cluster.address_for(n, r) for n, r in names]
    assert addresses[0] == "10.213.0.10" and len(set(addresses)) == len(addresses)
    reserved = dict(cluster.reservations())
    assert all(reserved[n] == a for (n, _), a in zip(names, addresses, strict=True))
    with pytest.raises(UserError):
        cluster.address_for("worker-20", "worker")


def test_cluster_config_lays_local_settings_over_the_users(tmp_path: Path) -> None:
    user = tmp_path / "bakery.yml"
    user.write_text("cluster: {name: mine}\ndocker:\n  daemon: {labels: {team: a}}\n")
    opts = cluster.UpOptions(cluster="local", managers=3, workers=1, consul=False, baked=False,
                             user_config=str(user), state_dir=tmp_path, cache_dir=tmp_path, timeout=1)
    data = yaml.safe_load(cluster.cluster_config(opts, cluster.node_names(3, 1, False), tmp_path).read_text())
    assert data["cluster"] == {"name": "local"}
    assert data["swarm"] == {"seed": "seed", "managers": ["manager-1", "manager-2"]}
    assert data["docker"]["install"] == "distro" and data["docker"]["apt_proxy"] == "http://10.213.0.1:3142"
    assert data["docker"]["daemon"] == {"labels": {"team": "a"}, "storage_driver": "vfs"}



@pytest.mark.parametrize(("role", "form", "expected"), [("seed", True, True), ("seed", False, False),
                                                       ("manager", True, None), ("worker", True, None)])
def test_only_the_seed_up_boots_forms_the_swarm(tmp_path: Path, role: str, form: bool, expected: bool | None) -> None:
    """`up` renders its seed with form; `grow` (form=False) never does, whatever the user's file says."""
    import json

    from testkit.render_util import cloud_config_parts, written_files

    user = tmp_path / "bakery.yml"
    user.write_text("swarm: {form: true}\n")
    opts = cluster.UpOptions(cluster="local", managers=3, workers=1, consul=False, baked=True,
                             user_config=str(user), state_dir=tmp_path, cache_dir=tmp_path, timeout=1)
    rec = ClusterRecord(cluster="local", workdir=str(tmp_path),
                        config=str(cluster.cluster_config(opts, cluster.node_names(3, 1, False), tmp_path)))
    name = {"seed": "seed", "manager": "manager-1", "worker": "worker-1"}[role]
    files = written_files(cloud_config_parts(cluster.render(rec, tmp_path / "state", name, role, form))[0])
    assert json.loads(files["/etc/bakery/join.json"]["content"]).get("form") is expected


def test_record_round_trip(tmp_path: Path) -> None:
    me = Proc.of(os.getpid())
    rec = ClusterRecord(cluster="c", workdir=str(tmp_path), bridge="bkr-c", bridge_created=True,
                        iptables=[["FORWARD", "-i", "bkr-c", "-o", "bkr-c", "-j", "ACCEPT"]],
                        services={"dnsmasq": me}, nodes=[NodeRecord("seed", "seed", str(tmp_path), me, me)])
    rec.save(tmp_path / "local.json")
    assert ClusterRecord.load(tmp_path / "local.json") == rec


def test_a_reused_pid_is_not_ours() -> None:
    me = Proc.of(os.getpid())
    assert me.alive()
    assert not Proc(os.getpid(), me.starttime + 1).alive()
    assert proc_starttime(2**22 + 12345) is None


def down_args(state_dir: Path, *extra: str) -> argparse.Namespace:
    from bakery import cli

    return cli.build_parser("down").parse_args(["down", "--cluster", "gone", "--state-dir", str(state_dir), *extra])


def test_down_with_no_record_is_nothing_to_remove(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Idempotent teardown: no record (a second `down`, a cluster that never was) is exit 0, and needs no root."""
    from bakery import cli

    assert cli.main(["down", "--cluster", "gone", "--state-dir", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines() == [
        f"bakery down: cluster gone: nothing to remove (no record of it in {tmp_path})"]
    assert cli.main(["down", "--cluster", "gone", "--state-dir", str(tmp_path), "--output", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"cluster": "gone", "result": "nothing-to-remove",
                                                   "removed": [], "problems": []}
    assert not (tmp_path / "gone").exists()  # looking created nothing


def test_status_lists_nodes_that_are_gone_as_unknown(tmp_path: Path) -> None:
    """No manager runs: every recorded node is still listed, not running, its swarm state Unknown."""
    dead = Proc(os.getpid(), Proc.of(os.getpid()).starttime + 1)  # a pid that is not this process any more
    rec = ClusterRecord(cluster="c", workdir=str(tmp_path), nodes=[
        NodeRecord("seed", "seed", str(tmp_path), dead, dead),
        NodeRecord("worker-1", "worker", str(tmp_path), dead, dead, stopped=True),
        NodeRecord("consul", "consul", str(tmp_path), dead, dead)])
    rows, answered_by = cluster.status(rec)
    assert answered_by is None
    assert rows == [
        {"name": "seed", "role": "seed", "address": "10.213.0.10", "running": False, "status": "Unknown",
         "availability": "", "manager_status": ""},
        {"name": "worker-1", "role": "worker", "address": "10.213.0.31", "running": False, "status": "Unknown",
         "availability": "", "manager_status": ""},
        {"name": "consul", "role": "consul", "address": "10.213.0.90", "running": False, "status": "",
         "availability": "", "manager_status": ""}]


def test_teardown_result_text_and_json(capsys: pytest.CaptureFixture[str]) -> None:
    from bakery.output import teardown_result

    assert teardown_result("down", "c", ["node seed", "bridge bkr-c"], [], looked="-") == 0
    assert capsys.readouterr().out == "cluster c removed\n"
    assert teardown_result("down", "c", ["node seed"], ["bridge bkr-c: busy"], looked="-", output="json") == 1
    captured = capsys.readouterr()
    assert json.loads(captured.out)["result"] == "incomplete"
    assert captured.err == "bakery down: could not remove: bridge bkr-c: busy\n"


def test_archives_need_the_baked_image(tmp_path: Path) -> None:
    archive = tmp_path / "app.tar"
    archive.write_bytes(b"")
    recipe = rootfs.Recipe(baked=False, mirror="http://deb.debian.org/debian", archives=(archive,))
    with pytest.raises(UserError, match="the plain image has none"):
        rootfs.ensure(recipe, tmp_path / "cache", lambda m: None)
    assert not (tmp_path / "cache").exists()
