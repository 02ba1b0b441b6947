"""Loading: YAML, versions, schema errors with file:line:col, YAML traps."""

from __future__ import annotations

from pathlib import Path

import pytest

from bakery.compose import convert_files
from bakery.compose.loader import load_file
from bakery.errors import ComposeError
from bakery.report import Report


def write(tmp_path: Path, text: str, name: str = "docker-compose.yml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


@pytest.mark.parametrize(
    "text, version",
    [
        ("web:\n  image: a\n", "1"),
        ('version: "2"\nservices:\n  web: {image: a}\n', "2.0"),
        ('version: "2.0"\nservices:\n  web: {image: a}\n', "2.0"),
        ("version: '2.4'\nservices:\n  web: {image: a}\n", "2.4"),
        ('version: "3"\nservices:\n  web: {image: a}\n', "3.0"),
        ('version: "3.9"\nservices:\n  web: {image: a}\n', "3.9"),
        ("version: 2\nservices:\n  web: {image: a}\n", "2.0"),
        ("version: 2.1\nservices:\n  web: {image: a}\n", "2.1"),
        ("services:\n  web: {image: a}\n", "spec"),
        ('version: "3.13"\nservices:\n  web: {image: a}\n', "3.13"),
        ("version: 3.10\nservices:\n  web: {image: a}\n", "3.10"),
        # Docker Compose v2 ignores an obsolete version: a 3.x file only the Compose Specification accepts,
        # or a version no 2.x/3.x format has, is read as the Compose Specification.
        ('version: "3.8"\nservices:\n  web: {image: a, mem_limit: 1g}\n', "spec"),
        ('version: "3.8"\nname: app\nservices:\n  web: {image: a}\n', "spec"),
        ('version: "4"\nservices:\n  web: {image: a}\n', "spec"),
    ],
)
def test_versions(tmp_path, text, version):
    assert load_file(write(tmp_path, text), {}, Report()).version == version


def test_unquoted_version_warns(tmp_path):
    report = Report()
    load_file(write(tmp_path, "version: 2.1\nservices:\n  web: {image: a}\n"), {}, report)
    [w] = report.warnings
    assert w.code == "compose.version.unquoted" and w.fix == 'write version: "2.1"' and w.line == 1


@pytest.mark.parametrize(
    "text, line, column, needle",
    [
        ("", None, None, "the compose file is empty"),
        ("- a\n", 1, 1, "a compose file is a mapping"),
        ('version: "1"\nservices: {}\n', 1, 10, "unsupported compose version '1'"),
        ('version: "2.5"\nservices: {}\n', 1, 10, "unsupported compose version '2.5'"),
        ("version: [2]\nservices: {}\n", 1, 10, "version must be a string"),
        ('version: "2"\nservices:\n  web:\n    image: a\n    image: b\n', 5, 5, "duplicate key 'image'"),
        ('version: "2"\nservices:\n  web:\n\timage: a\n', 4, 1, "invalid YAML"),
        ('version: "2"\nservices:\n  web:\n    imag: a\n', 4, 5, "unknown key 'imag'"),
        ('version: "2"\nservices:\n  web:\n    image: a\n    healthcheck: {test: x}\n', 5, 5,
         'healthcheck is not part of compose 2.0 (set version: "2.1" or later)'),
        ('version: "3.4"\nservices:\n  web:\n    image: a\n    mem_limit: 1g\n    imag: b\n', None, None,
         "in 3.x files use deploy.resources.limits.memory"),
        ('web:\n  image: a\n  networks: [x]\n', 3, 3, "networks is not part of compose 1"),
        ('version: "2.1"\nservices:\n  web:\n    image: a\n    mem_limit: [1]\n', 5, 16, "is not of type"),
        ('version: "2"\nservices:\n  web:\n    image: a\n    ports: 80\n', 5, 12, "is not of type"),
        ('version: "2"\nservices:\n  "we b": {image: a}\n', 3, 3, "unknown key 'we b'"),
        ('version: "2"\nservices:\n  web: {image: a}\n---\nx: 1\n', 5, None, "more than one YAML document"),
        ('version: "2"\nservices:\n  web:\n    image: ${X:?X is needed}\n', 4, 12, "required variable X"),
        ('version: "2"\nservices:\n  web:\n    image: 2020-01-01\n', 4, 12,
         'unquoted 2020-01-01 is a date in YAML, and text is wanted here (quote it: image: "2020-01-01")'),
        ('version: "2"\nfoo: 1\nservices: {}\n', 2, 1, "unknown key 'foo'"),
        ('version: "2"\nservices:\n  web: &a\n    image: x\n    labels: *a\n', 3, None, "recursive alias"),
    ],
)
def test_errors_point_at_the_place(tmp_path, text, line, column, needle):
    path = write(tmp_path, text)
    with pytest.raises(ComposeError) as exc:
        load_file(path, {}, Report())
    assert needle in str(exc.value)
    assert exc.value.line == line
    if column is not None:
        assert exc.value.column == column
    if line is not None:
        assert str(exc.value).startswith(f"{path}:{line}")


@pytest.mark.parametrize(
    "text, line, message, fix",
    [
        ('version: "2.4"\nservices:\n  web:\n    image: a\n    restart: no\n', 5,
         "services.web.restart: unquoted no is the boolean false in YAML, and text is wanted here",
         'quote it: restart: "no"'),
        ('version: "2.4"\nservices:\n  web:\n    image: a\n    user: off\n', 5,
         "unquoted off is the boolean false", 'quote it: user: "off"'),
        ('version: "2.4"\nservices:\n  web:\n    image: a\n    dns: [a, 1.10]\n', 5,
         "services.web.dns[1]: unquoted 1.10 is the number 1.1", 'quote it: - "1.10"'),
        ('version: "2.4"\nservices:\n  web:\n    imag: a\n', 4, "unknown key 'imag'", "did you mean 'image'?"),
        ('version: "3.7"\nservices:\n  web:\n    image: a\n    enviroment: {A: 1}\n', 5,
         "unknown key 'enviroment'", "did you mean 'environment'?"),
        ('version: "3.7"\nservices:\n  web:\n    image: a\n    qqqq: 1\n', 5, "unknown key 'qqqq'",
         "they are listed in the Compose file reference, https://github.com/docker/compose/blob/v1/docs/version-3.md"),
        ('version: "2.4"\nservices: {}\nnetwork: {}\n', 3, "unknown key 'network'", "did you mean 'networks'?"),
        ('version: "2.4"\nservices: {}\nqqqq: {}\n', 3, "unknown key 'qqqq'",
         "allowed keys: networks, services, version, volumes or an extension key starting with x-"),
        ('version: "2"\nservices:\n  web: {image: a}\n  "we b": {image: a}\n', 4, "unknown key 'we b'",
         "a key here must match ^[a-zA-Z0-9._-]+$"),
    ],
)
def test_fixes_name_the_likely_mistake(tmp_path, text, line, message, fix):
    with pytest.raises(ComposeError) as exc:
        load_file(write(tmp_path, text), {}, Report())
    assert exc.value.line == line, str(exc.value)
    assert message in str(exc.value)
    assert exc.value.fix is not None and fix in exc.value.fix


def test_every_mistake_is_reported_in_file_order(tmp_path):
    text = ('version: "2.1"\nservices:\n  web:\n    imag: nginx\n    restart: no\n    scale: 2\n'
            "  db:\n    image: ${DB:?set DB}\n    ports: 80\n    volumes: [\"$-\"]\n")
    path = write(tmp_path, text)
    with pytest.raises(ComposeError) as exc:
        load_file(path, {}, Report())
    err = exc.value
    assert str(err).splitlines()[0] == f"{path}: 6 problems"
    assert [(p.line, p.message.split(":")[0]) for p in err.problems] == [
        (4, "unknown key 'imag'"),
        (5, "unquoted no is the boolean false in YAML, and text is wanted here"),
        (6, "scale is not part of compose 2.1"),  # said once, not also as an unknown key
        (8, "required variable DB is missing a value"),
        (9, "80 is not of type 'array'"),
        (10, "invalid interpolation format in '$-'"),
    ]
    assert all(isinstance(p, ComposeError) and p.fix for p in err.problems)


def test_many_mistakes_are_capped(tmp_path):
    services = "".join(f"  s{i}:\n    imag: x\n" for i in range(25))
    with pytest.raises(ComposeError) as exc:
        load_file(write(tmp_path, f'version: "2"\nservices:\n{services}'), {}, Report())
    assert exc.value.message == "25 problems (the first 20 are listed; 5 more)"
    assert [p.line for p in exc.value.problems] == list(range(4, 44, 2))


def test_anchors_and_merge_keys(tmp_path):
    text = ('version: "2.4"\nx-base: &base\n  image: a\n  restart: always\nservices:\n'
            "  web:\n    <<: *base\n    restart: \"no\"\n")
    result = convert_files([write(tmp_path, text)], environ={})
    web = result.stack["services"]["web"]
    assert web["image"] == "a"
    assert web["deploy"]["restart_policy"] == {"condition": "none"}


def test_environment_list_and_map_and_integer_ports(tmp_path):
    text = ('version: "2"\nservices:\n  a:\n    image: x\n    environment: [A=1, B]\n    ports: [80, 8080]\n'
            "  b:\n    image: x\n    environment: {A: 1, B: null, C: true}\n")
    stack = convert_files([write(tmp_path, text)], environ={}).stack
    assert stack["services"]["a"]["environment"] == {"A": "1", "B": None}
    assert stack["services"]["a"]["ports"] == ["80", "8080"]
    assert stack["services"]["b"]["environment"] == {"A": "1", "B": None, "C": "true"}


def test_dotenv_beside_the_file_and_env_file_override(tmp_path):
    write(tmp_path, "TAG=fromdotenv\n", ".env")
    other = write(tmp_path, "TAG=fromflag\n", "other.env")
    path = write(tmp_path, 'version: "2"\nservices:\n  a:\n    image: "x:${TAG}"\n')
    assert convert_files([path], environ={}).stack["services"]["a"]["image"] == "x:fromdotenv"
    assert convert_files([path], environ={}, env_files=[other]).stack["services"]["a"]["image"] == "x:fromflag"
    assert convert_files([path], environ={"TAG": "env"}).stack["services"]["a"]["image"] == "x:env"


def test_not_utf8_and_missing(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_bytes(b"web:\n  image: \xff\n")
    with pytest.raises(ComposeError, match="not UTF-8"):
        load_file(bad, {}, Report())
    with pytest.raises(ComposeError, match="no such file"):
        load_file(tmp_path / "none.yml", {}, Report())
