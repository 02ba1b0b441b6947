"""`bakery render --format ignition|butane`: the cloud-init node's files and units, in Ignition's words."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml
from testkit.render_util import cloud_config_parts, ignition_files, ignition_units, render, written_files

from bakery import ignition
from bakery.cli import main
from bakery.render import NOVA_BASE64_LIMIT

NONE = "docker: {install: none}\nswarm: {seed: 10.0.0.10, managers: [10.0.0.11, 10.0.0.12]}\n"


@pytest.fixture()
def conf(tmp_path):
    path = tmp_path / "bakery.yml"
    path.write_text(NONE)
    return str(path)


def test_same_files_and_units_as_cloud_init(conf, tmp_path, capsysbinary):
    """Every cloud-init file is there with its mode (bar the bootstrap script and the Python agent
    a worker does not need), units as systemd.units, the drop-in as docker.service's."""
    args = ["--role", "worker", "--name", "w1", "--config", conf]
    ci = written_files(cloud_config_parts(render(args, tmp_path / "s", capsysbinary))[0])
    payload = render([*args, "--format", "ignition"], tmp_path / "s", capsysbinary)
    files, units = ignition_files(payload), ignition_units(payload)
    for path, entry in ci.items():
        if path.startswith("/etc/systemd/system/"):
            name = path.removeprefix("/etc/systemd/system/")
            if name == "docker.service.d/10-bakery.conf":
                assert units["docker.service"]["dropins"] == [{"name": "10-bakery.conf", "contents": entry["content"]}]
            elif name == "bakery-join.service":
                assert "ExecStart=/bin/sh /opt/bakery/bakery-join.sh join" in units[name]["contents"]
            else:
                assert units[name]["contents"] == entry["content"], name
            continue
        if path.startswith("/usr/local/lib/bakery/"):
            continue  # bootstrap (cloud-init's) and the Python agent (a worker's join is sh)
        assert files[path]["content"] == entry["content"], path
        assert files[path]["permissions"] == entry["permissions"], path
    assert all(u["enabled"] for u in units.values())
    assert files["/etc/bakery/tls/server-key.pem"]["permissions"] == "0600"
    assert files["/etc/bakery/tls/join-key.pem"]["permissions"] == "0600"
    assert files["/opt/bakery/bakery-join.sh"]["permissions"] == "0755"
    assert "/opt/bakery/bakery-join" not in files
    assert not any("python3" in u.get("contents", "") for u in units.values())


def test_managers_serve_join_tokens_without_python(conf, tmp_path, capsysbinary):
    """systemd's socket (every connection bounded), socat's mutual TLS on loopback, the sh agent's
    `answer`; no Python file or unit."""
    payload = render(["--role", "manager", "--name", "m1", "--address", "10.0.0.11", "--config", conf,
                      "--format", "ignition"],
                     tmp_path / "s", capsysbinary)
    units = ignition_units(payload)
    files = ignition_files(payload)
    assert "bakery-join-server.service" not in units and "/opt/bakery/bakery-join" not in files
    assert not any("python3" in u.get("contents", "") for u in units.values())
    socket_unit = units["bakery-join-server.socket"]
    assert socket_unit["enabled"] is True
    for line in ("ListenStream=2378", "Accept=yes", "MaxConnections=128", "MaxConnectionsPerSource=16",
                 "After=docker.service bakery-join.service", "DefaultDependencies=no"):
        assert line in socket_unit["contents"].splitlines(), line
    relay = units["bakery-join-server@.service"]
    assert not relay.get("enabled") and "StandardInput=socket" in relay["contents"]
    assert ("ExecStart=/usr/bin/timeout 20 /usr/bin/socat -T 10 -t 6 STDIO TCP:127.0.0.1:12378,retry=25,interval=0.2"
            in relay["contents"].splitlines())
    tls = units["bakery-join-tls.service"]["contents"]
    (start,) = [line for line in tls.splitlines() if line.startswith("ExecStart=")]
    assert start.startswith("ExecStart=/usr/bin/socat -T 10 -t 6 OPENSSL-LISTEN:12378,bind=127.0.0.1,")
    assert "cafile=/etc/bakery/tls/join-ca.pem,verify=1,openssl-min-proto-version=TLS1.2" in start
    assert start.endswith(' "EXEC:/bin/sh /opt/bakery/bakery-join.sh answer"')


def test_join_env_is_join_json(conf, tmp_path, capsysbinary):
    files = ignition_files(render(["--role", "seed", "--form", "--config", conf, "--format", "ignition"],
                                  tmp_path / "s", capsysbinary))
    data = json.loads(files["/etc/bakery/join.json"]["content"])
    env = files["/etc/bakery/join.env"]["content"]
    assert env == ignition.join_env(data)
    (tmp_path / "join.env").write_text(env)
    out = subprocess.run(["sh", "-c", '. "$1"; echo "$ROLE|$ENDPOINTS|$FORM|$TLS_JOIN_KEY"', "sh",
                          str(tmp_path / "join.env")], capture_output=True, text=True, check=True).stdout
    assert out == "seed|10.0.0.10 10.0.0.11 10.0.0.12|true|/etc/bakery/tls/join-key.pem\n"


def test_butane_says_the_same(conf, tmp_path, capsysbinary):
    args = ["--role", "manager", "--name", "m1", "--address", "10.0.0.11", "--config", conf]
    ign = json.loads(render([*args, "--format", "ignition", "--gzip", "always"], tmp_path / "s", capsysbinary))
    but = yaml.safe_load(render([*args, "--format", "butane"], tmp_path / "s", capsysbinary))
    assert (but["variant"], but["version"]) == ("flatcar", "1.0.0")
    files = ignition_files(json.dumps(ign).encode())
    assert {f["path"]: (f["contents"]["inline"], f"{f['mode']:04o}") for f in but["storage"]["files"]} == \
        {p: (f["content"], f["permissions"]) for p, f in files.items()}
    assert but["systemd"] == ign["systemd"]
    assert but["storage"]["directories"] == ign["storage"]["directories"]


def test_gzip_data_urls_when_needed_and_the_budget_when_not_even_that_fits(conf, tmp_path, capsysbinary):
    # A seed with 12 NFS shares (a mount unit and a mount service each) is past Nova's limit as it is.
    shares = "".join(f"  - {{server: nfs.example.org, export: /srv/share-{i}, path: /mnt/share-{i}}}\n"
                     for i in range(12))
    big = tmp_path / "big.yml"
    big.write_text(f"{NONE}nfs:\n{shares}")
    args = ["render", "--role", "seed", "--config", str(big), "--format", "ignition", "--state-dir",
            str(tmp_path / "s")]
    assert main([*args, "--output", "json"]) == 0
    summary = json.loads(capsysbinary.readouterr().out)
    assert summary["raw_bytes"] > 49149 and summary["gzip"] is True
    assert summary["base64_chars"] <= NOVA_BASE64_LIMIT
    assert main([*args, "--gzip", "never"]) == 2
    err = capsysbinary.readouterr().err.decode()
    assert "without compression (--gzip never)" in err and "at most 65535 base64 characters (49149 bytes)" in err
    worker = ["render", "--role", "worker", "--name", "w", "--config", conf, "--format", "ignition",
              "--state-dir", str(tmp_path / "s")]
    assert main(worker) == 0
    plain = json.loads(capsysbinary.readouterr().out)
    assert not any("compression" in f["contents"] for f in plain["storage"]["files"])  # it fits as it is


@pytest.mark.parametrize("fmt", ["ignition", "butane"])
@pytest.mark.parametrize(("extra", "needle"), [
    ([], "b.yml docker.install: not set, so it is 'distro' (the default), but --format {fmt} installs nothing"),
    (["--distro"], "b.yml:1:19 docker.install: 'distro', but --format {fmt} installs nothing"),
    (["--part", "x.cfg"], "--part adds MIME parts for cloud-init"),
])
def test_refused_before_any_certificate(fmt, extra, needle, tmp_path, capsys):
    conf = tmp_path / "b.yml"
    conf.write_text("{}\n" if not extra else "docker: {install: distro}\n" if extra == ["--distro"] else NONE)
    extra = [] if extra == ["--distro"] else extra
    code = main(["render", "--role", "worker", "--config", str(conf), "--format", fmt, "--state-dir",
                 str(tmp_path / "s"), *extra])
    assert code == 2
    assert needle.format(fmt=fmt) in capsys.readouterr().err
    assert not (tmp_path / "s").exists()


def test_render_ignition_imports_neither_docker_nor_openstack(conf, tmp_path):
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "bakery", "render", "--role", "worker",
                           "--name", "w", "--config", conf, "--format", "ignition", "--state-dir",
                           str(tmp_path / "s")], capture_output=True, text=True, check=True)
    modules = {line.split("|")[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time")}
    assert not {m for m in modules if m.split(".")[0] in ("docker", "openstack")}
