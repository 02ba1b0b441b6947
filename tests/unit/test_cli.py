"""One CLI, one set of habits: bad input is one line and exit 2, never a traceback; --output json
errors are JSON; config discovery and the cluster name are the same for every command."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from bakery.cli import main


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("BAKERY_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("BAKERY_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path / "state"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _file(tmp_path: Path) -> str:
    (tmp_path / "plain-file").write_text("x")
    return str(tmp_path / "plain-file")


@pytest.mark.parametrize(("argv", "code", "says"), [
    (["init", "/nonexistent/dir/b.yml"], 2, "the directory /nonexistent/dir does not exist"),
    (["init", "--force", "."], 2, "is a directory"),
    (["render", "--role", "worker", "--state-dir", "FILE"], 2, "is not a directory"),
    (["render", "--role", "worker", "--state-dir", "/proc/x"], 2, "cannot create /proc/x"),
    (["render", "--role", "worker", "--name", "wörker"], 2, "IDNA form 'xn--wrker-jua'"),
    (["render", "--role", "worker", "--name", "a" * 300], 2, "is not a valid node name"),
    (["render", "--role", "worker", "--name", ".."], 2, "is not a valid node name"),
    (["certs", "--cluster", "Prod\n"], 2, "is not a valid cluster name"),
])
def test_user_mistakes_are_one_line_and_exit_2(argv, code, says, state, tmp_path, capsys):
    argv = [_file(tmp_path) if a == "FILE" else a for a in argv]
    got, out, err = run(capsys, *argv)
    assert got == code, err
    assert says in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err


@pytest.mark.parametrize("argv", [
    ["render", "--role", "worker", "--name", ""],
    ["render", "--role", "worker", "--state-dir", ""],
    ["render", "--role", "worker", "--config", ""],
    ["render", "--role", "worker", "--cluster", ""],
    ["certs", "--cluster", " "],
    ["deploy", "--dry-run", "-H", "", "app.yml"],
    ["deploy", "--dry-run", "--tlscert", "", "app.yml"],
    ["deploy", "--dry-run", "-n", "", "app.yml"],
])
def test_an_empty_value_is_a_mistake_not_the_default(argv, state, tmp_path, capsys):
    """`--state-dir ""` was the current directory and `--name ""` the role's name: both wrote keys."""
    before = sorted(p.name for p in tmp_path.iterdir())
    try:
        got, out, err = run(capsys, *argv)
    except SystemExit as usage:  # argparse's own exit, as the console script sees it
        got, (out, err) = usage.code, capsys.readouterr()
    assert got == 2, err
    assert "an empty value" in err or "is not a valid" in err, err
    assert "Traceback" not in err and out == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == before and not state.exists()


def test_json_errors_are_json(state, capsys):
    code, out, err = run(capsys, "render", "--role", "worker", "--name", "wörker", "--output", "json")
    assert code == 2
    doc = json.loads(out)
    assert doc["ok"] is False and doc["exit_code"] == 2
    assert "not a valid node name" in doc["error"]["message"] and "xn--wrker-jua" in doc["error"]["fix"]


def test_ca_key_kept_offline_is_named(state, capsys):
    assert run(capsys, "render", "--role", "worker", "--name", "w1")[0] == 0
    key = state / "default" / "ca" / "ca-key.pem"
    key.rename(state / "offline.pem")
    assert run(capsys, "render", "--role", "worker", "--name", "w1")[0] == 0  # existing certificates: no key needed
    code, _, err = run(capsys, "render", "--role", "worker", "--name", "w2")
    assert code == 4 and str(key) in err and "kept offline" in err


def test_out_file_is_not_a_format_and_is_private(state, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["render", "--role", "worker", "-o", "json"])
    assert exc.value.code == 2
    assert "--output json" in capsys.readouterr().err
    assert not (tmp_path / "json").exists()
    target = tmp_path / "worker.userdata"
    target.write_text("old")
    target.chmod(0o644)
    assert run(capsys, "render", "--role", "worker", "-o", str(target))[0] == 0
    assert stat.S_IMODE(target.stat().st_mode) == 0o600 and target.read_bytes().startswith(b"#cloud-config")


def test_unknown_option_prints_the_subcommands_usage(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["render", "--role", "worker", "--bogus"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: bakery render") and "unrecognized arguments: --bogus" in err


def test_certs_stdout_is_only_the_export_line(state, capsys):
    code, out, err = run(capsys, "certs")
    assert code == 0
    assert out.startswith("export DOCKER_HOST=tcp://seed:2376 ") and len(out.splitlines()) == 1
    env = subprocess.run(["sh", "-c", f'eval "{out.strip()}"; echo "$DOCKER_CERT_PATH|$DOCKER_TLS_VERIFY"'],
                         capture_output=True, text=True, check=True).stdout.strip()
    assert env == f"{state / 'default' / 'client'}|1"


@pytest.mark.parametrize("how", ["flag", "env", "cwd"])
def test_config_discovery_names_the_cluster_for_every_command(how, state, tmp_path, monkeypatch, capsys):
    cfg = tmp_path / ("bakery.yml" if how == "cwd" else "prod.yml")
    cfg.write_text("cluster:\n  name: prod\n")
    extra = ["--config", str(cfg)] if how == "flag" else []
    if how == "env":
        monkeypatch.setenv("BAKERY_CONFIG", str(cfg))
    code, out, _ = run(capsys, "certs", "--output", "json", *extra)
    assert code == 0 and json.loads(out)["cluster"] == "prod"
    code, out, _ = run(capsys, "render", "--role", "worker", "--output", "json", *extra)
    assert code == 0 and json.loads(out)["cluster"] == "prod"


@pytest.mark.parametrize("shell", ["bash", "zsh"])
def test_completion_scripts_know_every_command(shell, capsys):
    code, out, _ = run(capsys, "completion", shell)
    assert code == 0
    for word in ("render", "convert", "deploy", "--role", "--output"):
        assert word in out
    if shell == "bash":
        subprocess.run(["bash", "-n"], input=out, text=True, check=True)


def test_help_imports_neither_docker_nor_openstacksdk():
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "bakery", "--help"], capture_output=True,
                          text=True, cwd="/", check=True, env={**os.environ})
    loaded = {line.split("|")[-1].strip().split(".")[0] for line in done.stderr.splitlines()
              if line.startswith("import time:")}
    assert not loaded & {"docker", "openstack", "shtab"}


def test_form_is_for_the_seed_and_lands_in_its_join_config(state, capsys):
    code, out, err = run(capsys, "render", "--role", "worker", "--form")
    assert code == 2 and "--form is for --role seed" in err
    for flag, want in (([], b'"form": false'), (["--form"], b'"form": true')):
        code = main(["render", "--role", "seed", "--gzip", "never", *flag])
        assert code == 0
        assert want in capsys.readouterr().out.encode()


def test_render_json_summary_with_out_file_still_writes_the_user_data(state, tmp_path, capsys):
    """`--output json -o FILE` wrote the summary into FILE: a node booted from it was never configured."""
    out = tmp_path / "w1.ud"
    code, stdout, err = run(capsys, "render", "--role", "worker", "--name", "w1", "--output", "json", "-o", str(out))
    assert code == 0, err
    assert out.read_bytes().startswith(b"#cloud-config")
    summary = json.loads(stdout)
    assert summary["out"] == str(out) and summary["bytes"] == out.stat().st_size
