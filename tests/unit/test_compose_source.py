"""The libyaml-backed positioned loader behaves like bakery.yamlsrc."""

from __future__ import annotations

import pytest

from bakery import yamlsrc
from bakery.compose import source
from bakery.errors import ComposeError

SAMPLES = [
    "a:\n  b: 1\n  c:\n    - x\n    - {d: [1, 2.5, true, null, '3']}\n",
    "base: &b {x: 1, y: 2}\nsvc:\n  <<: *b\n  y: 3\n",
    "list: &l [1, 2]\nother: *l\n",
    "m:\n  <<: [{a: 1}, {a: 2, b: 2}]\n",
    'k: "quoted: yes"\nn: 0x1f\no: 012\nt: 2020-01-01\n',
]


@pytest.mark.parametrize("text", SAMPLES)
def test_same_data_and_positions_as_yamlsrc(text):
    ours, theirs = source.loads(text, "f.yml"), yamlsrc.loads(text, "f.yml")
    assert ours.data == theirs.data
    assert ours.positions == theirs.positions
    assert ours.key_positions == theirs.key_positions


@pytest.mark.parametrize(
    "text, line, needle",
    [
        ("a: 1\na: 2\n", 2, "duplicate key 'a'"),
        ("a:\n\tb: 1\n", 2, "tab"),
        ("a: [1, 2\n", 1, "invalid YAML in the [ ] list that starts here"),
        ("a: 1\n---\nb: 2\n", 3, "more than one YAML document"),
        ("a: !!python/object:os.system x\n", 1, "unknown tag !!python/object:os.system"),
        ("? [a]\n: 1\n", 1, "a mapping key must be a plain value"),
        ("a:\n  <<: 1\n", 2, "a merge key (<<) takes a mapping"),
    ],
)
def test_errors(text, line, needle):
    with pytest.raises(ComposeError) as exc:
        source.loads(text, "f.yml")
    assert exc.value.line == line
    assert needle in str(exc.value)


def test_keys_are_strings():
    assert source.loads("1: a\ntrue: b\nnull: c\n").data == {"1": "a", "true": "b", "null": "c"}


def test_alias_bomb_is_refused():
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 8)]
    with pytest.raises(ComposeError, match="too many values"):
        source.loads("\n".join(lines) + "\n")


def test_empty():
    assert source.loads("").data is None
    assert source.loads("# only a comment\n").data is None
