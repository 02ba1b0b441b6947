import pytest

from bakery.errors import UserError
from bakery.yamlsrc import loads


def test_positions_are_recorded():
    doc = loads("a:\n  b: 1\n  c:\n    - x\n    - y\n", "f.yml")
    assert doc.data == {"a": {"b": 1, "c": ["x", "y"]}}
    assert doc.where(("a", "c", 1)).line == 5
    assert doc.where(("a", "b")).column == 6
    assert doc.where_key(("a", "b")).column == 3


@pytest.mark.parametrize(
    "text, line, needle",
    [
        ("a: 1\na: 2\n", 2, "duplicate key 'a'"),
        ("a:\n\tb: 1\n", 2, "invalid YAML"),
        ("a: [1, 2\n", 1, "invalid YAML in the [ ] list that starts here"),
        ("a: 1\n---\nb: 2\n", 3, "more than one YAML document"),
    ],
)
def test_errors_point_at_the_line(text, line, needle):
    with pytest.raises(UserError) as exc:
        loads(text, "f.yml")
    assert exc.value.line == line
    assert needle in str(exc.value)
    assert str(exc.value).startswith(f"f.yml:{line}")


def test_merge_keys_and_anchors():
    doc = loads("base: &b {x: 1, y: 2}\nsvc:\n  <<: *b\n  y: 3\n")
    assert doc.data["svc"] == {"x": 1, "y": 3}


def test_yes_no_keys_keep_their_text():
    assert loads("on: 1\n").data == {"on": 1}


def test_empty_document():
    assert loads("").data is None
