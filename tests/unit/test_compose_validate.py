"""The fast schema check agrees with jsonschema on the compose schemas."""

from __future__ import annotations

import json
from importlib import resources

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bakery.compose.keys import ALL_VERSIONS, SERVICE_KEYS
from bakery.compose.schemagen import schema_name
from bakery.compose.validate import is_valid


def schema(version):
    return json.loads(resources.files("bakery").joinpath("schemas", schema_name(version)).read_text())


scalars = st.none() | st.booleans() | st.integers(-5, 5) | st.floats(allow_nan=False, allow_infinity=False) | \
    st.sampled_from(["x", "service_healthy", "service_started", "bind", "/a", "80:80"])
keys = st.sampled_from(sorted(SERVICE_KEYS) + ["x-a", "condition", "test", "soft", "hard", "aliases", "target",
                                                "type", "source", "service", "file", "driver", "options", "bogus"])
values = st.recursive(scalars, lambda c: st.lists(c, max_size=3) | st.dictionaries(keys, c, max_size=3),
                      max_leaves=12)
services = st.dictionaries(st.sampled_from(["web", "db", "b a d"]), st.dictionaries(keys, values, max_size=4),
                           max_size=2)


@pytest.mark.parametrize("version", ["1", "2.0", "2.1", "2.3", "2.4", "3.2", "3.9"])
@settings(max_examples=150, deadline=None, database=None)
@given(svcs=services, extra=st.dictionaries(st.sampled_from(["networks", "volumes", "x-y", "bad"]), values,
                                            max_size=2))
def test_agrees_with_jsonschema(version, svcs, extra):
    doc = svcs if version == "1" else {"version": version, "services": svcs, **extra}
    s = schema(version)
    expected = jsonschema.validators.validator_for(s)(s).is_valid(doc)
    assert is_valid(s, doc) is expected


@pytest.mark.parametrize("version", ALL_VERSIONS)
def test_schemas_are_valid_json_schema(version):
    jsonschema.Draft7Validator.check_schema(schema(version))
