"""The compose corpus and the stacks/ examples: every file converts, and
`docker stack config` (the reference validator) accepts every output.

The corpus (tests/corpus/compose) must use every service, network and volume
key of every version, and every classic-Swarm hint form.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from testkit import need_tool

from bakery.compose import convert_files, dumps
from bakery.compose.keys import ALL_VERSIONS, NETWORK_KEYS, VOLUME_KEYS, service_keys_for
from bakery.compose.nodes import load_nodes
from bakery.report import render

REPO = Path(__file__).resolve().parent.parent.parent
CORPUS = REPO / "tests" / "corpus" / "compose"
FILES = sorted(p for p in CORPUS.glob("*.yml") if p.name != "nodes.yml")
STACKS = sorted(p.parent for p in (REPO / "stacks").glob("*/docker-compose.yml"))
UPDATE = os.environ.get("BAKERY_UPDATE_GOLDEN") == "1"

HINT_FORMS = {
    "node name ==": r"constraint:node==\w",
    "node name !=": r"constraint:node!=\w",
    "engine label ==": r"constraint:(storage|region|disk)==\w",
    "engine label !=": r"constraint:storage!=",
    "glob *": r"constraint:node[!=]=\w*\*",
    "glob ?": r"constraint:node==\w+\?",
    "regex": r"constraint:region[!=]=/",
    "soft constraint": r"constraint:node==~",
    "soft affinity": r"affinity:image==~",
    "container affinity": r"affinity:container[!=]=",
    "image affinity": r"affinity:image!=",
    "label affinity": r"affinity:com\.example",
    "self anti-affinity": r"affinity:container!=\*",
    "reschedule env": r"reschedule:on-node-failure",
    "reschedule label": r"com\.docker\.swarm\.reschedule-policies",
    "constraints label": r"com\.docker\.swarm\.constraints",
    "affinities label": r"com\.docker\.swarm\.affinities",
    "map form": r'"constraint:node": "=',
    "default tag": r"constraint:(operatingsystem|kernelversion|storagedriver|executiondriver)",
    "env_file hint": r"env_file: corpus\.env",
    "version 1 hint": r"^web:\n  image: .*\n  environment:\n    - \"constraint",
}


def docker_cli() -> str:
    return shutil.which("docker", path="/usr/local/bin") or need_tool("docker")


def convert(path: Path):
    return convert_files([path], environ={"TAG": "1"}, nodes=load_nodes(CORPUS / "nodes.yml"),
                         image_prefix="registry.example/corpus", profiles=["*"])


def services_of(path: Path) -> tuple[str, dict]:
    data = yaml.safe_load(path.read_text())
    if "version" not in data:
        return ("spec", data["services"]) if "services" in data else ("1", data)
    version = str(data["version"])
    return {"2": "2.0", "3": "3.0"}.get(version, version), data["services"]


def test_corpus_size():
    assert len(FILES) >= 40


@pytest.mark.parametrize("version", ALL_VERSIONS)
def test_corpus_uses_every_key_of_every_version(version):
    used: set[str] = set()
    net_keys: set[str] = set()
    vol_keys: set[str] = set()
    for path in FILES:
        v, services = services_of(path)
        if v != version:
            continue
        for svc in services.values():
            used |= set(svc)
        data = yaml.safe_load(path.read_text())
        for net in (data.get("networks") or {}).values():
            net_keys |= set(net or {})
        for vol in (data.get("volumes") or {}).values():
            vol_keys |= set(vol or {})
    assert set(service_keys_for(version)) - used == set()
    if version != "1":
        assert {k for k, s in NETWORK_KEYS.items() if s.allowed_in(version)} - net_keys == set()
        assert {k for k, s in VOLUME_KEYS.items() if s.allowed_in(version)} - vol_keys == set()


@pytest.mark.parametrize("form", sorted(HINT_FORMS))
def test_corpus_has_every_hint_form(form):
    pattern = re.compile(HINT_FORMS[form], re.MULTILINE)
    assert any(pattern.search(p.read_text()) for p in FILES), form


@pytest.mark.validators
@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_corpus_file_converts_and_docker_accepts_it(path, tmp_path):
    docker = docker_cli()
    result = convert(path)
    out = tmp_path / "stack.yml"
    out.write_text(dumps(result.stack))
    proc = subprocess.run([docker, "stack", "config", "-c", str(out)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert yaml.safe_load(proc.stdout)["services"].keys() == result.stack["services"].keys()


def _example(case: Path) -> tuple[str, str]:
    result = convert_files([case / "docker-compose.yml"], environ={})
    report = "".join(f"{line}\n" for line in render(result.report.findings, verbose=True)).replace(f"{REPO}/", "")
    return dumps(result.stack), report


@pytest.mark.parametrize("case", STACKS, ids=[p.name for p in STACKS])
def test_stack_examples_are_current(case):
    stack, report = _example(case)
    if UPDATE:
        (case / "stack.yml").write_text(stack)
        (case / "report.txt").write_text(report)
    assert (case / "stack.yml").read_text() == stack, "BAKERY_UPDATE_GOLDEN=1 rewrites stacks/*/stack.yml"
    assert (case / "report.txt").read_text() == report


@pytest.mark.validators
@pytest.mark.parametrize("case", STACKS, ids=[p.name for p in STACKS])
def test_docker_accepts_stack_examples(case, tmp_path):
    out = tmp_path / "stack.yml"
    out.write_text((case / "stack.yml").read_text())
    proc = subprocess.run([docker_cli(), "stack", "config", "-c", str(out)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_required_examples_exist():
    assert {p.name for p in STACKS} >= {"voting-app", "nfs-web", "selenium-hub", "whoami-pinned", "global-service",
                                         "monitoring"}
