"""The stack file is emitted from the typed model (bakery.stack.emit): what the file says reads back
as the model it came from, for every golden convert case, and every value's written form parses back
to the same number."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bakery.compose import convert_files
from bakery.compose.emit import stack_file
from bakery.compose.nodes import load_nodes
from bakery.stack import emit, load, values

CASES = Path(__file__).resolve().parent.parent / "cases" / "convert"
NAMES = sorted(p.name for p in CASES.iterdir() if (p / "stack.yml").exists())


def _convert(name: str):
    case = CASES / name
    args = json.loads((case / "args.json").read_text()) if (case / "args.json").exists() else {}
    return convert_files([case / f for f in args.get("files", ["docker-compose.yml"])], environ=args.get("env", {}),
                         nodes=load_nodes(case / args["nodes"]) if "nodes" in args else None,
                         image_prefix=args.get("image_prefix"), publish_mode=args.get("publish_mode", "ingress"),
                         profiles=args.get("profiles"), env_files=[case / e for e in args.get("env_files", [])])


@pytest.mark.parametrize("name", NAMES)
def test_the_file_reads_back_as_the_model_it_was_written_from(name):
    result = _convert(name)
    data = emit.data(result.model, result.version)
    again = load(data)
    assert again == result.model
    assert [s.extensions for s in again.services] == [s.extensions for s in result.model.services]
    assert stack_file(data) == result.stack  # the file convert writes is this data's file form
    assert emit.data(again, result.version) == data


def test_a_version_is_raised_only_for_a_form_it_lacks(tmp_path):
    path = tmp_path / "c.yml"
    path.write_text('version: "3.0"\nservices:\n  a:\n    image: a\n    ports: ["80:80"]\n')
    result = convert_files([path], environ={})
    assert result.stack["version"] == "3.0"
    deploy = result.stack["services"]["a"]["deploy"]
    assert "rollback_config" not in deploy and "update_config" not in deploy  # Docker's defaults: 3.0 has no order
    path.write_text('version: "3.0"\nservices:\n  a:\n    image: a\n    deploy: {update_config: {parallelism: 2}}\n')
    update = convert_files([path], environ={}).stack["services"]["a"]["deploy"]["update_config"]
    assert update == {"parallelism": 2, "failure_action": "pause"}  # no `order`: 3.4
    host = load({"services": {"a": {"image": "a", "ports": [{"target": 80, "published": 8080, "mode": "host"}]}}})
    assert emit.data(host, "3.0")["version"] == "3.2"  # a host-mode port has no short form
    mount = {"type": "tmpfs", "target": "/t", "tmpfs": {"size": 9}}
    tmpfs = load({"services": {"a": {"image": "a", "volumes": [mount]}}})
    assert emit.data(tmpfs, "3.2")["version"] == "3.6"


@pytest.mark.parametrize("n, text", [(0, "0s"), (90 * 10**9, "1m30s"), (1_500_000, "1.5ms"), (500, "500ns"),
                                     (3600 * 10**9 + 1_500_000_000, "1h0m1.5s"), (2 * 10**9, "2s")])
def test_durations_are_written_as_go_writes_them(n, text):
    assert emit.duration(n) == text
    assert values.duration_ns(text) == n


@pytest.mark.parametrize("n, text", [(536870912, "512m"), (1 << 30, "1g"), (1000, "1000"), (1536, "1536"),
                                     (3 << 20, "3m"), (0, "0")])
def test_sizes_are_written_in_an_exact_unit(n, text):
    assert emit.size(n) == text
    assert values.size_bytes(text) == n


@given(st.integers(min_value=0, max_value=10**15))
def test_every_duration_parses_back(n):
    assert values.duration_ns(emit.duration(n)) == n


@given(st.integers(min_value=0, max_value=1 << 52))
def test_every_size_parses_back(n):
    assert values.size_bytes(emit.size(n)) == n


@given(st.integers(min_value=1, max_value=10**12))
def test_every_cpu_count_parses_back(n):
    assert values.nano_cpus(emit.cpus(n)) == n


def test_a_file_its_own_schema_refuses_is_never_written(tmp_path, monkeypatch, capsys):
    """Should the emitter ever write what the v3 schema of its version refuses (here: made to), the
    convert fails, says it is bakery's bug, and writes nothing: never an exit 0 on such a file."""
    from bakery.cli import main

    real = emit.data

    def broken(stack, version):
        out = real(stack, version)
        out["services"]["a"]["image"] = 5  # an image is a string
        return out

    monkeypatch.setattr(emit, "data", broken)
    src, out = tmp_path / "c.yml", tmp_path / "stack.yml"
    src.write_text('version: "3.8"\nservices:\n  a:\n    image: a\n')
    assert main(["convert", str(src), "-o", str(out)]) not in (0, 2)
    err = capsys.readouterr().err
    assert "schema refuses" in err and "services.a.image" in err and "bug in bakery" in err, err
    assert not out.exists()
