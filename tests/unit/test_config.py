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
        ("cluster:\n  name: Prod_1\n", 2, "cluster.name", "is not allowed here"),
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


@pytest.mark.parametrize(
    "text, line, message, fix",
    [
        # An unknown key: the close one, else where every key is written down.
        ("swarm:\n  seeds: 10.0.0.1\n", 2, "swarm.seeds: unknown key 'seeds'", "did you mean 'seed'?"),
        ("docker:\n  instal: none\n", 2, "docker.instal: unknown key 'instal'", "did you mean 'install'?"),
        ("cluster: {}\nzzz: 1\n", 2, "zzz: unknown key 'zzz'",
         "none of the 8 keys allowed here is close; they are listed in the starter file `bakery init` writes"),
        ("docker:\n  daemon:\n    zzz: 1\n", 3, "docker.daemon.zzz: unknown key 'zzz'",
         "allowed keys: insecure_registries, labels, log_driver, log_opts, registry_mirrors, storage_driver"),
        ("tls:\n  zzz: 1\n", 2, "tls.zzz: unknown key 'zzz'", "allowed keys: sans"),
        # YAML 1.1 reads these unquoted as booleans or numbers; the rule wants text.
        ("cluster:\n  name: yes\n", 2, "unquoted yes is the boolean true in YAML, and text is wanted here",
         'quote it: name: "yes"'),
        ("docker:\n  install: apt-repo\n  version: 27.10\n", 3,
         "unquoted 27.10 is the number 27.1 in YAML", 'quote it: version: "27.10"'),
        ("tls:\n  sans: [lb.example, on]\n", 2, "unquoted on is the boolean true", 'quote it: - "on"'),
        # Not a quoting trap: quoting would not make it valid.
        ("swarm:\n  join_port: 'x'\n", 2, "'x' is not of type 'integer'", "give a whole number"),
        ("consul:\n  agents: no\n", None, None, None),  # a boolean where a boolean is wanted
    ],
)
def test_fixes_name_the_likely_mistake(tmp_path, text, line, message, fix):
    if message is None:
        assert load(tmp_path, text).consul.agents is False
        return
    with pytest.raises(ConfigError) as exc:
        load(tmp_path, text)
    assert exc.value.line == line
    assert message in str(exc.value)
    assert exc.value.fix is not None and fix in exc.value.fix


def test_every_mistake_is_reported_in_file_order(tmp_path):
    text = ("cluster:\n  name: Prod_1\nswarm:\n  seeds: 10.0.0.1\ndocker:\n  install: snap\n"
            "  daemon:\n    log_opts: {max-file: 3}\n")
    with pytest.raises(ConfigError) as exc:
        load(tmp_path, text)
    err, f = exc.value, tmp_path / "bakery.yml"
    lines = str(err).splitlines()
    assert lines[0] == f"{f}: 4 problems"
    assert [p.line for p in err.problems] == [2, 4, 6, 8]
    assert all(isinstance(p, ConfigError) and p.fix for p in err.problems)
    assert lines[2] == f"  {f}:4:3 swarm.seeds: unknown key 'seeds' (did you mean 'seed'?)"
    assert [p["path"] for p in err.as_dict()["problems"]] == [  # type: ignore[union-attr]
        "cluster.name", "swarm.seeds", "docker.install", "docker.daemon.log_opts.max-file"]


def test_every_broken_rule_is_reported(tmp_path):
    text = ("docker:\n  version: '27.3'\nnfs:\n  - {server: a, export: /x, path: /proc/x}\n"
            "  - {server: b, export: /y, path: /a}\n  - {server: c, export: /z, path: /a/}\n")
    with pytest.raises(ConfigError) as exc:
        load(tmp_path, text)
    assert [(p.line, p.path) for p in exc.value.problems] == [
        (2, ("docker", "version")), (4, ("nfs", 0, "path")), (6, ("nfs", 2, "path"))]


def test_render_prints_every_mistake(tmp_path, capsys, monkeypatch):
    from bakery.cli import main

    monkeypatch.setenv("BAKERY_STATE_DIR", str(tmp_path / "state"))
    f = tmp_path / "bakery.yml"
    f.write_text("swarm:\n  seeds: 10.0.0.1\n  join_port: 0\n")
    assert main(["render", "--role", "seed", "--config", str(f)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == [
        f"bakery render: error: {f}: 2 problems",
        f"  {f}:2:3 swarm.seeds: unknown key 'seeds' (did you mean 'seed'?)",
        f"  {f}:3:14 swarm.join_port: 0 is less than the minimum of 1 (use a number from 1 to 65535)",
    ]


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
