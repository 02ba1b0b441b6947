"""errors.gather: several problems of one file as one error, in file order."""

from __future__ import annotations

import pytest

from bakery.errors import ComposeError, UserError, gather


def problem(line, column=1, message="bad", path=("a",)):
    return ComposeError(message, source="f.yml", line=line, column=column, path=path, fix="mend it")


@pytest.mark.parametrize(
    "lines, expected_order",
    [
        ([(3, 1), (1, 5), (1, 2)], [(1, 2), (1, 5), (3, 1)]),  # file order, column within a line
        ([(None, None), (2, 1)], [(None, None), (2, 1)]),  # an unplaced problem first
        ([(2, 1), (2, 1), (1, 1)], [(1, 1), (2, 1)]),  # the same problem twice is listed once
    ],
)
def test_problems_in_file_order_without_repeats(lines, expected_order):
    err = gather([problem(line, col) for line, col in lines], ComposeError, "f.yml")
    assert isinstance(err, ComposeError)
    assert [(p.line, p.column) for p in err.problems] == expected_order
    assert err.message == f"{len(expected_order)} problems"


def test_one_problem_is_itself():
    only = problem(4)
    assert gather([only, problem(4)], ComposeError, "f.yml") is only


def test_text_is_a_summary_then_a_line_each():
    err = gather([problem(2, message="second"), problem(1, message="first")], ComposeError, "f.yml")
    assert str(err).splitlines() == [
        "f.yml: 2 problems",
        "  f.yml:1:1 a: first (mend it)",
        "  f.yml:2:1 a: second (mend it)",
    ]
    data = err.as_dict()
    assert data["message"] == "2 problems" and data["source"] == "f.yml"
    assert [p["line"] for p in data["problems"]] == [1, 2]  # type: ignore[index, union-attr]


@pytest.mark.parametrize("count, listed, summary", [
    (20, 20, "20 problems"),
    (25, 20, "25 problems (the first 20 are listed; 5 more)"),
])
def test_at_most_twenty_are_listed(count, listed, summary):
    err = gather([problem(i) for i in range(count, 0, -1)], UserError, "f.yml")
    assert err.message == summary
    assert len(err.problems) == listed
    assert err.problems[0].line == 1  # the first ones in the file, not the first found


def test_nothing_to_gather_is_a_bug():
    with pytest.raises(ValueError):
        gather([])
