from pathlib import Path

import pytest

from bakery.swarm import parts


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (["80"], [{"Protocol": "tcp", "TargetPort": 80, "PublishMode": "ingress"}]),
        (["8080:80/udp"], [{"Protocol": "udp", "TargetPort": 80, "PublishedPort": 8080, "PublishMode": "ingress"}]),
        (
            ["127.0.0.1:8080:80"],
            [{"Protocol": "tcp", "TargetPort": 80, "PublishedPort": 8080, "PublishMode": "ingress"}],
        ),
        (
            ["9001-9002:81-82"],
            [
                {"Protocol": "tcp", "TargetPort": 81, "PublishedPort": 9001, "PublishMode": "ingress"},
                {"Protocol": "tcp", "TargetPort": 82, "PublishedPort": 9002, "PublishMode": "ingress"},
            ],
        ),
        (
            [{"target": 80, "published": 18080, "mode": "host"}],
            [{"Protocol": "tcp", "TargetPort": 80, "PublishedPort": 18080, "PublishMode": "host"}],
        ),
    ],
)
def test_ports(value, expected):
    assert parts.ports(value, ("services", "web", "ports")) == expected


def test_ports_are_sorted_by_published_port():
    out = parts.ports(["9000:90", "8000:80"], ())
    assert [p["PublishedPort"] for p in out] == [8000, 9000]


def test_bad_port_names_its_path():
    with pytest.raises(parts.Invalid) as err:
        parts.ports(["80", "eighty"], ("services", "web", "ports"))
    assert err.value.path == ("services", "web", "ports", 1)


VOLUMES = {"data": {"Source": "st_data", "VolumeOptions": {"Labels": {"com.docker.stack.namespace": "st"}}}}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (
            "data:/data:ro",
            {
                "Type": "volume",
                "Target": "/data",
                "ReadOnly": True,
                "Source": "st_data",
                "VolumeOptions": {"Labels": {"com.docker.stack.namespace": "st"}},
            },
        ),
        ("/srv:/srv", {"Type": "bind", "Target": "/srv", "Source": "/srv"}),
        ("./conf:/etc/app", {"Type": "bind", "Target": "/etc/app", "Source": "/base/conf"}),
        ("/scratch", {"Type": "volume", "Target": "/scratch"}),
        (
            {"type": "tmpfs", "target": "/tmp", "tmpfs": {"size": "64m"}},
            {"Type": "tmpfs", "Target": "/tmp", "TmpfsOptions": {"SizeBytes": 64 << 20}},
        ),
        (
            {"type": "volume", "source": "data", "target": "/d", "volume": {"nocopy": True}},
            {
                "Type": "volume",
                "Target": "/d",
                "Source": "st_data",
                "VolumeOptions": {"Labels": {"com.docker.stack.namespace": "st"}, "NoCopy": True},
            },
        ),
    ],
)
def test_mounts(value, expected):
    assert parts.mounts([value], ("v",), volumes=VOLUMES, base_dir=Path("/base")) == [expected]


def test_undeclared_volume_is_an_error_with_a_fix():
    with pytest.raises(parts.Invalid) as err:
        parts.mounts(["logs:/logs"], ("services", "web", "volumes"), volumes=VOLUMES, base_dir=None)
    assert err.value.path == ("services", "web", "volumes", 0)
    assert "at the top level" in (err.value.fix or "")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (
            {"test": "curl -f localhost", "interval": "5s", "retries": 3},
            {"Test": ["CMD-SHELL", "curl -f localhost"], "Interval": 5 * 10**9, "Retries": 3},
        ),
        ({"test": ["CMD", "true"], "start_period": "1m"}, {"Test": ["CMD", "true"], "StartPeriod": 60 * 10**9}),
        ({"disable": True}, {"Test": ["NONE"]}),
    ],
)
def test_healthcheck(value, expected):
    assert parts.healthcheck(value) == expected


def test_environment_sorted_and_resolved():
    values = {**parts.key_values(["B=2", "A=1", "FROM_ENV", "MISSING"]), **parts.key_values({"C": 3, "D": True})}
    assert parts.environment(values, {"FROM_ENV": "x"}) == ["A=1", "B=2", "C=3", "D=true", "FROM_ENV=x"]


def test_extra_hosts_become_ip_first():
    assert parts.extra_hosts(["db:10.0.0.5"]) == ["10.0.0.5 db"]
    assert parts.extra_hosts({"db": "10.0.0.5"}) == ["10.0.0.5 db"]


def test_command_string_is_split_like_a_shell():
    assert parts.command("sh -c 'echo hi'") == ["sh", "-c", "echo hi"]
