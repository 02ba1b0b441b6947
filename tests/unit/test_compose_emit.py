"""The emitter writes YAML that reads back as the same data, in a stable order."""

from __future__ import annotations

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from bakery.compose.emit import dumps, ordered

scalars = st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.text(max_size=12) | st.sampled_from(
    ["yes", "no", "on", "1.0", "0x1f", "012", "~", "null", "-", "- a", "a: b", "#x", "8080:80", "1:30", "$$A",
     "node.hostname!=a", "*", "&a", "!x", "[a]", "{a}", "a #b", " lead", "trail ", "\t", "'", '"', "\\", "é"])
keys = st.text(min_size=1, max_size=8) | st.sampled_from(["yes", "1", "null", "a b", "x-bakery", "-a"])
data = st.recursive(scalars, lambda c: st.lists(c, max_size=4) | st.dictionaries(keys, c, max_size=4),
                    max_leaves=20)


@settings(max_examples=300, deadline=None, database=None)
@given(st.dictionaries(keys, data, max_size=5))
def test_round_trip(doc):
    assert yaml.safe_load(dumps(doc)) == ordered(doc)


def test_layout():
    text = dumps({"x-bakery": {"a": 1}, "services": {"b": {"z": [1], "a": {}}}, "version": "3.4"})
    assert text == 'version: "3.4"\nservices:\n  b:\n    a: {}\n    z:\n    - 1\nx-bakery:\n  a: 1\n'
