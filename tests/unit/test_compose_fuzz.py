"""Fuzzing the loader and converter: any input gives a result or a clean bakery error.

Two generators: structured documents (random keys and values of the right
and wrong shapes, dumped as YAML) and raw text (a valid file with random
edits). A traceback of any other exception type is a bug.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bakery.compose import convert_files, dumps
from bakery.compose.keys import SERVICE_KEYS
from bakery.errors import BakeryError

SEED = """version: "2.1"
services:
  web:
    image: "nginx:${TAG:-1}"
    restart: on-failure:3
    ports: ["127.0.0.1:80:80", 443]
    environment: ["constraint:node==a", A=1]
    depends_on: {db: {condition: service_healthy}}
    volumes: ["data:/d", "./x:/x:ro"]
    networks: {front: {aliases: [w]}}
    mem_limit: 1g
    tmpfs: /run:size=1m
  db:
    image: db
    labels: {com.docker.swarm.constraints: '["disk==ssd"]'}
networks: {front: {driver: bridge}}
volumes: {data: {}}
"""

scalar = st.none() | st.booleans() | st.integers(-3, 70000) | st.floats(allow_nan=True) | st.sampled_from(
    ["", "x", "80:80", "a:/b", "/a:/b:ro", "1g", "always", "on-failure:x", "constraint:node==a", "${X}", "$$",
     "${X:?no}", "service_healthy", "tmpfs", "bind", "volume", "node==*", '["node==a"]', "/run:size=1m",
     "linux/amd64", "host", "none", "service:x", "db", "front", "data", "~", "affinity:container!=*w*"])
key = st.sampled_from(sorted(SERVICE_KEYS) + ["condition", "aliases", "type", "source", "target", "soft",
                                              "hard", "file", "service", "driver", "ipam", "config", "subnet",
                                              "external", "name", "x-a", "tmpfs", "size", "test"])
value = st.recursive(scalar, lambda c: st.lists(c, max_size=3) | st.dictionaries(key, c, max_size=3),
                     max_leaves=10)
service = st.dictionaries(key, value, max_size=6)
document = st.fixed_dictionaries(
    {"version": st.sampled_from(["2", "2.1", "2.2", "2.3", "2.4", "3", "3.4", "3.8", 2, 2.1, "1", "9"]),
     "services": st.dictionaries(st.sampled_from(["web", "db", "x"]), service, min_size=1, max_size=3)},
    optional={"networks": st.dictionaries(st.sampled_from(["front", "default"]), value, max_size=2),
              "volumes": st.dictionaries(st.sampled_from(["data"]), value, max_size=2)},
)


# Mostly well-shaped services, so the converter (not only the schema) is exercised.
STR = st.sampled_from(["x", "a:b", "/a", "80:80", "host", "none", "bridge", "service:x", "always", "no",
                       "on-failure:2", "unless-stopped", "linux/amd64", "1g", "${X:-d}", "web", "db", "/run:size=1m",
                       "data:/d", "./x:/x:ro", "127.0.0.1::80", "constraint:node==a", "12x", "0.5"])
LIST = st.lists(STR, max_size=3)
MAP = st.dictionaries(STR, STR | st.none() | st.integers(0, 9), max_size=3)
KIND = {
    "string": STR, "bool": st.booleans(), "bool_or_string": st.booleans() | STR, "int": st.integers(-1, 5),
    "number": st.floats(-1, 4) | STR, "number_or_string": st.integers(0, 200000) | STR, "size": st.integers(0, 9) | STR,
    "duration": STR, "command": STR | LIST, "string_or_list": STR | LIST, "list_of_strings": LIST,
    "list_of_ports": st.lists(STR | st.integers(1, 9000), max_size=2), "list": LIST, "dict": MAP, "deploy": st.just({}),
    "list_or_dict": LIST | MAP, "extends": st.sampled_from(["web", "db", {"service": "db"}]), "ulimits": st.just({}),
    "external": st.booleans(), "logging": st.just({"driver": "json-file"}), "ipam": st.just({}),
    "build": st.sampled_from([".", {"context": "."}]),
    "healthcheck": st.just({"test": ["CMD", "true"]}), "ports": st.lists(STR | st.integers(1, 9000), max_size=3),
    "service_volumes": LIST, "service_networks": st.sampled_from([["front"], {"front": {"aliases": ["a"]}}, ["nope"]]),
    "depends_on": st.sampled_from([["db"], ["web"], {"db": {"condition": "service_healthy"}}, ["zz"]]),
}
good_service = st.fixed_dictionaries(
    {"image": STR}, optional={k: KIND[spec.kind] for k, spec in SERVICE_KEYS.items()
                       if spec.allowed_in("2.4") and k != "image"})
good_document = st.fixed_dictionaries(
    {"version": st.just("2.4"), "services": st.dictionaries(st.sampled_from(["web", "db"]), good_service, min_size=1),
     "networks": st.just({"front": {}}), "volumes": st.just({"data": {}})})


def run(text: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "docker-compose.yml"
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        try:
            result = convert_files([path], environ={"TAG": "1"}, image_prefix="p")
        except BakeryError:
            return
        assert yaml.safe_load(dumps(result.stack))["version"] == result.version


@settings(max_examples=250, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(document)
def test_structured_documents(doc):
    run(yaml.safe_dump(doc))


@settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(good_document)
def test_well_shaped_documents(doc):
    run(yaml.safe_dump(doc))


@settings(max_examples=250, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, len(SEED)), st.integers(0, 8),
                          st.text(alphabet=st.sampled_from(list(": -[]{}\"'\t\n&*<!|>%@`#,$~0aZ\\")), max_size=4)),
                max_size=4))
def test_edited_text(edits):
    text = SEED
    for pos, cut, insert in edits:
        text = text[:pos] + insert + text[pos + cut:]
    run(text)


@settings(max_examples=100, deadline=None, database=None)
@given(st.text(max_size=200))
def test_any_text(text):
    run(text)
