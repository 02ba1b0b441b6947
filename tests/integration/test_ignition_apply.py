"""The real Ignition applies `bakery render --format ignition` to a root filesystem.

Debian's `ignition` package ships the binary in its dracut module folder. It runs as it does in
an initramfs: platform `file` (the config from $IGNITION_CONFIG_FILE), stage `fetch-offline`,
then `files` with `--root`. Every file must land with the rendered bytes and mode, every unit
in /etc/systemd/system with Ignition's preset enabling it (systemd applies presets at first
boot), the docker.service drop-in beside it.

Ignition's files stage ends with an SELinux relabel: it reads SELINUXTYPE from the root's
/etc/selinux/config and runs `setfiles`. The test root has no SELinux (neither do Debian nodes
here), so it gets a disabled config and a `setfiles` that does nothing, on PATH for Ignition only.

BAKERY_REQUIRE_VALIDATORS=1 (CI) turns a missing binary into a failure.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from testkit import require_or_skip
from testkit.render_util import ignition_files, ignition_units, render

pytestmark = pytest.mark.validators

IGNITION = Path("/usr/lib/dracut/modules.d/30ignition/ignition")
CONF = "docker: {install: none}\nswarm: {seed: 10.0.0.10, managers: [10.0.0.11]}\n" \
       "nfs: [{server: 10.0.0.5, export: /srv, path: /mnt/docker-nfs}]\n"


def apply(config: Path, root: Path, work: Path) -> None:
    if not IGNITION.exists():
        require_or_skip("BAKERY_REQUIRE_VALIDATORS", f"{IGNITION} is missing (apt-get install ignition)")
    if os.geteuid() != 0:
        require_or_skip("BAKERY_REQUIRE_VALIDATORS", "Ignition's files stage writes files owned by root: run as root")
    (root / "etc/selinux").mkdir(parents=True)
    (root / "etc/selinux/config").write_text("SELINUX=disabled\nSELINUXTYPE=targeted\n")
    shim = work / "bin"
    shim.mkdir()
    (shim / "setfiles").write_text("#!/bin/sh\n# no SELinux policy in this root: nothing to relabel\ncat >/dev/null\n")
    (shim / "setfiles").chmod(0o755)
    env = dict(os.environ, IGNITION_CONFIG_FILE=str(config), PATH=f"{shim}:{os.environ['PATH']}")
    for stage in ("fetch-offline", "files"):
        res = subprocess.run([str(IGNITION), "-platform", "file", "-stage", stage, "-root", str(root),
                              "-config-cache", str(work / "ignition.json"), "-state-file", str(work / "state"),
                              "-neednet", str(work / "neednet"), "-log-to-stdout"],
                             capture_output=True, text=True, env=env, timeout=120)
        assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]
        assert "Ignition finished successfully" in res.stdout + res.stderr


@pytest.mark.parametrize(("role", "gzip"), [("worker", "never"), ("seed", "auto"), ("consul", "always")])
def test_ignition_lays_out_the_node(role, gzip, tmp_path, capsysbinary):
    (tmp_path / "b.yml").write_text(CONF)
    payload = render(["--role", role, "--name", f"{role}-1", "--config", str(tmp_path / "b.yml"),
                      "--format", "ignition", "--gzip", gzip], tmp_path / "state", capsysbinary)
    config = tmp_path / "config.ign"
    config.write_bytes(payload)
    root, work = tmp_path / "root", tmp_path / "work"
    work.mkdir()
    apply(config, root, work)

    for path, f in ignition_files(payload).items():
        dest = root / path.lstrip("/")
        assert dest.read_text() == f["content"], path
        assert f"{dest.stat().st_mode & 0o7777:04o}" == f["permissions"], path
        assert dest.stat().st_uid == 0
    assert (root / "etc/bakery/tls/server-key.pem").stat().st_mode & 0o077 == 0
    assert (root / "var/lib/bakery").stat().st_mode & 0o7777 == 0o700
    preset = (root / "etc/systemd/system-preset/20-ignition.preset").read_text().split("\n")
    units = root / "etc/systemd/system"
    for name, unit in ignition_units(payload).items():
        assert (f"enable {name}" in preset) == unit.get("enabled", False), name
        if "contents" in unit:
            assert (units / name).read_text() == unit["contents"], name
        for d in unit.get("dropins", []):
            assert (units / f"{name}.d" / d["name"]).read_text() == d["contents"]
    assert (units / "mnt-docker\\x2dnfs.mount").exists()
    if role != "consul":
        assert (root / "opt/bakery/bakery-join.sh").stat().st_mode & 0o111
        assert "ExecStart=/bin/sh /opt/bakery/bakery-join.sh join" in (units / "bakery-join.service").read_text()
