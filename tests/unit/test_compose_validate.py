"""The fast schema check agrees with jsonschema on the compose schemas; problems are located."""

from __future__ import annotations

import json
from importlib import resources

import jsonschema
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from bakery.compose.keys import ALL_VERSIONS, SERVICE_KEYS
from bakery.compose.schemagen import schema_name
from bakery.compose.validate import is_valid, problems
from bakery.yamlsrc import loads


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


@pytest.mark.parametrize("version", ["1", "2.1", "3.2", "3.9"])
@settings(max_examples=60, deadline=None, database=None)
@given(svcs=services)
def test_every_invalid_document_gets_located_problems(version, svcs):
    data = svcs if version == "1" else {"version": version, "services": svcs}
    doc = loads(yaml.safe_dump(data), "f.yml")
    found = problems(doc, version)
    assert bool(found) is not is_valid(schema(version), doc.data)
    assert all(p.line is not None and p.fix for p in found), [str(p) for p in found]


@pytest.mark.parametrize(
    "text, version, expected",
    [
        ('version: "2.4"\nservices:\n  web: {image: a}\n', "2.4", []),
        ('version: "2.0"\nservices:\n  web:\n    image: a\n    scale: 2\n    cpus: 1\n', "2.0",
         [(5, "scale is not part of compose 2.0"), (6, "cpus is not part of compose 2.0")]),
        ('version: "3.4"\nservices:\n  web:\n    imag: a\n    mem_limit: 1g\n', "3.4",
         [(4, "unknown key 'imag'"), (5, "mem_limit is not part of compose 3.4")]),
        ("web:\n  image: a\n  imag: b\ndb:\n  restart: no\n", "1",
         [(3, "unknown key 'imag'"), (5, "unquoted no is the boolean false in YAML, and text is wanted here")]),
    ],
)
def test_problems(text, version, expected):
    found = problems(loads(text, "f.yml"), version)
    assert sorted((p.line, p.message) for p in found) == expected
