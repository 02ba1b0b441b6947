"""Secure by default: what user-data may and may not carry, and the TLS split."""

from __future__ import annotations

import gzip
import json
import stat
import subprocess
import sys

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from testkit.render_util import cloud_config_parts, render, written_files

from bakery.cli import main

ROLES = ["seed", "manager", "worker", "consul"]


def files_for(role, tmp_path, capsysbinary, *extra):
    payload = render(["--role", role, *extra], tmp_path / "state", capsysbinary)
    return payload, written_files(cloud_config_parts(payload)[0])


def cert(pem: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pem.encode())


@pytest.mark.parametrize("role", ROLES)
def test_no_ca_key_or_operator_key_in_user_data(role, tmp_path, capsysbinary):
    payload, _ = files_for(role, tmp_path, capsysbinary)
    state = tmp_path / "state" / "default"
    for secret in ("ca/ca-key.pem", "join-ca/ca-key.pem", "client/key.pem"):
        body = (state / secret).read_text().splitlines()[1]  # first base64 line of the key
        assert body.encode() not in payload, secret


@pytest.mark.parametrize("role", ROLES)
def test_key_files_are_private(role, tmp_path, capsysbinary):
    _, files = files_for(role, tmp_path, capsysbinary)
    for path, entry in files.items():
        if path.endswith("-key.pem") or path.endswith("encrypt.json"):
            assert entry["permissions"] == "0600", path
    for p in (tmp_path / "state").rglob("*"):
        mode = stat.S_IMODE(p.stat().st_mode)
        if p.is_dir():
            assert mode == 0o700, p
        elif "key" in p.name:
            assert mode == 0o600, p


@pytest.mark.parametrize("role, ou, serves", [("seed", "manager", True), ("manager", "manager", True),
                                              ("worker", "worker", False)])
def test_join_certificates_carry_the_class(role, ou, serves, tmp_path, capsysbinary):
    _, files = files_for(role, tmp_path, capsysbinary)
    join = cert(files["/etc/bakery/tls/join-cert.pem"]["content"])
    assert [a.value for a in join.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)] == [ou]
    assert list(join.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [
        ExtendedKeyUsageOID.CLIENT_AUTH]
    # the join certificate is not signed by the cluster CA that dockerd trusts
    ca = cert(files["/etc/bakery/tls/ca.pem"]["content"])
    assert join.issuer != ca.subject
    server = cert(files["/etc/bakery/tls/server-cert.pem"]["content"])
    assert list(server.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [
        ExtendedKeyUsageOID.SERVER_AUTH]
    assert ("/etc/bakery/tls/join-ca.pem" in files) is serves
    assert ("/etc/systemd/system/bakery-join-server.service" in files) is serves


def test_consul_node_never_joins(tmp_path, capsysbinary):
    _, files = files_for("consul", tmp_path, capsysbinary)
    assert not any("join" in p for p in files)
    assert "/etc/systemd/system/bakery-consul.service" in files


def test_seed_certificate_covers_the_seed_address(tmp_path, capsysbinary):
    cfg = tmp_path / "c.yml"
    cfg.write_text("swarm: {seed: 10.1.2.3}\ntls: {sans: [lb.example.org]}\n")
    _, files = files_for("seed", tmp_path, capsysbinary, "--config", str(cfg), "--address", "192.0.2.7")
    sans = cert(files["/etc/bakery/tls/server-cert.pem"]["content"]).extensions.get_extension_for_class(
        x509.SubjectAlternativeName).value
    ips = {str(i) for i in sans.get_values_for_type(x509.IPAddress)}
    assert {"10.1.2.3", "192.0.2.7", "127.0.0.1"} <= ips
    assert {"seed", "lb.example.org", "localhost"} <= set(sans.get_values_for_type(x509.DNSName))


def test_docker_api_is_mutual_tls_on_2376_by_default(tmp_path, capsysbinary):
    payload, files = files_for("worker", tmp_path, capsysbinary)
    socket_unit = files["/etc/systemd/system/docker-tcp.socket"]["content"]
    assert "ListenStream=2376\n" in socket_unit
    assert "BindIPv6Only=both" in socket_unit
    daemon = json.loads(files["/etc/docker/daemon.json"]["content"])
    assert daemon["tlsverify"] is True
    assert daemon["tlscacert"] == "/etc/bakery/tls/ca.pem"
    assert "hosts" not in daemon  # would clash with the packaged -H fd://
    assert b"2375" not in payload
    assert "/etc/systemd/system/docker.service" not in files  # a drop-in only


def test_insecure_tcp_is_explicit_and_warned(tmp_path, capsysbinary):
    code = main(["render", "--role", "worker", "--insecure-tcp", "0.0.0.0:2375",
                 "--state-dir", str(tmp_path / "s")])
    out = capsysbinary.readouterr()
    assert code == 0
    assert b"WARNING" in out.err
    files = written_files(out.out.decode())
    assert "ListenStream=0.0.0.0:2375" in files["/etc/systemd/system/docker-tcp.socket"]["content"]
    assert "tlsverify" not in json.loads(files["/etc/docker/daemon.json"]["content"])


@pytest.mark.parametrize("value", ["2375", "host:", ":99", "a:b", "1.2.3.4:70000"])
def test_insecure_tcp_needs_addr_and_port(value, tmp_path, capsysbinary):
    code = main(["render", "--role", "worker", "--insecure-tcp", value, "--state-dir", str(tmp_path)])
    err = capsysbinary.readouterr().err.decode()
    assert code == 2
    assert err.count("\n") == 1 and "ADDR:PORT" in err


def test_gzip_always_and_deterministic(tmp_path, capsysbinary):
    a = render(["--role", "seed", "--gzip", "always", "-o", str(tmp_path / "a")], tmp_path / "s", capsysbinary)
    assert a == b""
    b = render(["--role", "seed", "--gzip", "always"], tmp_path / "s", capsysbinary)
    assert b[:2] == b"\x1f\x8b" and (tmp_path / "a").read_bytes() == b
    assert gzip.decompress(b).startswith(b"#cloud-config")


def test_oversized_user_data_is_gzipped_then_refused(tmp_path, capsysbinary):
    import os

    big = tmp_path / "big.sh"
    big.write_text("#!/bin/sh\n: " + "x" * 60000 + "\n")  # compresses well: fits gzipped
    payload = render(["--role", "worker", "--part", str(big)], tmp_path / "s", capsysbinary)
    assert payload[:2] == b"\x1f\x8b"
    noise = tmp_path / "noise.sh"
    noise.write_text("#!/bin/sh\n: " + os.urandom(40000).hex() + "\n")  # does not compress enough
    code = main(["render", "--role", "worker", "--part", str(noise), "--state-dir", str(tmp_path / "s")])
    err = capsysbinary.readouterr().err.decode()
    assert code == 2
    assert "65535 base64 characters" in err and "bytes" in err


def test_summary_json(tmp_path, capsysbinary):
    out = render(["--role", "worker", "--output", "json"], tmp_path / "s", capsysbinary)
    summary = json.loads(out)
    assert summary["role"] == "worker" and summary["nova_base64_limit"] == 65535
    assert summary["base64_chars"] < 65535
    assert "/etc/bakery/tls/join-key.pem" in summary["files"]


def test_bad_config_is_one_line_no_traceback(tmp_path):
    cfg = tmp_path / "bakery.yml"
    cfg.write_text("docker:\n  install: snap\n")
    res = subprocess.run([sys.executable, "-m", "bakery", "render", "--role", "seed", "--config", str(cfg),
                          "--state-dir", str(tmp_path / "s")], capture_output=True, text=True)
    assert res.returncode == 2
    assert res.stdout == ""
    assert res.stderr.count("\n") == 1
    assert "Traceback" not in res.stderr
    assert f"{cfg}:2:12 docker.install" in res.stderr


def test_render_imports_neither_docker_nor_openstack(tmp_path):
    for argv in (["--help"], ["render", "--role", "manager", "--state-dir", str(tmp_path)]):
        res = subprocess.run([sys.executable, "-X", "importtime", "-m", "bakery", *argv],
                             capture_output=True, text=True)
        assert res.returncode == 0, res.stderr[-2000:]
        imported = {line.split("|")[-1].strip().split(".")[0] for line in res.stderr.splitlines()
                    if "|" in line}
        assert "docker" not in imported and "openstack" not in imported
        assert "jsonschema" not in imported  # no config file: no validation cost


@pytest.mark.parametrize("role, setting, form", [("seed", "", False), ("seed", "form: true", True),
                                                 ("manager", "form: true", None), ("worker", "form: true", None)])
def test_only_a_seed_rendered_to_form_may_init_a_swarm(role, setting, form, tmp_path, capsysbinary):
    """No second swarm: by default a seed only joins; `swarm.form: true` is asked for, and only a seed has it."""
    cfg = tmp_path / "bakery.yml"
    cfg.write_text(f"swarm: {{seed: 10.1.2.3, {setting}}}\n")
    _, files = files_for(role, tmp_path, capsysbinary, "--config", str(cfg))
    assert json.loads(files["/etc/bakery/join.json"]["content"]).get("form") is form
