"""What an attacker of `bakery convert` found (each was an exit 0 on a file docker refuses or reads
otherwise, a traceback, or a path that moved): each a located error or a file docker reads as meant."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bakery.cli import main


def _convert(tmp_path: Path, text: str, *extra: str) -> tuple[int, str, Path]:
    src = tmp_path / "c.yml"
    src.write_text(text)
    out = tmp_path / "stack.yml"
    code = main(["convert", str(src), "-o", str(out), *extra])
    return code, str(src), out


@pytest.mark.parametrize("command", ["\"echo 'unterminated\"", '"a\\\\"'])
def test_a_command_that_does_not_split_is_a_located_error(command, tmp_path, capsys):
    code, src, _ = _convert(tmp_path, f'version: "3.8"\nservices:\n  a:\n    image: x\n    command: {command}\n')
    err = capsys.readouterr().err
    assert code == 2 and f"{Path(src).name}:5:14 services.a.command" in err, err
    assert "Traceback" not in err


def test_less_than_a_nano_cpu_is_refused_where_it_was_written(tmp_path, capsys):
    code, _, _ = _convert(tmp_path, 'version: "3.8"\nservices:\n  a:\n    image: x\n    deploy: {resources: '
                                    '{reservations: {cpus: "0.0000000001"}}}\n')
    assert code == 2 and "billionth of a CPU" in capsys.readouterr().err


def test_a_named_secret_raises_the_version_to_3_5(tmp_path):
    (tmp_path / "s.txt").write_text("x")
    code, _, out = _convert(tmp_path, 'version: "3.8"\nservices:\n  a: {image: x, secrets: [s]}\n'
                                      'secrets: {s: {file: ./s.txt, name: my_secret}}\n')
    assert code == 0 and yaml.safe_load(out.read_text())["version"] == "3.5"


def test_relative_paths_without_a_dot_keep_naming_the_same_place(tmp_path):
    (tmp_path / "o").mkdir()
    src = tmp_path / "c.yml"
    src.write_text('version: "3.8"\nservices:\n  a:\n    image: x\n    volumes: [{type: bind, source: b, target: /b}]\n'
                   '    secrets: [s]\nsecrets: {s: {file: sub/s.txt}}\n')
    assert main(["convert", str(src), "-o", str(tmp_path / "o" / "s.yml")]) == 0
    stack = yaml.safe_load((tmp_path / "o" / "s.yml").read_text())
    assert stack["services"]["a"]["volumes"] in (["../b:/b"], [{"type": "bind", "source": "../b", "target": "/b"}])
    assert stack["secrets"]["s"]["file"] == "../sub/s.txt"


@pytest.mark.parametrize("blob", ["secrets: {s: {environment: SVAR}}", "configs: {s: {content: hello}}"])
def test_a_compose_specification_secret_a_stack_file_cannot_hold_is_refused(blob, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SVAR", "1")
    kind = blob.split(":")[0]
    code, _, out = _convert(tmp_path, f"services:\n  a: {{image: x, {kind}: [s]}}\n{blob}\n")
    err = capsys.readouterr().err
    assert code == 2 and f"{kind}.s." in err and "bakery deploy" in err, err
    assert not out.exists()


def test_values_docker_reads_as_numbers_and_booleans_after_interpolation(tmp_path, monkeypatch):
    """A new user: `replicas: ${R:-2}` was refused ('2' is not a valid replica count) where docker
    stack config and Docker Compose read 2; docker's loader casts such values, so does bakery."""
    monkeypatch.setenv("NOFILE", "2048")
    code, _, out = _convert(tmp_path, 'version: "3.8"\nservices:\n  a:\n    image: x\n    deploy:\n'
                                      '      replicas: ${R:-2}\n      update_config: {max_failure_ratio: "${F:-0.5}"}\n'
                                      '    read_only: "${RO:-yes}"\n    ulimits: {nofile: "${NOFILE}"}\n')
    assert code == 0
    svc = yaml.safe_load(out.read_text())["services"]["a"]
    assert svc["deploy"]["replicas"] == 2 and svc["deploy"]["update_config"]["max_failure_ratio"] == 0.5
    assert svc["read_only"] is True and svc["ulimits"] == {"nofile": 2048}


def test_depends_on_restart_and_required_are_cast_after_interpolation(tmp_path, capsys, monkeypatch):
    """Docker Compose casts `restart: ${R}` and `required: ${Q}` (compose-go's interpolation casts)."""
    monkeypatch.setenv("R", "true")
    monkeypatch.setenv("Q", "false")
    code, _, _ = _convert(tmp_path, "services:\n  db: {image: p, profiles: [x]}\n  a:\n    image: x\n"
                                    "    depends_on:\n      db: {condition: service_started, restart: '${R}', "
                                    "required: '${Q}'}\n")
    assert code == 0, capsys.readouterr().err


def test_ports_on_the_host_network_are_dropped_and_said(tmp_path, capsys):
    code, _, out = _convert(tmp_path, 'version: "2.4"\nservices:\n'
                                      '  lb: {image: x, network_mode: host, ports: ["80:80"]}\n')
    assert code == 0 and "ports" not in yaml.safe_load(out.read_text())["services"]["lb"]
    assert "on the host network the service's ports are the node's own" in capsys.readouterr().err


def test_one_port_published_by_two_services_is_refused_before_any_engine(tmp_path, capsys):
    code, _, _ = _convert(tmp_path, 'version: "3.8"\nservices:\n  web: {image: n, ports: ["8080:80"]}\n'
                                    '  api: {image: r, ports: ["8080:6379"]}\n')
    assert code == 2 and "port 8080/tcp is published by service api too" in capsys.readouterr().err


def test_a_long_syntax_published_range_is_refused_at_its_own_entry(tmp_path, capsys):
    """The entries are sorted for the file: the error named ports[3] (line 9) for the range at ports[2]."""
    code, src, _ = _convert(tmp_path, 'services:\n  dns:\n    image: x\n    ports:\n      - "53:53/udp"\n'
                                      '      - "53:53/tcp"\n      - target: 8000\n        published: 8000-8002\n'
                                      '      - "127.0.0.1::9999"\n')
    err = capsys.readouterr().err
    assert code == 2 and f"{Path(src).name}:8:20 services.dns.ports[2].published: '8000-8002' is a port range" in err


def test_depends_on_restart_and_required_survive_an_override_file_naming_another_dependency(tmp_path, capsys):
    """An override file's depends_on entry for `cache` kept `required: false` on `opt` (it was read from
    the override's place only: a false "left out" error) and `restart: true` on `db` (silently lost)."""
    over = tmp_path / "over.yml"
    over.write_text("services:\n  web:\n    depends_on:\n      cache: {condition: service_started}\n")
    code, _, out = _convert(tmp_path, "services:\n  db: {image: p}\n  opt: {image: x, profiles: [extra]}\n"
                                      "  cache: {image: r}\n  web:\n    image: n\n    depends_on:\n"
                                      "      db: {condition: service_started, restart: true}\n"
                                      "      opt: {condition: service_started, required: false}\n",
                            "-f", str(over))
    err = capsys.readouterr().err
    assert code == 0, err
    assert "depends_on.db.restart: dropped" in err
    assert sorted(yaml.safe_load(out.read_text())["services"]["web"]["depends_on"]) == ["cache", "db"]


def test_reserved_generic_resources_and_devices_are_reported_dropped(tmp_path, capsys):
    code, _, out = _convert(tmp_path, "services:\n  a:\n    image: x\n    deploy:\n      resources:\n"
                                      "        reservations:\n          generic_resources: [{discrete_resource_spec: "
                                      "{kind: gpu, value: 1}}]\n          devices: [{capabilities: [gpu]}]\n")
    err = capsys.readouterr().err
    assert code == 0, err
    assert "reservations.generic_resources: dropped" in err and "reservations.devices: dropped" in err
    assert "generic_resources" not in out.read_text()
