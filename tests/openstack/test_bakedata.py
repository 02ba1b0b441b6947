"""The bake user-data: valid cloud-config, scripts that parse, the marker, the hygiene, deterministic bytes."""

from __future__ import annotations

import json
import py_compile
import subprocess

import pytest
import yaml
from testkit import need_tool

from bakery import bakedata, config
from bakery.errors import UserError

ARCHIVE = bakedata.Archive("https://files.example.com/app.tar", "c" * 64)


def spec(**docker):
    cfg = config.build({"docker": docker} if docker else {})
    return bakedata.spec_from_config(cfg, "b0001", ("nginx:1.27", "registry.example.com/app@sha256:" + "d" * 64),
                                     (ARCHIVE, bakedata.Archive("/srv/images/base.tar")))


SPECS = {
    "distro": spec(),
    "apt-repo": spec(install="apt-repo", version="27.3.1", apt_proxy="http://10.213.0.1:3142",
                     daemon={"storage_driver": "overlay2"}),
    "convenience-script": spec(install="convenience-script"),
}


def files(text):
    return {f["path"]: f for f in yaml.safe_load(text)["write_files"]}


@pytest.mark.validators
@pytest.mark.parametrize("name", sorted(SPECS))
def test_cloud_init_schema_accepts_it(name, tmp_path):
    cloud_init = need_tool("cloud-init")
    text, _ = bakedata.cloud_config(SPECS[name])
    f = tmp_path / "bake.yaml"
    f.write_text(text)
    res = subprocess.run([cloud_init, "schema", "--config-file", str(f)], capture_output=True, text=True)
    assert res.returncode == 0 and "Valid cloud-config" in res.stdout, res.stdout + res.stderr
    assert set(yaml.safe_load(text)) <= {"write_files", "runcmd", "power_state", "apt"}


@pytest.mark.validators
@pytest.mark.parametrize("name", sorted(SPECS))
def test_scripts_parse(name, tmp_path):
    sh = need_tool("sh")
    shellcheck = need_tool("shellcheck")
    for path, entry in files(bakedata.cloud_config(SPECS[name])[0]).items():
        local = tmp_path / path.rsplit("/", 1)[1]
        local.write_text(entry["content"])
        if path.endswith(".sh"):
            res = subprocess.run([sh, "-n", str(local)], capture_output=True, text=True)
            assert res.returncode == 0, f"{path}: {res.stderr}"
            res = subprocess.run([shellcheck, "-s", "sh", "-S", "error", str(local)], capture_output=True, text=True)
            assert res.returncode == 0, f"{path}: {res.stdout}"
        if path.endswith(".py"):
            py_compile.compile(str(local), doraise=True)


def test_what_the_bake_does():
    doc = yaml.safe_load(bakedata.cloud_config(SPECS["apt-repo"])[0])
    f = {e["path"]: e for e in doc["write_files"]}
    bake = f["/run/bakery-bake/bake.sh"]["content"]
    assert "method=apt-repo" in bake and "version=27.3.1" in bake
    assert "pull nginx:1.27" in bake and 'docker load -q -i "$f"' in bake
    assert f"load_archive https://files.example.com/app.tar {'c' * 64}" in bake
    assert "load_archive /srv/images/base.tar ''" in bake  # loaded in place, not copied first
    assert "nfs-common" in bake and "overlay2" in bake
    seal = f["/run/bakery-bake/seal.sh"]["content"]
    for step in ("cloud-init clean --logs --machine-id --seed", ": > /etc/machine-id",
                 "rm -f /etc/docker/key.json /var/lib/docker/engine-id"):
        assert step in seal
    assert "ExecStop=/bin/sh /run/bakery-bake/seal.sh" in f["/run/systemd/system/bakery-seal.service"]["content"]
    assert doc["power_state"]["mode"] == "poweroff"
    assert doc["power_state"]["condition"] == ["test", "-f", "/run/bakery-bake/ok"]
    assert doc["apt"] == {"proxy": "http://10.213.0.1:3142"}
    assert all(p.startswith("/run/") for p in f), "nothing bake-specific may stay in the image"
    assert json.loads(f["/run/bakery-bake/bake.json"]["content"])["bake_id"] == "b0001"


def test_marker_script_writes_the_marker(tmp_path, monkeypatch):
    """Run marker.py with a stand-in `docker` on PATH and check /etc/bakery/baked's shape (paths redirected)."""
    script = files(bakedata.cloud_config(SPECS["distro"])[0])["/run/bakery-bake/marker.py"]["content"]
    fake = tmp_path / "bin" / "docker"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\ncase \"$1\" in\n  version) echo 20.10.24 ;;\n"
                    f"  image) printf 'nginx:1.27 sha256:{'e' * 64}\\n<none>:<none> sha256:{'f' * 64}\\n' ;;\nesac\n")
    fake.chmod(0o755)
    (tmp_path / "bake.json").write_text('{"bake_id": "b0001", "bakery_version": "0.1.0"}')
    script = script.replace("/run/bakery-bake/bake.json", str(tmp_path / "bake.json"))
    script = script.replace("/etc/bakery", str(tmp_path / "etc"))
    script = script.replace('"/dev/console"', repr(str(tmp_path / "console")))
    (tmp_path / "marker.py").write_text(script)
    env = {"PATH": f"{fake.parent}:/usr/bin:/bin"}
    res = subprocess.run(["python3", str(tmp_path / "marker.py")], capture_output=True, text=True, env=env)
    assert res.returncode == 0, res.stderr
    marker = json.loads((tmp_path / "etc" / "baked").read_text())
    assert marker["images"] == [{"ref": "nginx:1.27", "id": "sha256:" + "e" * 64}]
    assert marker["docker_version"] == "20.10.24" and marker["bakery_version"] == "0.1.0"
    assert set(marker) == {"bakery_version", "docker_version", "images", "built_at"}
    state, parsed = bakedata.parse_console("noise\n" + (tmp_path / "console").read_text() + "bakery-bake: done\n")
    assert state == "done" and parsed == marker


def test_same_spec_same_bytes_and_fits_nova():
    a, b = bakedata.build(SPECS["distro"]), bakedata.build(SPECS["distro"])
    assert a.payload == b.payload and a.base64_size <= 65535 and not a.gzipped


def test_console_parsing_tolerates_cut_lines():
    text = 'bakery-bake-marker: {"images": [\nbakery-bake: FAILED (exit 1)\n'
    assert bakedata.parse_console(text) == ("failed", None)


@pytest.mark.parametrize("kwargs, message", [
    ({"pulls": ("bad ref",)}, "is not an image reference"),
    ({"archives": (bakedata.Archive("ftp://x/a.tar"),)}, "the builder cannot reach it"),
    ({"archives": (bakedata.Archive("https://x/a.tar", "abc"),)}, "is not a sha256"),
])
def test_bad_spec_is_a_user_error(kwargs, message):
    with pytest.raises(UserError, match=message):
        bakedata.spec_from_config(config.build({}), "b1", **kwargs)


def test_install_none_cannot_bake():
    with pytest.raises(UserError, match="a bake must install Docker"):
        bakedata.spec_from_config(config.build({"docker": {"install": "none"}}), "b1")
