"""Fixtures for the OpenStack tests: the test cloud (a real control plane on loopback), a fake cloud at
the HTTP level for what the test cloud cannot show, and a real Glance on loopback.

The test cloud (testkit/oscloud.py, docs/OPENSTACK-TESTCLOUD.md) starts once per session, at the
first test that needs it, and is stopped after the last; without it those tests skip, and
BAKERY_REQUIRE_OPENSTACK=1 (CI) makes that a failure.

A private dockerd behind mutual TLS (tls_engine.py) serves the Ready wait.
The real Glance starts once per session (tests/openstack/glance_server.py).
Without it the real-Glance tests skip; BAKERY_REQUIRE_GLANCE=1 (CI) makes that
a failure.
"""

from __future__ import annotations

import os
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


@pytest.fixture(scope="session")
def openstack_cloud() -> Iterator[Any]:
    """The test cloud: clouds `admin` and `bakery` in its clouds.yaml (testkit/oscloud.py)."""
    import sys

    from testkit import oscloud

    if os.environ.get("BAKERY_OPENSTACK_RUN"):  # one started by hand (oscloud.py up DIR): used, never stopped
        yield oscloud.attach(Path(os.environ["BAKERY_OPENSTACK_RUN"]))
        return
    run = Path(tempfile.mkdtemp(prefix="bakery-oscloud-"))
    try:
        cloud = oscloud.start(run)
    except oscloud.Unavailable as exc:
        require_or_skip("BAKERY_REQUIRE_OPENSTACK", f"no test cloud: {exc}")
        raise
    timings = ", ".join(f"{k} {v:.1f}s" for k, v in cloud.timings.items())
    print(f"\n[testcloud] up in {run}: {timings}", file=sys.stderr)
    try:
        yield cloud
    finally:
        oscloud.stop(cloud)
