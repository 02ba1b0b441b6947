import pytest

from bakery.swarm.units import duration_ns, nano_cpus, size_bytes


@pytest.mark.parametrize(
    ("value", "ns"),
    [
        ("10s", 10 * 10**9),
        ("1m30s", 90 * 10**9),
        ("500ms", 5 * 10**8),
        ("1h", 3600 * 10**9),
        ("1.5s", 15 * 10**8),
        ("0", 0),
        (2, 2 * 10**9),
        ("250us", 250_000),
    ],
)
def test_duration(value, ns):
    assert duration_ns(value) == ns


@pytest.mark.parametrize("value", ["10", "ten", "10x", "s", True, "1m 30s"])
def test_bad_duration(value):
    with pytest.raises(ValueError, match="not a duration"):
        duration_ns(value)


@pytest.mark.parametrize(
    ("value", "size"),
    [("512m", 512 << 20), ("1g", 1 << 30), ("1GB", 1 << 30), ("100k", 100 << 10), (4096, 4096), ("1.5g", 3 << 29)],
)
def test_size(value, size):
    assert size_bytes(value) == size


@pytest.mark.parametrize("value", ["12x", "lots", "-1m", False])
def test_bad_size(value):
    with pytest.raises(ValueError, match="not a size"):
        size_bytes(value)


@pytest.mark.parametrize(("value", "nano"), [("0.5", 500_000_000), (2, 2_000_000_000), ("0.01", 10_000_000)])
def test_cpus(value, nano):
    assert nano_cpus(value) == nano


def test_bad_cpus():
    with pytest.raises(ValueError, match="CPUs"):
        nano_cpus("half")
