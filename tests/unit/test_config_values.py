"""Values that reach a systemd unit, a shell line or a `docker run` argument are validated by what
they are (an image reference, a path, a DNS name, a port), and a trailing newline never passes."""

from __future__ import annotations

import pytest

from bakery.cli import main
from bakery.render import unit_value

BAD = [
    ('consul: {image: "hashicorp/consul:1.19\\nExecStartPre=/bin/touch /tmp/pwned"}', "consul.image"),
    ('consul: {image: "--privileged -v /:/host alpine"}', "consul.image"),
    ('consul: {image: "alpine sh -c id"}', "consul.image"),
    ('nfs: [{server: nfs1, export: "/e\\n[Install]", path: /mnt/a}]', "nfs[0].export"),
    ('nfs: [{server: nfs1, export: "/e", path: "/mnt/a\\nOptions=rw"}]', "nfs[0].path"),
    ("nfs: [{server: nfs1, export: /e, path: '/mnt/a%b'}]", "nfs[0].path"),
    ("nfs: [{server: nfs1, export: /e, path: /mnt/../etc}]", "nfs[0].path"),
    ('nfs: [{server: "nfs1\\n", export: /e, path: /mnt/a}]', "nfs[0].server"),
    ("nfs: [{server: -oproxy, export: /e, path: /mnt/a}]", "nfs[0].server"),
    ("nfs: [{server: nfs1, export: '/srv\\', path: /mnt/a}]", "nfs[0].export"),
    ("nfs: [{server: nfs1, export: /srv, path: \"/mnt/it's\"}]", "nfs[0].path"),
    ("nfs: [{server: nfs1, export: /srv, path: '//'}]", "nfs[0].path"),
    ("nfs: [{server: nfs1, export: /srv, path: '//proc/x'}]", "nfs[0].path"),
    *[(f"nfs: [{{server: nfs1, export: /srv, path: {p}}}]", "nfs[0].path")  # would hide the system or bakery
      for p in ("/etc", "/etc/bakery", "/usr/local", "/var", "/var/lib", "/var/lib/docker", "/boot", "/run/x", "/")],
    ('swarm: {seed: "seed\\n"}', "swarm.seed"),
    ('cluster: {name: "prod\\n"}', "cluster.name"),
    ("swarm: {join_port: 2377}", "swarm.join_port"),
    ("docker: {api_port: 4789}", "docker.api_port"),
    ("swarm: {join_port: 2376}", "swarm.join_port"),
    ('docker: {daemon: {insecure_registries: ["reg:5000 --x"]}}', "docker.daemon.insecure_registries[0]"),
]


@pytest.mark.parametrize(("yml", "where"), BAD)
def test_bad_values_are_refused_where_they_are(yml, where, tmp_path, capsys):
    cfg = tmp_path / "bakery.yml"
    cfg.write_text(yml + "\n")
    code = main(["render", "--role", "worker", "--config", str(cfg), "--state-dir", str(tmp_path / "s")])
    err = capsys.readouterr().err
    assert code == 2, err
    assert f"{cfg}:1:" in err and where in err


GOOD = [
    "consul: {image: hashicorp/consul:1.19}",
    "consul: {image: 'registry.example:5000/team/consul:1.19@sha256:" + "a" * 64 + "'}",
    "nfs: [{server: 10.0.0.9, export: /srv/share, path: /mnt/docker-nfs}]",
    "nfs: [{server: 'fd00::5', export: /srv/share, path: /srv/data}, {server: n, export: /e, path: /var/www}]",
    "docker: {daemon: {insecure_registries: ['10.0.0.0/8', 'reg.example:5000']}}",
]


@pytest.mark.parametrize("yml", GOOD)
def test_good_values_render(yml, tmp_path, capsys):
    cfg = tmp_path / "bakery.yml"
    cfg.write_text(yml + "\n")
    assert main(["render", "--role", "consul", "--config", str(cfg), "--state-dir", str(tmp_path / "s")]) == 0


@pytest.mark.parametrize("address", ["x y", "", "a..b", "-lead", "host\n"])
def test_address_flags_are_ip_or_dns(address, tmp_path, capsys):
    code = main(["render", "--role", "worker", f"--address={address}", "--state-dir", str(tmp_path / "s")])
    assert code == 2 and "neither an IP address nor a DNS name" in capsys.readouterr().err


def test_unit_filter_doubles_percent_and_refuses_line_breaks():
    assert unit_value("/mnt/a%b") == "/mnt/a%%b"
    with pytest.raises(ValueError):
        unit_value("a\nExecStartPre=x")


def test_insecure_tcp_address_cannot_inject_unit_lines(tmp_path, capsys):
    code = main(["render", "--role", "worker", "--state-dir", str(tmp_path / "s"),
                 "--insecure-tcp", "0.0.0.0\nExecStartPre=/bin/sh -c id:2375"])
    assert code == 2 and "neither an IP address nor a DNS name" in capsys.readouterr().err


def test_whole_number_floats_are_not_ports(tmp_path, capsys):
    cfg = tmp_path / "bakery.yml"
    cfg.write_text("docker: {api_port: 2376.0}\n")
    assert main(["render", "--role", "worker", "--config", str(cfg), "--state-dir", str(tmp_path / "s")]) == 2
    assert "is not of type 'integer'" in capsys.readouterr().err


def test_a_key_passed_as_config_is_never_echoed(tmp_path, capsys):
    assert main(["render", "--role", "worker", "--name", "w1", "--state-dir", str(tmp_path / "s")]) == 0
    key = tmp_path / "s" / "default" / "ca" / "ca-key.pem"
    capsys.readouterr()
    assert main(["render", "--role", "worker", "--config", str(key), "--state-dir", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err
    assert "PRIVATE KEY" not in err and key.read_text().splitlines()[1][:20] not in err


def test_out_and_part_refuse_what_is_not_a_regular_file(tmp_path, capsys):
    import os

    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for extra in (["-o", str(fifo)], ["--part", str(fifo)]):
        assert main(["render", "--role", "worker", "--state-dir", str(tmp_path / "s"), *extra]) == 2
        assert "not a regular file" in capsys.readouterr().err


@pytest.mark.parametrize("host", ["10.0.0.5:2378", "a..b", ":::::", "1:2:3:4:5:6:7:8:9", "-x"])
def test_every_host_is_an_ip_or_a_dns_name(host, tmp_path, capsys):
    """`swarm.managers: ["10.0.0.5:2378"]` passed the schema's pattern, and a seed never reached that manager
    (the name did not resolve): with form: true it started a second swarm."""
    cfg = tmp_path / "bakery.yml"
    cfg.write_text(f'swarm: {{managers: ["{host}"]}}\n')
    code = main(["render", "--role", "worker", "--config", str(cfg), "--state-dir", str(tmp_path / "s")])
    err = capsys.readouterr().err
    assert code == 2 and "swarm.managers[0]" in err, err


def test_a_share_path_too_long_for_a_unit_name_is_refused(tmp_path, capsys):
    cfg = tmp_path / "bakery.yml"
    cfg.write_text("nfs: [{server: n, export: /e, path: /srv/" + "é" * 60 + "}]\n")
    code = main(["render", "--role", "worker", "--config", str(cfg), "--state-dir", str(tmp_path / "s")])
    assert code == 2 and "systemd takes at most 255" in capsys.readouterr().err
