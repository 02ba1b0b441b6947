"""What `bakery convert` writes is what `bakery deploy` deploys: for every golden convert case,
the Engine specs built from the compose input equal those built from the converted stack file
loaded back (so switching `bakery deploy app.yml` for `bakery deploy stack.yml` is a no-op)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bakery.compose import convert_files, dumps
from bakery.compose.nodes import load_nodes
from bakery.swarm import build

CASES = Path(__file__).resolve().parent.parent / "cases" / "convert"
NAMES = sorted(p.name for p in CASES.iterdir() if (p / "stack.yml").exists())


def _specs(result, base: Path):
    wanted = build("st", result.model, base_dir=base, environ={})
    return [(d.kind, d.key, d.name, d.spec, d.data) for d in wanted.objects], wanted.runs, wanted.node_labels


@pytest.mark.parametrize("name", NAMES)
def test_specs_from_compose_equal_specs_from_the_converted_file(name, tmp_path):
    case = CASES / name
    args = json.loads((case / "args.json").read_text()) if (case / "args.json").exists() else {}
    files = [case / f for f in args.get("files", ["docker-compose.yml"])]
    nodes = load_nodes(case / args["nodes"]) if "nodes" in args else None
    env = args.get("env", {})
    compose = convert_files(files, environ=env, nodes=nodes, image_prefix=args.get("image_prefix"),
                            publish_mode=args.get("publish_mode", "ingress"), profiles=args.get("profiles"),
                            env_files=[case / e for e in args.get("env_files", [])])
    stack_file = case / "converted.yml"  # beside the input: relative paths mean the same folder
    try:
        stack_file.write_text(dumps(compose.stack))
        again = convert_files([stack_file], environ={})
    finally:
        stack_file.unlink()
    assert again.stack == compose.stack
    assert _specs(again, case) == _specs(compose, case)


def _service_spec(tmp_path: Path, compose: str, name: str = "app") -> dict:
    path = tmp_path / "app.yml"
    path.write_text(compose)
    result = convert_files([path], environ={})
    wanted = build("st", result.model, base_dir=tmp_path, environ={})
    return next(d.spec for d in wanted.objects if d.key == name and d.kind == "service")


def test_a_literal_dollar_deploys_as_one_dollar(tmp_path):
    spec = _service_spec(tmp_path, 'version: "2"\nservices:\n  app:\n    image: a\n    environment: {PRICE: "$$5"}\n')
    assert spec["TaskTemplate"]["ContainerSpec"]["Env"] == ["PRICE=$5"]


def test_a_size_convert_keeps_is_a_size_deploy_takes(tmp_path):
    spec = _service_spec(tmp_path, 'version: "2"\nservices:\n  app:\n    image: a\n    mem_limit: 64MiB\n')
    assert spec["TaskTemplate"]["Resources"]["Limits"]["MemoryBytes"] == 64 << 20


@pytest.mark.parametrize(("extra", "top", "order"), [
    ("", "", "start-first"),
    ("    volumes: ['pgdata:/var/lib/postgresql/data']\n", "volumes:\n  pgdata: {}\n", "stop-first"),
    ("    volumes: ['./data:/data']\n", "", "stop-first"),
])
def test_v2_update_defaults_are_in_the_file_and_safe(tmp_path, extra, top, order):
    text = f'version: "2"\nservices:\n  app:\n    image: a\n{extra}{top}'
    spec = _service_spec(tmp_path, text)
    assert (spec["UpdateConfig"]["Order"], spec["UpdateConfig"]["FailureAction"]) == (order, "rollback")
    assert (spec["RollbackConfig"]["Order"], spec["RollbackConfig"]["FailureAction"]) == (order, "pause")
    written = convert_files([tmp_path / "app.yml"], environ={}).stack["services"]["app"]["deploy"]
    assert written["update_config"]["order"] == order


@pytest.mark.parametrize(("deploy", "path", "message"), [
    ("{placement: x}", ("services", "app", "deploy", "placement"), "must be a mapping"),
    ("{replicas: .inf}", ("services", "app", "deploy", "replicas"), "not a valid replica count"),
    ("{mode: [global]}", ("services", "app", "deploy", "mode"), "is not one of"),
])
def test_bad_v3_deploy_contents_are_located_errors(tmp_path, deploy, path, message):
    from bakery.errors import ComposeError

    file = tmp_path / "stack.yml"
    file.write_text(f'version: "3.8"\nservices:\n  app:\n    image: a\n    deploy: {deploy}\n')
    with pytest.raises(ComposeError, match=message) as err:
        convert_files([file], environ={})
    assert (err.value.source, err.value.line, err.value.path) == (str(file), 5, path)
