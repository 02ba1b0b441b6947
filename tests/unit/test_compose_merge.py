"""extends (same file, other file, cycles) and several -f files with compose's override rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from bakery.compose import convert_files
from bakery.compose.merge import merge_service
from bakery.errors import ComposeError


@pytest.mark.parametrize(
    "base, over, expected",
    [
        ({"image": "a"}, {"image": "b"}, {"image": "b"}),
        ({"environment": {"A": "1", "B": "1"}}, {"environment": {"B": "2"}}, {"environment": {"A": "1", "B": "2"}}),
        ({"ports": ["1:1"]}, {"ports": ["2:2", "1:1"]}, {"ports": ["1:1", "2:2"]}),
        ({"volumes": ["a:/x", "/y"]}, {"volumes": ["b:/x"]}, {"volumes": ["b:/x", "/y"]}),
        ({"command": ["a"]}, {"command": "b"}, {"command": "b"}),
        ({"logging": {"driver": "d", "options": {"a": 1}}}, {"logging": {"options": {"b": 2}}},
         {"logging": {"driver": "d", "options": {"a": 1, "b": 2}}}),
        ({"dns": ["1.1.1.1"]}, {"dns": ["8.8.8.8"]}, {"dns": ["1.1.1.1", "8.8.8.8"]}),
    ],
)
def test_override_rules(base, over, expected):
    assert merge_service(base, over) == expected


def files(tmp_path: Path, **texts: str) -> dict[str, Path]:
    out = {}
    for name, text in texts.items():
        p = tmp_path / f"{name}.yml"
        p.write_text(text)
        out[name] = p
    return out


def test_extends_same_and_other_file(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "common.yml").write_text(
        'version: "2"\nservices:\n  base:\n    image: a\n    environment: {A: "1"}\n    volumes: ["./data:/d"]\n')
    f = files(tmp_path, main='version: "2"\nservices:\n  web:\n    extends: {file: sub/common.yml, service: base}\n'
              '    environment: {B: "2"}\n  worker:\n    extends: web\n    command: work\n')
    stack = convert_files([f["main"]], environ={}).stack
    assert stack["services"]["web"]["environment"] == {"A": "1", "B": "2"}
    assert stack["services"]["web"]["volumes"] == ["./sub/data:/d"]  # rebased to the project directory
    assert stack["services"]["worker"]["command"] == ["work"]
    assert stack["services"]["worker"]["image"] == "a"


@pytest.mark.parametrize(
    "text, needle",
    [
        ('version: "2"\nservices:\n  a: {extends: b}\n  b: {extends: a}\n', "extends cycle"),
        ('version: "2"\nservices:\n  a: {extends: a}\n', "extends cycle"),
        ('version: "2"\nservices:\n  a: {extends: nope}\n', "no service 'nope'"),
        ('version: "2"\nservices:\n  a: {extends: {file: none.yml, service: x}}\n', "no such file"),
        # docker-compose 1.x: "services with 'links' cannot be extended" (and volumes_from, depends_on, ...)
        ('version: "2"\nservices:\n  a: {extends: b}\n  b: {image: x, links: [c]}\n  c: {image: c}\n',
         "services with 'links' cannot be extended"),
        ('version: "2.1"\nservices:\n  a: {extends: b}\n  b: {image: x, depends_on: [c]}\n  c: {image: c}\n',
         "services with 'depends_on' cannot be extended"),
        ('version: "2"\nservices:\n  a: {extends: b}\n  b: {image: x, network_mode: "service:c"}\n  c: {image: c}\n',
         "services with 'network_mode: service' cannot be extended"),
    ],
)
def test_extends_errors(tmp_path, text, needle):
    f = files(tmp_path, main=text)
    with pytest.raises(ComposeError, match=needle):
        convert_files([f["main"]], environ={})


def test_cross_file_cycle(tmp_path):
    f = files(tmp_path, a='version: "2"\nservices:\n  x: {extends: {file: b.yml, service: y}}\n',
              b='version: "2"\nservices:\n  y: {extends: {file: a.yml, service: x}}\n')
    with pytest.raises(ComposeError, match=r"extends cycle: a.yml:x -> b.yml:y -> a.yml:x"):
        convert_files([f["a"]], environ={})


def test_several_files(tmp_path):
    f = files(tmp_path,
              base='version: "2"\nservices:\n  web:\n    image: a:1\n    ports: ["80:80"]\n    environment: [A=1]\n'
                   "networks:\n  front: {}\n",
              over='version: "2.1"\nservices:\n  web:\n    image: a:2\n    ports: ["443:443"]\n'
                   "    environment: {B: 2}\n  db: {image: d}\n")
    result = convert_files([f["base"], f["over"]], environ={})
    web = result.stack["services"]["web"]
    assert web["image"] == "a:2"
    assert web["ports"] == ["80:80", "443:443"]
    assert web["environment"] == {"A": "1", "B": "2"}
    assert set(result.stack["services"]) == {"db", "web"}
    assert result.source_version == "2.1"


def test_mixed_major_versions_refused(tmp_path):
    f = files(tmp_path, a='version: "2"\nservices:\n  x: {image: a}\n', b='version: "3"\nservices:\n  x: {image: b}\n')
    with pytest.raises(ComposeError, match="mix compose versions"):
        convert_files([f["a"], f["b"]], environ={})


@pytest.mark.parametrize(
    "text, needle",
    [
        # Docker Compose v2: "can't set distinct values on 'cpus' and 'deploy.resources.limits.cpus'"
        ("services:\n  a: {image: x, cpus: 0.5, deploy: {resources: {limits: {cpus: '1'}}}}\n", "cpus 0.5"),
        ("services:\n  a: {image: x, cpus: 0.5, deploy: {resources: {limits: {memory: 1g}}}}\n",
         "without cpus differ"),
        ("services:\n  a: {image: x, mem_limit: 64m, deploy: {resources: {limits: {memory: 32m}}}}\n", "mem_limit"),
        ("services:\n  a: {image: x, scale: 2, deploy: {replicas: 3}}\n", "scale 2 and deploy.replicas 3"),
        ('web: {image: x, build: .}\n', "both image and build"),
    ],
)
def test_compose_refusals(tmp_path, text, needle):
    f = files(tmp_path, main=text)
    with pytest.raises(ComposeError, match=needle):
        convert_files([f["main"]], environ={})


@pytest.mark.parametrize(
    "text",
    ["services:\n  a: {image: x, cpus: 0.5, mem_limit: 64m, deploy: {resources: {limits: {cpus: '0.5', "
     "memory: 67108864}}}}\n",
     "services:\n  a: {image: x, scale: 2, deploy: {mode: replicated}}\n"],
)
def test_the_same_value_twice_is_fine(tmp_path, text):
    f = files(tmp_path, main=text)
    assert convert_files([f["main"]], environ={}).stack["services"]["a"]["image"] == "x"
