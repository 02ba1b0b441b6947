"""Conversion rules, one row per trap: input service -> what the v3 service holds."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from bakery.compose import convert_files
from bakery.errors import ComposeError


def convert(tmp_path: Path, body: str, version: str = "2.4", top: str = "", **kw: Any):
    text = f'version: "{version}"\nservices:\n  s:\n' + "".join(f"    {line}\n" for line in body.splitlines())
    path = tmp_path / "docker-compose.yml"
    path.write_text(text + top)
    return convert_files([path], environ=kw.pop("environ", {}), **kw)


def dig(data: Any, path: str) -> Any:
    for part in path.split("."):
        data = data[int(part)] if isinstance(data, list) else data[part]
    return data


@pytest.mark.parametrize(
    "body, path, expected",
    [
        ("image: a", "deploy.restart_policy", {"condition": "none"}),
        ("image: a\nrestart: \"no\"", "deploy.restart_policy", {"condition": "none"}),
        ("image: a\nrestart: always", "deploy.restart_policy", {"condition": "any"}),
        ("image: a\nrestart: unless-stopped", "deploy.restart_policy", {"condition": "any"}),
        ("image: a\nrestart: on-failure", "deploy.restart_policy", {"condition": "on-failure"}),
        ("image: a\nrestart: on-failure:4", "deploy.restart_policy", {"condition": "on-failure", "max_attempts": 4}),
        ("image: a\nscale: 3", "deploy.replicas", 3),
        ("image: a\nmem_limit: 1g", "deploy.resources.limits.memory", "1g"),
        ("image: a\nmem_limit: 1048576", "deploy.resources.limits.memory", "1m"),
        ("image: a\nmem_reservation: 64m", "deploy.resources.reservations.memory", "64m"),
        ("image: a\ncpus: 1.5", "deploy.resources.limits.cpus", "1.5"),
        ("image: a\ncpu_quota: 50000", "deploy.resources.limits.cpus", "0.5"),
        ("image: a\ncpu_quota: 50000\ncpu_period: 200000", "deploy.resources.limits.cpus", "0.25"),
        ("image: a\ncpus: 2\ncpu_quota: 50000", "deploy.resources.limits.cpus", "2"),
        ("image: a\npids_limit: 50", "deploy.resources.limits.pids", 50),
        ("image: a\nenvironment: [B=2, A=1]", "environment", {"A": "1", "B": "2"}),
        ("image: a\nenvironment: [\"constraint:node==n1\", A=1]", "environment", {"A": "1"}),
        ("image: a\nenvironment: [\"constraint:node==n1\"]", "deploy.placement.constraints", ["node.hostname==n1"]),
        ("image: a\nenvironment: [\"constraint:disk!=hdd\"]", "deploy.placement.constraints",
         ["engine.labels.disk!=hdd"]),
        ("image: a\nlabels: {com.docker.swarm.constraints: '[\"node==n1\"]', k: v}", "labels", {"k": "v"}),
        ("image: a\nplatform: linux/arm64", "deploy.placement.constraints",
         ["node.platform.arch==aarch64", "node.platform.os==linux"]),
        ("image: a\nports: [\"127.0.0.1:80:80\"]", "ports", ["80:80"]),
        ("image: a\nports: [80]", "ports", ["80"]),
        ("image: a\nextra_hosts: {b: 1.2.3.4, a: 5.6.7.8}", "extra_hosts", ["a:5.6.7.8", "b:1.2.3.4"]),
        ("image: a\ntmpfs: /run", "volumes", [{"type": "tmpfs", "target": "/run"}]),
        ("image: a\ntmpfs: [\"/run:size=1m,mode=1777\"]", "volumes.0.tmpfs.size", 1 << 20),
        ("image: a\ninit: true", "init", True),
        ("image: a\nsysctls: [net.core.somaxconn=1024]", "sysctls", {"net.core.somaxconn": "1024"}),
        ("image: a\nnetwork_mode: host", "networks", ["host"]),
        ("build: .\nimage: reg/a:1", "image", "reg/a:1"),
        ("image: a\ncommand: echo $$HOME", "command", ["echo", "$$HOME"]),
    ],
)
def test_service_rules(tmp_path, body, path, expected):
    result = convert(tmp_path, body)
    assert dig(result.stack["services"]["s"], path) == expected


@pytest.mark.parametrize(
    "body, version",
    [
        ("image: a", "3.0"),
        ("image: a\ninit: true", "3.7"),
        ("image: a\npids_limit: 5", "3.9"),
        ("image: a\nisolation: default", "3.5"),
        ("image: a\nhealthcheck: {test: [CMD, 'true'], start_period: 5s}", "3.4"),
        ("image: a\ntmpfs: /run", "3.2"),
        ("image: a\ntmpfs: \"/run:size=1m\"", "3.6"),
        ("image: a\nx-foo: 1", "3.7"),
    ],
)
def test_lowest_version_that_holds_it(tmp_path, body, version):
    # 2.x input also gets bakery's update/rollback config written out, which needs 3.7.
    assert convert(tmp_path, body).version == max(version, "3.7")


@pytest.mark.parametrize(
    "body, code",
    [
        ("image: a\nprivileged: true", "compose.key.unsupported"),
        ("image: a\nlinks: [s]", "compose.key.approximated"),
        ("image: a\nports: [\"1.2.3.4:80:80\"]", "compose.ports.host_ip"),
        ("image: a\nports: [\"80\"]", "compose.ports.random"),
        ("image: a\nvolumes: [\"/srv:/srv\"]", "compose.volumes.bind"),
        ("image: a\nenvironment: [\"affinity:container==b\"]", "compose.hint.affinity"),
        ("image: a\nenvironment: [\"constraint:node==~b\"]", "compose.hint.soft"),
        ("image: a\nimage: ${NOPE}", None),
    ],
)
def test_warnings(tmp_path, body, code):
    if code is None:
        with pytest.raises(ComposeError, match="duplicate key"):
            convert(tmp_path, body)
        return
    result = convert(tmp_path, body)
    assert code in {f.code for f in result.report.warnings}


@pytest.mark.parametrize(
    "body, top, needle",
    [
        ("build: .", "", "build but no image"),
        ("command: x", "", "no image"),
        ("image: a\nrestart: sometimes", "", "is not a restart policy"),
        ("image: a\nmem_limit: 12x", "", "'12x' is not a size"),
        ("image: a\ncpus: -1", "", "is not a CPU count"),
        ("image: a\nports: [\"a:b\"]", "", "is not a port mapping"),
        ("image: a\nvolumes: [\"data:/d\"]", "", "volume 'data' is not declared"),
        ("image: a\nnetworks: [front]", "", "network 'front' is not declared"),
        ("image: a\ndepends_on: [nope]", "", "depends on unknown service 'nope'"),
        ("image: a\nenvironment: [\"constraint:node==/(/\"]", "", "bad regular expression"),
        ("image: a\nenvironment: [\"constraint:node=web\"]", "", "cannot read the hint"),
        ("image: a\nlabels: {com.docker.swarm.constraints: 'node==x'}", "", "must hold a JSON array"),
    ],
)
def test_refusals(tmp_path, body, top, needle):
    with pytest.raises(ComposeError) as exc:
        convert(tmp_path, body, top=top)
    assert needle in str(exc.value)
    assert exc.value.line is not None and exc.value.fix


def test_image_prefix(tmp_path):
    result = convert(tmp_path, "build: .", image_prefix="reg.example/app/")
    assert result.stack["services"]["s"]["image"] == "reg.example/app/s"


def test_depends_on_conditions_go_to_x_bakery(tmp_path):
    top = ""
    text = ('version: "2.1"\nservices:\n  web:\n    image: a\n    depends_on:\n      db: {condition: service_healthy}\n'
            "      cache: {condition: service_started}\n  db: {image: b}\n  cache: {image: c}\n")
    path = tmp_path / "c.yml"
    path.write_text(text + top)
    result = convert_files([path], environ={})
    assert result.stack["services"]["web"]["depends_on"] == ["cache", "db"]
    assert result.stack["x-bakery"] == {"depends_on": {"web": {"cache": "service_started", "db": "service_healthy"}}}
    assert result.version == "3.7"


def test_networks_and_volumes_top_level(tmp_path):
    top = ("networks:\n  front: {driver: bridge, ipam: {config: [{subnet: 10.1.0.0/24, gateway: 10.1.0.1}]}}\n"
           "volumes:\n  data: {driver: local}\n")
    result = convert(tmp_path, "image: a\nnetworks: [front]\nvolumes: [\"data:/d\"]", top=top)
    assert result.stack["networks"] == {"front": {"driver": "overlay", "ipam": {"config": [{"subnet": "10.1.0.0/24"}]}}}
    codes = {f.code for f in result.report.warnings}
    assert {"compose.network.ipam", "compose.volumes.local"} <= codes


def test_v3_input_keeps_swarm_semantics(tmp_path):
    result = convert(tmp_path, "image: a\ndeploy: {mode: global}", version="3.2")
    # Docker's restart default is written out (the file says what deploys); the rest is as given.
    assert result.stack["services"]["s"]["deploy"] == {"mode": "global", "restart_policy": {"condition": "any"}}
    assert result.source_version == "3.2" and result.version == "3.0"


def test_same_input_same_bytes(tmp_path):
    from bakery.compose import dumps

    body = "image: a\nenvironment: {Z: 1, A: 2}\nlabels: {z: 1, a: 2}\nports: [\"9:9\", \"1:1\"]"
    assert dumps(convert(tmp_path, body).stack) == dumps(convert(tmp_path, body).stack)


def test_strict_raises_with_the_result_attached(tmp_path):
    from bakery.compose import StrictWarnings
    from bakery.errors import EXIT_STRICT

    with pytest.raises(StrictWarnings) as exc:
        convert(tmp_path, "image: a\nprivileged: true", strict=True)
    assert exc.value.exit_code == EXIT_STRICT
    assert exc.value.result.report.warnings[0].code == "compose.key.unsupported"
    assert convert(tmp_path, "image: a\nrestart: always", strict=True).report.warnings == []


@pytest.mark.parametrize(
    "services, cycle",
    [
        ("  a: {image: x, depends_on: [b]}\n  b: {image: x, depends_on: [a]}\n", "a -> b -> a"),
        ("  a: {image: x, depends_on: [a]}\n", "a -> a"),
        ("  a: {image: x, depends_on: [b]}\n  b: {image: x, depends_on: [c]}\n  c: {image: x, depends_on: [b]}\n",
         "b -> c -> b"),
    ],
)
def test_depends_on_cycles_are_refused(tmp_path, services, cycle):
    path = tmp_path / "c.yml"
    path.write_text('version: "2"\nservices:\n' + services)
    with pytest.raises(ComposeError) as exc:
        convert_files([path], environ={})
    assert f"depends_on cycle: {cycle}" in str(exc.value)
    assert exc.value.line is not None


@pytest.mark.parametrize(
    "env, code",
    [("[]", "compose.volumes.local"), ('["constraint:node==db1"]', "compose.volumes.local_pinned"),
     ('["constraint:node!=db1"]', "compose.volumes.local")],
)
def test_local_volume_warning_unless_pinned(tmp_path, env, code):
    result = convert(tmp_path, f'image: a\nenvironment: {env}\nvolumes: ["data:/d"]', top="volumes:\n  data: {}\n")
    assert code in {f.code for f in result.report.findings}
    assert (code == "compose.volumes.local") == any(f.code == code for f in result.report.warnings)


@pytest.mark.parametrize(("scale", "deploy"), [
    ("scale: 3\n", {"replicas": 3, "placement": {"max_replicas_per_node": 1}}),
    ("", {"mode": "global"}),
])
def test_anti_affinity_keeps_the_count(tmp_path, scale, deploy):
    result = convert(tmp_path, f'image: a\nrestart: always\n{scale}environment: ["affinity:container!=*s*"]')
    got = result.stack["services"]["s"]["deploy"]
    assert {k: got[k] for k in deploy} == deploy
    assert "mode" not in got or not scale


def test_a_link_alias_becomes_a_network_alias(tmp_path):
    path = tmp_path / "c.yml"
    path.write_text('version: "2"\nservices:\n  web: {image: a, links: ["db:database"]}\n  db: {image: b}\n')
    result = convert_files([path], environ={})
    assert result.stack["services"]["db"]["networks"] == {"default": {"aliases": ["database"]}}
    db = next(s for s in result.model.services if s.name == "db")
    assert [(a.network, a.aliases) for a in db.networks] == [("default", ("database",))]


@pytest.mark.parametrize(("body", "message"), [
    ('image: "${NO_IMAGE}"', "needs an image (variable NO_IMAGE not set)"),
    ('image: a\nvolumes: ["${NO_DIR}:/etc/x"]', "empty source or target (variable NO_DIR not set)"),
    ('image: a\nports: ["${NO_PORT}:${NO_PORT}"]', "not a port mapping (variable NO_PORT not set)"),
])
def test_a_value_emptied_by_an_unset_variable_names_it(tmp_path, body, message):
    with pytest.raises(ComposeError, match=re.escape(message)) as err:
        convert(tmp_path, body)
    assert err.value.line is not None and "set NO_" in (err.value.fix or "")
