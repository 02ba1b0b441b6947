"""`bakery convert`: outputs, exit codes, and no docker/openstack imports."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from bakery.cli import main

GOOD = 'version: "2"\nservices:\n  web:\n    image: a\n    restart: always\n'
WARN = 'version: "2"\nservices:\n  web:\n    image: a\n    privileged: true\n'


def write(tmp_path: Path, text: str, name: str = "docker-compose.yml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def test_stack_to_stdout_report_to_stderr(tmp_path, capsys):
    path = write(tmp_path, WARN)
    assert main(["convert", str(path)]) == 0
    out, err = capsys.readouterr()
    assert yaml.safe_load(out)["services"]["web"]["image"] == "a"
    assert err.splitlines() == [
        "service web:",
        f"  warning: {path}:5:17 privileged: dropped, not supported by swarm: swarm services cannot be privileged "
        "(grant the capabilities needed with cap_add)",
        "converted 1 service(s) from compose 2.0 to stack 3.7: 1 warning(s); -v lists 1 rewrite(s) and what was "
        "kept exactly",
    ]


HINTED = ('version: "2"\nservices:\n  web:\n    image: a\n    restart: always\n    ports: ["80:80"]\n'
          '    environment: ["constraint:node==web1", "A=1"]\n    network_mode: bridge\n'
          '  db:\n    image: b\n    restart: unless-stopped\n')


def test_the_report_is_short_grouped_and_verbose_adds_what_was_kept(tmp_path, capsys):
    path = write(tmp_path, HINTED)
    assert main(["convert", str(path), "-o", str(tmp_path / "s.yml")]) == 0
    short = capsys.readouterr().err.splitlines()
    assert short == ["converted 2 service(s) from compose 2.0 to stack 3.7: 0 warning(s); -v lists 3 rewrite(s) "
                     "and what was kept exactly"]
    assert main(["convert", str(path), "-o", str(tmp_path / "s.yml"), "-v"]) == 0
    assert capsys.readouterr().err.splitlines()[:-1] == [
        "service db:",
        f"  info: {path}:11:14 restart: unless-stopped rewritten as restart_policy condition any (swarm does not "
        "remember a manual stop)",
        f"  info: {path}:10:5: kept exactly: image, restart",
        "service web:",
        f"  info: {path}:7:19 environment[0]: constraint:node==web1 rewritten as placement constraint "
        "node.hostname==web1",
        f"  info: {path}:8:19 network_mode: bridge rewritten as the stack's default overlay network",
        f"  info: {path}:4:5: kept exactly: environment (other than its hints), image, ports, restart",
    ]


def test_only_hints_in_environment_is_not_kept_exactly(tmp_path, capsys):
    text = 'version: "2"\nservices:\n  web:\n    image: a\n    environment: ["constraint:node==web1"]\n'
    assert main(["convert", str(write(tmp_path, text)), "--output", "json"]) == 0
    findings = json.loads(capsys.readouterr().out)["findings"]
    [kept] = [f for f in findings if f["kind"] == "kept"]
    assert kept["message"] == "kept exactly: image"
    [hint] = [f for f in findings if f["path"] == "services.web.environment[0]"]
    assert (hint["kind"], hint["subject"]) == ("rewritten", "service web")
    assert "node.hostname==web1" in hint["message"]


def test_no_message_repeats_its_location(tmp_path, capsys):
    text = ('version: "2.4"\nservices:\n  web:\n    image: a\n    privileged: true\n    shm_size: 64m\n'
            '    tmpfs: ["/run:mode=1777"]\n    networks: {front: {ipv4_address: 10.0.0.5}}\n'
            '    network_mode: "service:db"\n    ports: ["127.0.0.1:80:80"]\n'
            'networks:\n  front:\n    enable_ipv6: true\n'
            '    ipam: {config: [{subnet: 10.0.0.0/24, gateway: 10.0.0.1}]}\n')
    assert main(["convert", str(write(tmp_path, text)), "--output", "json"]) == 0
    findings = json.loads(capsys.readouterr().out)["findings"]
    assert len(findings) >= 8
    for f in findings:
        assert f["path"] not in f["message"] and "service web" not in f["message"], f
        assert "network front" not in f["message"], f


def test_json_fills_fix_from_the_disposition_table(tmp_path, capsys):
    from bakery.compose.keys import SERVICE_KEYS

    text = ('version: "2.4"\nservices:\n  web:\n    image: a\n    privileged: true\n    container_name: w\n'
            '    build: .\n    pid: host\n')
    assert main(["convert", str(write(tmp_path, text)), "--output", "json"]) == 0
    by_key = {f["path"].split(".")[-1]: f for f in json.loads(capsys.readouterr().out)["findings"]
              if f["code"].startswith("compose.key.") and f["kind"] != "kept"}
    assert set(by_key) == {"privileged", "container_name", "build", "pid"}
    assert by_key["privileged"]["fix"] == "grant the capabilities needed with cap_add"
    assert by_key["privileged"]["kind"] == "lost" and by_key["build"]["kind"] == "approximated"
    for key, f in by_key.items():
        assert f["fix"] == SERVICE_KEYS[key].fix, key
    assert by_key["pid"]["fix"] is None  # nothing to do instead: the table says none


def test_out_file_and_json_report(tmp_path, capsys):
    out_file = tmp_path / "stack.yml"
    assert main(["convert", str(write(tmp_path, WARN)), "-o", str(out_file), "--output", "json"]) == 0
    out, err = capsys.readouterr()
    doc = json.loads(out)
    assert doc["version"] == "3.7" and doc["source_version"] == "2.0" and doc["ok"] is True
    assert "stack" not in doc
    assert any(f["code"] == "compose.key.unsupported" and f["path"] == "services.web.privileged"
               for f in doc["findings"])
    assert yaml.safe_load(out_file.read_text())["version"] == "3.7"
    assert err == ""


def test_out_into_a_new_folder_is_made_and_an_unwritable_out_is_the_one_json_document(tmp_path, capsys):
    out_file = tmp_path / "stacks" / "app" / "stack.yml"
    assert main(["convert", str(write(tmp_path, GOOD)), "-o", str(out_file)]) == 0
    assert yaml.safe_load(out_file.read_text())["services"]["web"]["image"] == "a"
    capsys.readouterr()
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    assert main(["convert", str(write(tmp_path, WARN)), "-o", str(blocked / "stack.yml"), "--output", "json"]) == 2
    out, _ = capsys.readouterr()
    doc = json.loads(out)  # one document: the failure, not a report of success before it
    assert doc["ok"] is False and doc["exit_code"] == 2 and "cannot write" in doc["error"]["message"]


def test_strict_json_says_why_it_failed(tmp_path, capsys):
    assert main(["convert", str(write(tmp_path, WARN)), "--strict", "--output", "json"]) == 3
    doc = json.loads(capsys.readouterr().out)
    assert (doc["ok"], doc["exit_code"]) == (False, 3) and "1 warning(s), nothing written" in doc["error"]


def test_json_without_out_includes_the_stack(tmp_path, capsys):
    assert main(["convert", str(write(tmp_path, GOOD)), "--output", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["stack"]["services"]["web"]["image"] == "a"


@pytest.mark.parametrize(
    "text, args, code",
    [
        (GOOD, ["--strict"], 0),
        (WARN, ["--strict"], 3),
        ('version: "2"\nservices:\n  web:\n    image: a\n    imag: b\n', [], 2),
        ('version: "2"\nservices:\n  web:\n    build: .\n', [], 2),
        ('version: "2"\nservices:\n  web:\n    build: .\n', ["--image-prefix", "reg/p"], 0),
        ('version: "2"\nservices:\n  web:\n    image: "${X}"\n', [], 2),  # image "" from an unset variable
    ],
)
def test_exit_codes(tmp_path, capsys, text, args, code):
    out_file = tmp_path / "out.yml"
    assert main(["convert", str(write(tmp_path, text)), "-o", str(out_file), *args]) == code
    assert out_file.exists() is (code == 0)


def test_error_is_one_line_with_location(tmp_path, capsys):
    path = write(tmp_path, 'version: "2"\nservices:\n  web:\n    image: a\n    mem_limit: 12x\n')
    assert main(["convert", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"bakery convert: error: {path}:5:16 services.web.mem_limit: '12x' is not a size "
                   "(use 512m, 2g or a number of bytes)")


def test_several_mistakes_are_a_line_each(tmp_path, capsys):
    path = write(tmp_path, 'version: "2.4"\nservices:\n  web:\n    imag: nginx\n    restart: no\n    ports: 80\n')
    assert main(["convert", str(path)]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"bakery convert: error: {path}: 3 problems",
        f"  {path}:4:5 services.web.imag: unknown key 'imag' (did you mean 'image'?)",
        f"  {path}:5:14 services.web.restart: unquoted no is the boolean false in YAML, and text is wanted here "
        '(quote it: restart: "no")',
        f"  {path}:6:12 services.web.ports: 80 is not of type 'array' (give a list)",
    ]


def test_several_files_env_file_and_nodes(tmp_path, capsys):
    base = write(tmp_path, 'version: "2"\nservices:\n  web:\n    image: "a:${TAG}"\n', "a.yml")
    over = write(tmp_path, 'version: "2"\nservices:\n  web:\n    environment: ["constraint:node==web*"]\n', "b.yml")
    env = write(tmp_path, "TAG=7\n", "x.env")
    nodes = write(tmp_path, "- hostname: web1\n- hostname: db1\n  labels: {a: b}\n", "nodes.yml")
    code = main(["convert", str(base), "-f", str(over), "--env-file", str(env), "--nodes", str(nodes)])
    assert code == 0
    out, err = capsys.readouterr()
    stack = yaml.safe_load(out)
    web = stack["services"]["web"]
    assert web["image"] == "a:7"
    label = "bakery.hint.f7a7a4afd047"  # from the hint: the same at every conversion
    assert web["deploy"]["placement"]["constraints"] == [f"node.labels.{label}==true"]
    assert stack["x-bakery"]["node_labels"] == {label: "node==web*"}
    assert f"docker node update --label-add {label}=true web1" in err and " db1" not in err


@pytest.mark.parametrize(
    "text, needle",
    [("- hostname: a\n- hostname: a\n", "listed twice"), ("- name: a\n", "hostname"), ("{}\n", "list")],
)
def test_bad_nodes_file(tmp_path, capsys, text, needle):
    nodes = write(tmp_path, text, "nodes.yml")
    assert main(["convert", str(write(tmp_path, GOOD)), "--nodes", str(nodes)]) == 2
    assert needle in capsys.readouterr().err


def test_no_docker_or_openstack_import(tmp_path):
    path = write(tmp_path, GOOD)
    for args in (["convert", "--help"], ["convert", str(path)]):
        proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "bakery", *args],
                              capture_output=True, text=True, check=True)
        modules = {line.split("|")[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time")}
        assert not {m for m in modules if m.split(".")[0] in ("docker", "openstack", "jsonschema")}, args
    proc = subprocess.run([sys.executable, "-c", "import sys, bakery.compose; "
                           "print(sorted(m for m in sys.modules if m.split('.')[0] in ('docker', 'openstack')))"],
                          capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "[]"


def test_help_documents_the_nodes_file(capsys):
    with pytest.raises(SystemExit):
        main(["convert", "--help"])
    out = capsys.readouterr().out
    assert "engine_labels" in out and "--image-prefix" in out


def test_relative_paths_follow_the_output_file(tmp_path):
    src = write(tmp_path, 'version: "2"\nservices:\n  web:\n    image: a\n    volumes: ["./html:/html:ro"]\n')
    out = tmp_path / "deploy" / "stack.yml"
    out.parent.mkdir()
    assert main(["convert", str(src), "-o", str(out)]) == 0
    assert yaml.safe_load(out.read_text())["services"]["web"]["volumes"] == ["../html:/html:ro"]


SPEC = """\
services:
  web: {image: web:1}
  debug: {image: busybox, profiles: [debug]}
  tools: {image: adminer, profiles: [tools, all]}
"""


@pytest.mark.parametrize(
    "args, env, services",
    [([], {}, ["web"]), (["--profile", "debug"], {}, ["debug", "web"]),
     (["--profile", "debug", "--profile", "all"], {}, ["debug", "tools", "web"]),
     (["--profile", "*"], {}, ["debug", "tools", "web"]), ([], {"COMPOSE_PROFILES": "tools,debug"},
                                                            ["debug", "tools", "web"])],
)
def test_profiles(tmp_path, capsys, monkeypatch, args, env, services):
    monkeypatch.delenv("COMPOSE_PROFILES", raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    assert main(["convert", str(write(tmp_path, SPEC, "compose.yaml")), "--output", "json", *args]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert sorted(doc["stack"]["services"]) == services
    assert doc["source_version"] == "spec"


def test_an_unset_tag_leaving_an_image_docker_refuses_is_an_error_naming_it(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("TAG", raising=False)
    src = write(tmp_path, "services:\n  api:\n    image: acme/api:${TAG}\n", "compose.yaml")
    assert main(["convert", str(src), "-o", str(tmp_path / "stack.yml")]) == 2
    err = capsys.readouterr().err
    assert "3:12 services.api.image: 'acme/api:' is not an image reference Docker accepts (variable TAG not set)" in err
    assert not (tmp_path / "stack.yml").exists()


@pytest.mark.parametrize("deploy, where, fix", [
    ("      replica: 3\n", "services.api.deploy.replica: replica is not a key of deploy", "did you mean 'replicas'?"),
    ("      resources:\n        limits: {memroy: 1g}\n",
     "services.api.deploy.resources.limits.memroy: memroy is not a key of deploy.resources.limits", "'memory'"),
    ("      restart_policy: {conditon: any}\n", "deploy.restart_policy.conditon: conditon is not a key", "'condition'"),
    ("      update_config: {paralelism: 2}\n", "update_config.paralelism: paralelism is not", "parallelism"),
    ("      placement: {constraint: [node.role==worker]}\n", "placement.constraint: constraint is", "constraints"),
])
def test_an_unknown_key_under_deploy_is_a_located_error_not_dropped(tmp_path, capsys, deploy, where, fix):
    src = write(tmp_path, f'version: "3.7"\nservices:\n  api:\n    image: nginx\n    deploy:\n{deploy}', "stack.yml")
    assert main(["convert", str(src)]) == 2
    err = capsys.readouterr().err
    assert where in err and fix in err, err


def test_x_keys_under_deploy_are_kept_out_of_the_way(tmp_path, capsys):
    src = write(tmp_path, 'version: "3.7"\nservices:\n  api:\n    image: nginx\n    deploy:\n      x-team: a\n'
                '      replicas: 2\n', "stack.yml")
    assert main(["convert", str(src)]) == 0
    assert yaml.safe_load(capsys.readouterr().out)["services"]["api"]["deploy"]["replicas"] == 2


def test_a_number_where_a_duration_is_wanted_gets_a_fix_that_works(tmp_path, capsys):
    src = write(tmp_path, 'services:\n  api:\n    image: nginx\n    healthcheck: {test: [CMD, "true"], timeout: 5}\n',
                "compose.yaml")
    assert main(["convert", str(src)]) == 2
    assert 'give it a unit: timeout: "5s"' in capsys.readouterr().err
    src.write_text(src.read_text().replace("timeout: 5", 'timeout: "5s"'))
    assert main(["convert", str(src)]) == 0
