"""The disposition table is complete, and the schemas are generated from it."""

from __future__ import annotations

import json
from importlib import resources

import pytest

from bakery.compose import schemagen, service
from bakery.compose.keys import ALL_VERSIONS, NETWORK_KEYS, SERVICE_KEYS, VOLUME_KEYS, service_keys_for

DISPOSITIONS = {"exact", "approximated", "unsupported", "resolved"}
# Keys whose conversion is done elsewhere: by normalize (v1 spellings), by another key's handler, or
# (approximated) by dropping them with the report line.
# profiles: the loader (merge.py) leaves out inactive services and removes the key.
HANDLED_ELSEWHERE = {"log_driver", "log_opt", "dockerfile", "net", "cpu_period", "expose", "links", "extends",
                     "profiles"}


@pytest.mark.parametrize("version", ALL_VERSIONS)
def test_committed_schema_is_generated_from_the_table(version):
    committed = resources.files("bakery").joinpath("schemas", schemagen.schema_name(version)).read_text()
    assert committed == schemagen.render(version), "run python -m bakery.compose.schemagen"


@pytest.mark.parametrize("version", ALL_VERSIONS)
def test_every_key_the_schema_allows_has_a_row(version):
    schema = json.loads(schemagen.render(version))
    services = schema if version == "1" else schema["properties"]["services"]
    allowed = set(next(iter(services["patternProperties"].values()))["properties"])
    assert allowed == set(service_keys_for(version))
    assert allowed <= set(SERVICE_KEYS)


@pytest.mark.parametrize("table", [SERVICE_KEYS, NETWORK_KEYS, VOLUME_KEYS])
def test_rows_are_explained(table):
    for name, spec in table.items():
        assert spec.name == name
        assert spec.disposition in DISPOSITIONS
        assert spec.note, name
        if spec.disposition in ("approximated", "unsupported"):
            assert len(spec.note) > 20, f"{name}: say what is lost or what to do instead"


@pytest.mark.parametrize("name", sorted(SERVICE_KEYS))
def test_every_kept_key_has_a_handler(name):
    spec = SERVICE_KEYS[name]
    if spec.disposition == "unsupported":
        assert name not in service.HANDLERS, f"{name} is unsupported but converted"
    elif name not in HANDLED_ELSEWHERE:
        assert name in service.HANDLERS, f"{name} is {spec.disposition} but nothing converts it"


@pytest.mark.parametrize(
    "key, version, allowed",
    [("healthcheck", "2.0", False), ("healthcheck", "2.1", True), ("scale", "2.1", False), ("scale", "2.2", True),
     ("runtime", "2.3", True), ("platform", "2.3", False), ("platform", "2.4", True), ("net", "1", True),
     ("net", "2.0", False), ("networks", "1", False), ("deploy", "2.4", False), ("deploy", "3.0", True),
     ("secrets", "3.0", False), ("secrets", "3.1", True), ("init", "3.6", False), ("init", "3.7", True),
     ("mem_limit", "3.9", False), ("extends", "3.4", False)],
)
def test_versions(key, version, allowed):
    assert SERVICE_KEYS[key].allowed_in(version) is allowed


def test_levels():
    assert SERVICE_KEYS["image"].level == "info"
    assert SERVICE_KEYS["privileged"].level == "warning"
    assert SERVICE_KEYS["links"].level == "warning"
