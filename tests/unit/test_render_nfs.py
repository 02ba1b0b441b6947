"""NFS shares in the user-data (render.ShareUnits, the units and the bootstrap); booted for real in
tests/openstack/test_nfs_boot.py."""

from __future__ import annotations

import pytest
import yaml

from bakery import config, render
from bakery.certs import NodeMaterial

MATERIAL = NodeMaterial(ca_pem="CA\n", server_cert="CERT\n", server_key="KEY\n", join_cert="JC\n", join_key="JK\n",
                        join_ca_pem="JCA\n")


def share(**over):
    data = {"server": "nfs.example.org", "export": "/srv/docker", "path": "/mnt/docker-nfs", **over}
    return config.build({"nfs": [data]}).nfs[0]


@pytest.mark.parametrize("options, expected", [
    (None, "_netdev,nofail,vers=4.1,hard,timeo=600,retrans=2,retry=0"),  # the defaults, one try per attempt
    (["vers=3", "soft"], "_netdev,nofail,vers=3,soft,retry=0"),
    (["vers=4.2,retry=2"], "_netdev,nofail,vers=4.2,retry=2"),  # the user's retry= is kept, not doubled
    (["retry=1", "ro"], "_netdev,nofail,retry=1,ro"),
])
def test_mount_options(options, expected):
    units = render.ShareUnits.of(share(**({"options": options} if options is not None else {})))
    assert units.options == expected
    assert (units.mount, units.service) == ("mnt-docker\\x2dnfs.mount", "bakery-nfs-mnt-docker\\x2dnfs.service")


def document(required: bool) -> dict:
    cfg = config.build({"nfs": [{"server": "10.0.0.5", "export": "/x", "path": "/mnt/x", "required": required}]})
    text, _ = render.cloud_config(cfg, render.Node("worker", "worker"), MATERIAL)
    return yaml.safe_load(text)


def files(doc: dict) -> dict[str, str]:
    return {f["path"]: f["content"] for f in doc["write_files"]}


def test_a_required_share_holds_docker_and_its_first_start():
    doc = document(required=True)
    dropin = files(doc)["/etc/systemd/system/docker.service.d/10-bakery.conf"]
    assert "Requires=bakery-nfs-mnt-x.service\nAfter=bakery-nfs-mnt-x.service\nAfter=mnt-x.mount\n" in dropin
    assert "RequiresMountsFor" not in dropin  # one failed attempt would fail Docker's start for good
    assert doc["bootcmd"] == [render.HOLD_DOCKER]
    service = files(doc)["/etc/systemd/system/bakery-nfs-mnt-x.service"]
    assert "Type=oneshot" in service and "TimeoutStartSec=infinity" in service and "[Install]" not in service
    bootstrap = files(doc)["/usr/local/lib/bakery/bootstrap"]
    assert "systemctl start --no-block docker.service bakery-metadata-block.service bakery-join.service" in bootstrap


def test_an_optional_share_holds_nothing():
    doc = document(required=False)
    dropin = files(doc)["/etc/systemd/system/docker.service.d/10-bakery.conf"]
    assert "mnt-x" not in dropin
    assert "bootcmd" not in doc
    service = files(doc)["/etc/systemd/system/bakery-nfs-mnt-x.service"]
    assert "Type=simple" in service and "WantedBy=multi-user.target" in service
    bootstrap = files(doc)["/usr/local/lib/bakery/bootstrap"]
    assert "systemctl start --no-block bakery-nfs-mnt-x.service" in bootstrap
    assert "start_units docker.service bakery-metadata-block.service bakery-join.service" in bootstrap


@pytest.mark.parametrize("required", [True, False])
def test_no_mount_is_under_remote_fs_target(required):
    mount = files(document(required))["/etc/systemd/system/mnt-x.mount"]
    assert "remote-fs.target" not in mount.split("[Unit]", 1)[1] and "[Install]" not in mount
    assert ",nofail," in mount and f"TimeoutSec={render.NFS_ATTEMPT_TIMEOUT}\n" in mount


def share_files(export: str, path: str) -> dict[str, str]:
    """A share the schema would refuse (config.build does not apply it): render's own escaping."""
    cfg = config.build({"nfs": [{"server": "nfs.example.org", "export": export, "path": path}]})
    text, _ = render.cloud_config(cfg, render.Node("worker", "worker"), MATERIAL)
    return files(yaml.safe_load(text))


def test_percent_is_doubled_in_every_nfs_unit_line():
    got = share_files("/srv/100%-data", "/mnt/50%off")
    mount = got["/etc/systemd/system/mnt-50\\x25off.mount"]
    assert "What=nfs.example.org:/srv/100%%-data\n" in mount and "Where=/mnt/50%%off\n" in mount
    assert "Description=NFS share nfs.example.org:/srv/100%%-data on /mnt/50%%off\n" in mount
    service = got["/etc/systemd/system/bakery-nfs-mnt-50\\x25off.service"]
    assert 'ExecStart=/bin/sh /usr/local/lib/bakery/nfs-mount "/mnt/50%%off" required\n' in service
    for unit in (mount, service):
        assert "%" not in unit.replace("%%", "")


@pytest.mark.parametrize("export, path", [("/srv/a\nExecStartPre=/bin/x", "/mnt/x"), ("/srv", "/mnt/a\rb")])
def test_a_line_break_never_reaches_a_unit(export, path):
    with pytest.raises(ValueError, match="line break"):
        share_files(export, path)


@pytest.mark.parametrize(("server", "what"), [("fd00::5", "[fd00::5]:/srv/a"), ("10.0.0.5", "10.0.0.5:/srv/a"),
                                              ("nfs.example.org", "nfs.example.org:/srv/a")])
def test_an_ipv6_server_is_bracketed_as_nfs_5_asks(server, what):
    """mount.nfs reads `fd00::5:/srv/a` as host `fd00`: an IPv6 share never mounted."""
    units = render.ShareUnits.of(share(server=server, export="/srv/a"))
    assert units.what == what


def test_the_retry_script_says_why_each_attempt_failed_then_mounts(tmp_path):
    """The share's service script run by a real sh, with systemctl, journalctl and sleep stubbed: a
    failed dependency (a parent share) is named instead of "mount success", and the third attempt mounts."""
    import os
    import subprocess

    script = tmp_path / "nfs-mount"
    script.write_text(files(document(required=True))["/usr/local/lib/bakery/nfs-mount"])
    stubs = tmp_path / "bin"
    stubs.mkdir()
    (stubs / "systemctl").write_text(
        '#!/bin/sh\ncase "$1" in\n  show) [ "$3" = What ] && echo 10.0.0.5:/x || echo success ;;\n'
        '  start) n=$(cat "$STATE" 2>/dev/null || echo 0); n=$((n + 1)); echo $n > "$STATE"\n'
        '         [ $n -ge 3 ] && exit 0; echo "A dependency job for mnt-x.mount failed." >&2; exit 1 ;;\nesac\n')
    (stubs / "journalctl").write_text("#!/bin/sh\nexit 0\n")
    (stubs / "sleep").write_text("#!/bin/sh\nexit 0\n")
    (stubs / "systemd-escape").write_text("#!/bin/sh\necho mnt-x.mount\n")
    for stub in stubs.iterdir():
        stub.chmod(0o755)
    env = {**os.environ, "PATH": f"{stubs}:{os.environ['PATH']}", "STATE": str(tmp_path / "n")}
    out = subprocess.run(["sh", str(script), "/mnt/x", "required"], capture_output=True, text=True, env=env,
                         timeout=30)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == ("bakery-nfs: NFS share 10.0.0.5:/x on /mnt/x is not mounted (attempt 1: A dependency job "
                        "for mnt-x.mount failed.); Docker and the swarm join wait for it; next attempt in 5 s")
    assert "attempt 2" in lines[1] and "next attempt in 10 s" in lines[1]
    assert lines[2].startswith("bakery-nfs: NFS share 10.0.0.5:/x mounted on /mnt/x (attempt 3")
