"""Fixtures for the OpenStack tests: a fake cloud at the HTTP level, and a real Glance on loopback.

A private dockerd behind mutual TLS (tls_engine.py) serves the Ready wait.
The real Glance starts once per session (tests/openstack/glance_server.py).
Without it the real-Glance tests skip; BAKERY_REQUIRE_GLANCE=1 (CI) makes that
a failure.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests_mock
from testkit import require_or_skip
from testkit.fakecloud import FakeCloud


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "glance: needs a real Glance on loopback "
                            "(BAKERY_REQUIRE_GLANCE=1 turns a missing one into a failure)")


@pytest.fixture(scope="session")
def tls_engine() -> Iterator[Any]:
    """A real dockerd in swarm mode behind mutual TLS on 127.0.0.1 (tests/openstack/tls_engine.py)."""
    from testkit import tls_engine as te
    from testkit.engine import find_dockerd

    find_dockerd()
    try:
        with te.running() as eng:
            yield eng
    except te.Unavailable as exc:
        require_or_skip("BAKERY_REQUIRE_ENGINE", f"no TLS engine: {exc}")


@pytest.fixture
def cloud() -> Iterator[FakeCloud]:
    with requests_mock.Mocker() as m:
        yield FakeCloud(m)


class FakeClock:
    """Time passes only when the code under test sleeps."""

    def __init__(self) -> None:
        self.t = 0.0
        self.slept: list[float] = []

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.t += seconds


@pytest.fixture
def clock() -> Any:
    from bakery.providers.openstack.cloud import Clock

    fake = FakeClock()
    c = Clock(sleep=fake.sleep, now=fake.now)
    c.fake = fake  # type: ignore[attr-defined]
    return c


@pytest.fixture(scope="session")
def glance_endpoint() -> Iterator[str]:
    from testkit import glance_server

    run = Path(tempfile.mkdtemp(prefix="bakery-glance-"))
    try:
        server = glance_server.start(run)
    except glance_server.GlanceUnavailable as exc:
        require_or_skip("BAKERY_REQUIRE_GLANCE", f"no real Glance: {exc}")
        raise
    try:
        yield server.endpoint
    finally:
        server.stop()
