"""Fuzzing the cluster definition and the node inventory: any input is a result or a clean
bakery error, never another exception (bounded: a few hundred examples per run)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bakery import config
from bakery.commands.init import starter_text
from bakery.compose.nodes import load_nodes
from bakery.errors import BakeryError

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
START = starter_text()
NODES = "- hostname: web1\n  labels: {zone: a}\n  engine_labels: {storage: ssd}\n- hostname: db1\n"
NOISE = st.sampled_from(["\n", ":", "- ", "[", "{", "}", "]", '"', "'", "!!int ", "!!float .infx", "&a ", "*a",
                         "<<: *a", "~", "%", "\t", " ", "#", "\\n", "\x00", "\u2028", "yes", "0o17", "1e400",
                         "!!binary x", "!!timestamp nope", "!custom ", "? ", "|", ">", "*" * 3, "[" * 200])


@st.composite
def mutated(draw: st.DrawFn, text: str) -> str:
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(text)))
        cut = draw(st.integers(0, 8))
        text = text[:at] + draw(NOISE | st.text(max_size=6)) + text[at + cut:]
    return text


def _load_config(text: str) -> None:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "bakery.yml"
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        try:
            config.load(str(path))
        except BakeryError:
            pass


@SETTINGS
@given(mutated(START))
def test_mutated_bakery_yml_is_a_result_or_a_clean_error(text):
    _load_config(text)


leaf = st.none() | st.booleans() | st.integers(-5, 70000) | st.text(max_size=12) | st.floats(allow_nan=True)
tree = st.recursive(leaf, lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=8), c, max_size=3),
                    max_leaves=8)
sections = st.dictionaries(st.sampled_from(["cluster", "swarm", "docker", "nfs", "consul", "labels", "security",
                                            "name", "seed"]), tree, max_size=4)


@SETTINGS
@given(sections)
def test_random_documents_are_a_result_or_a_clean_error(doc):
    _load_config(yaml.safe_dump(doc, allow_unicode=True))


@SETTINGS
@given(mutated(NODES))
def test_mutated_node_inventories_are_a_result_or_a_clean_error(text):
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "nodes.yml"
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        try:
            load_nodes(path)
        except BakeryError:
            pass
