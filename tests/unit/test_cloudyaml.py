"""bakery's cloud-config emitter must read back exactly as PyYAML parses it."""

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from bakery.cloudyaml import dump

scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.text(max_size=40),
                    st.sampled_from(["0600", "yes", "null", "1e3", "a: b", "- x", "#c", " lead", "x\n  y\n",
                                     "tail\n\n", "no-newline\nend", "\ttab\n", "ünï\ncode\n", "[x]", "{y}"]))
keys = st.one_of(st.text(min_size=1, max_size=12), st.sampled_from(["on", "off", "true", "1", "path"]))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                       st.dictionaries(keys, inner, max_size=4)), max_leaves=12)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(keys, values, max_size=5))
def test_round_trip(doc):
    assert yaml.safe_load(dump(doc)) == (doc or None) or (doc == {} and dump(doc) == "")
