"""Interpolation and .env parsing, as docker-compose 1.x does them."""

from __future__ import annotations

from pathlib import Path

import pytest

from bakery.compose.interpolate import Interpolator, parse_env_file
from bakery.errors import ComposeError
from bakery.report import Report
from bakery.yamlsrc import loads

ENV = {"SET": "value", "EMPTY": ""}


@pytest.mark.parametrize(
    "text, expected",
    [
        ("plain", "plain"),
        ("$SET", "value"),
        ("${SET}", "value"),
        ("a-${SET}-b", "a-value-b"),
        ("${UNSET:-dflt}", "dflt"),
        ("${EMPTY:-dflt}", "dflt"),
        ("${EMPTY-dflt}", ""),
        ("${UNSET-dflt}", "dflt"),
        ("${SET:-dflt}", "value"),
        ("${SET:?boom}", "value"),
        ("${EMPTY?boom}", ""),
        ("$$SET", "$SET"),
        ("$${SET}", "${SET}"),
        ("cost: $$5", "cost: $5"),
        ("${UNSET:-${SET}}", "${SET}"),  # defaults are not interpolated again (compose 1.x)
        ("$UNSET", ""),
        ("${UNSET}x", "x"),
    ],
)
def test_interpolation(text, expected):
    doc = loads("a: 1\n", "f.yml")
    assert Interpolator(doc, ENV).text(text, ("a",)) == expected


@pytest.mark.parametrize(
    "text, needle",
    [
        ("${UNSET:?must be set}", "required variable UNSET is missing a value: must be set"),
        ("${EMPTY:?no empty}", "required variable EMPTY"),
        ("${UNSET?}", "required variable UNSET is missing a value: not set"),
        ("${}", "invalid interpolation format"),
        ("${SET", "invalid interpolation format"),
        ("$-", "invalid interpolation format"),
        ("${1abc}", "invalid interpolation format"),
    ],
)
def test_interpolation_errors(text, needle):
    doc = loads("a: x\n", "f.yml")
    with pytest.raises(ComposeError) as exc:
        Interpolator(doc, ENV).text(text, ("a",))
    assert needle in str(exc.value)
    assert str(exc.value).startswith("f.yml:1:4 a:")


def test_unset_variables_are_reported_once_with_a_count():
    doc = loads("services:\n  a:\n    image: $X\n    command: ${X}\n", "f.yml")
    interp = Interpolator(doc, {})
    interp.walk(doc.data, ())
    report = Report()
    interp.report_unset(report)
    [finding] = report.findings
    assert finding.severity == "warning"
    assert "X is not set" in finding.message and "2 uses" in finding.message
    assert (finding.line, finding.column) == (3, 12)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("A=1\n", {"A": "1"}),
        ("# c\n\nA=1\n", {"A": "1"}),
        ("export A=1\n", {"A": "1"}),
        ('A="x y"\n', {"A": "x y"}),
        ("A='x'\n", {"A": "x"}),
        ("A=a=b\n", {"A": "a=b"}),
        ("A\n", {"A": None}),
        ("A=\n", {"A": ""}),
        ("A=1\nA=2\n", {"A": "2"}),
    ],
)
def test_env_file(tmp_path: Path, text, expected):
    f = tmp_path / ".env"
    f.write_text(text)
    assert parse_env_file(f) == expected


def test_env_file_bad_name_points_at_the_line(tmp_path: Path):
    f = tmp_path / ".env"
    f.write_text("A=1\nnot valid=2\n")
    with pytest.raises(ComposeError) as exc:
        parse_env_file(f)
    assert exc.value.line == 2


def test_service_env_file_accepts_hint_keys(tmp_path: Path):
    f = tmp_path / "svc.env"
    f.write_text("constraint:node==web1\n")
    assert parse_env_file(f, names_only=False) == {"constraint:node": "=web1"}
    with pytest.raises(ComposeError):
        parse_env_file(f)


def test_missing_env_file(tmp_path: Path):
    with pytest.raises(ComposeError, match="no such env file"):
        parse_env_file(tmp_path / "nope.env")


@pytest.mark.parametrize(
    "text, expected",
    [
        ("plain", "plain"),
        ("$SET ${SET}", "value value"),
        ("${UNSET:-${SET}}", "value"),  # Compose v2 substitutes operands: defaults nest
        ("${UNSET:-${ALSO_UNSET:-x}}", "x"),
        ("${UNSET:-a-${SET}-b}", "a-value-b"),
        ("${SET:+alt}", "alt"),
        ("${EMPTY:+alt}", ""),
        ("${EMPTY+alt}", "alt"),
        ("${UNSET+alt}", ""),
        ("${SET:+${SET}!}", "value!"),
        ("${EMPTY-dflt}", ""),
        ("${EMPTY:-dflt}", "dflt"),
        ("$$SET", "$SET"),
        ("${SET:?boom}", "value"),
        ("$UNSET", ""),
    ],
)
def test_spec_interpolation(text, expected):
    doc = loads("a: 1\n", "f.yml")
    assert Interpolator(doc, ENV, spec=True).text(text, ("a",)) == expected


@pytest.mark.parametrize(
    "text, needle",
    [
        ("${UNSET:?must be ${SET}}", "required variable UNSET is missing a value: must be value"),
        ("${UNSET?}", "required variable UNSET is missing a value: not set"),
        ("${UNSET:-${X}", "invalid interpolation format"),
        ("${SET:%x}", "invalid interpolation format"),
        ("$-", "invalid interpolation format"),
    ],
)
def test_spec_interpolation_errors(text, needle):
    doc = loads("a: 1\n", "f.yml")
    with pytest.raises(ComposeError, match=needle.replace("$", r"\$")):
        Interpolator(doc, ENV, spec=True).text(text, ("a",))


def test_spec_interpolation_remembers_where_unset_variables_were():
    doc = loads("a: 1\n", "f.yml")
    interp = Interpolator(doc, ENV, spec=True)
    interp.text("${A}:${B}:${A}", ("services", "web", "ports", 0))
    assert interp.unset_at == {("services", "web", "ports", 0): ["A", "B"]}


def test_env_file_references_and_comments(tmp_path):
    """As docker-compose 1.29 (python-dotenv) and Compose v2 read them (checked by test_compose_oracles)."""
    f = tmp_path / "app.env"
    f.write_text("A=one\nB=${A}-two\nC=\"q ${A}\"\nD='s ${A}'\nE=x # note\nF=${NOPE:-dflt}\nG=${FROM_ENV}\n")
    assert parse_env_file(f, lookup={"FROM_ENV": "env", "A": "shadowed"}) == {
        "A": "one", "B": "one-two", "C": "q one", "D": "s ${A}", "E": "x", "F": "dflt", "G": "env"}
