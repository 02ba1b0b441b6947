"""Value syntaxes in their compose form: sizes, CPUs, restart policies."""

from __future__ import annotations

import pytest

from bakery.compose import values


@pytest.mark.parametrize(
    "value, expected",
    [("512m", "512m"), ("1g", "1g"), ("1GiB", "1GiB"), ("2kb", "2kb"), (1048576, "1048576"), ("100", "100"),
     ("12x", None), ("", None), (-1, None), (True, None), ("1.5g", "1.5g")],
)
def test_size(value, expected):
    assert values.size(value) == expected


@pytest.mark.parametrize(
    "value, expected",
    [("64m", 64 << 20), ("1.5g", int(1.5 * (1 << 30))), (100, 100), ("2k", 2048), ("1.2.3m", None), ("x", None)],
)
def test_size_bytes(value, expected):
    assert values.size_bytes(value) == expected


@pytest.mark.parametrize(
    "value, expected",
    [(0.5, "0.5"), ("1.5", "1.5"), (2, "2"), (0.33333, "0.3333"), ("x", None), (0, None), (-1, None),
     ("nan", None), ("inf", None)],
)
def test_cpus(value, expected):
    assert values.cpus(value) == expected


@pytest.mark.parametrize(
    "value, expected",
    [("no", ("none", None)), ("always", ("any", None)), ("unless-stopped", ("any", None)),
     ("on-failure", ("on-failure", None)), ("on-failure:5", ("on-failure", 5)), ("sometimes", None),
     ("on-failure:x", None)],
)
def test_restart(value, expected):
    assert values.restart(value) == expected
