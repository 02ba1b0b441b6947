"""The cluster definition: defaults, validation errors with file:line, rules."""

import pytest

from bakery import config
from bakery.errors import ConfigError


def load(tmp_path, text):
    f = tmp_path / "bakery.yml"
    f.write_text(text)
    return config.load(f)


def test_defaults_need_no_file():
    cfg = config.load(None)
    assert cfg.name == "default"
    assert cfg.docker.api_port == 2376
    assert cfg.docker.install == "distro"
    assert cfg.swarm.seed == "seed"
    assert cfg.block_metadata is True
    assert cfg.source == "<defaults>"


def test_file_overrides_deeply(tmp_path):
    cfg = load(tmp_path, "docker:\n  daemon:\n    storage_driver: vfs\n")
    assert cfg.docker.daemon.storage_driver == "vfs"
    assert cfg.docker.daemon.log_driver == "json-file"  # default kept


@pytest.mark.parametrize(
    "text, line, path, needle",
    [
        ("docker:\n  install: snap\n", 2, "docker.install", "'snap' is not one of"),
        ("docker:\n  api_port: 99999\n", 2, "docker.api_port", "99999"),
        ("swarm:\n  seeds: 10.0.0.1\n", 2, "swarm.seeds", "unknown key 'seeds'"),
        ("cluster:\n  name: Prod_1\n", 2, "cluster.name", "does not match"),
        ("nfs:\n  - server: a\n    export: /x\n", 2, "nfs[0]", "'path' is a required property"),
        ("nfs:\n  - {server: a, export: /x, path: /a}\n  - {server: b, export: /y, path: /a/}\n",
         3, "nfs[1].path", "already the mount path of nfs[0]"),
        ("docker:\n  install: distro\n  version: '27.3'\n", 3, "docker.version", "pins nothing"),
        ("docker:\n  daemon:\n    log_opts: {max-file: 3}\n", 3, "docker.daemon.log_opts.max-file",
         'unquoted 3 is a number in YAML, and text is wanted here (quote it: max-file: "3")'),
        ("swarm: {seed: 10.0.0.1}\nswarm: {seed: 10.0.0.2}\n", 2, "swarm", "duplicate key"),
        ("docker:\n\tinstall: none\n", 2, "", "tab"),
    ],
)
def test_errors_say_where_and_how_to_fix(tmp_path, text, line, path, needle):
    with pytest.raises(ConfigError) as exc:
        load(tmp_path, text)
    message = str(exc.value)
    assert exc.value.line == line, message
    assert message.startswith(f"{tmp_path / 'bakery.yml'}:{line}"), message
    assert path in message
    assert needle in message
    assert "(" in message  # a fix is always offered


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        config.load(tmp_path / "nope.yml")


def test_find_config_order(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("BAKERY_CONFIG", raising=False)
    assert config.find_config(None) is None
    (tmp_path / "bakery.yml").write_text("{}\n")
    assert config.find_config(None) == "bakery.yml"
    monkeypatch.setenv("BAKERY_CONFIG", "/x.yml")
    assert config.find_config(None) == "/x.yml"
    assert config.find_config("given.yml") == "given.yml"


def test_starter_file_is_valid_and_states_the_defaults(tmp_path):
    from bakery.commands.init import starter_text

    f = tmp_path / "bakery.yml"
    f.write_text(starter_text())
    cfg = config.load(f)
    assert cfg == config.build({}, str(f))


def test_init_refuses_to_overwrite(tmp_path, capsys):
    from bakery.cli import main

    target = tmp_path / "bakery.yml"
    assert main(["init", str(target)]) == 0
    assert main(["init", str(target)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["init", str(target), "--force"]) == 0
