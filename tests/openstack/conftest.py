"""Fixtures for the OpenStack tests: the test cloud (a real control plane on loopback), a fake cloud at
the HTTP level for what the test cloud cannot show, a real Glance on loopback, and the
diskimage-builder image (built once per session, for test_diskimage_build.py and test_nfs_boot.py).

The test cloud (testkit/oscloud.py, docs/OPENSTACK-TESTCLOUD.md) starts once per session, at the
first test that needs it, and is stopped after the last; without it those tests skip, and
BAKERY_REQUIRE_OPENSTACK=1 (CI) makes that a failure.

A private dockerd behind mutual TLS (tls_engine.py) serves the Ready wait.
The real Glance starts once per session (tests/openstack/glance_server.py).
Without it the real-Glance tests skip; BAKERY_REQUIRE_GLANCE=1 (CI) makes that
a failure.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests_mock
from testkit import require_or_skip
from testkit.fakecloud import FakeCloud
from testkit.qemu import KernelImage


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


class Built:
    """What `bakery bake --target openstack --from-local --layout kernel-boot` made: its JSON output,
    the kept image files, a connection to the Glance it uploaded to, and its progress on stderr."""

    def __init__(self, out: dict[str, Any], files: Path, conn: Any, stderr: str) -> None:
        self.out, self.files, self.conn, self.stderr = out, files, conn, stderr

    def file(self, suffix: str) -> Path:
        return self.files / f"{self.out['image_name']}.{suffix}"

    def kernel_image(self) -> KernelImage:
        from bakery.providers.openstack import diskimage

        return KernelImage(self.file("qcow2"), self.file("vmlinuz"), self.file("initrd"), diskimage.COMMAND_LINE)


@pytest.fixture(scope="session")
def built(engine: Any, busybox_image: str, glance_endpoint: str, tmp_path_factory: pytest.TempPathFactory) -> Built:
    """One real diskimage-builder build per session (root; BAKERY_REQUIRE_DIB=1 makes absence a failure),
    with an archive of the test image pre-loaded, uploaded to the real Glance."""
    import openstack

    from bakery.providers.openstack import diskimage

    switch = "BAKERY_REQUIRE_DIB"
    if os.geteuid() != 0:
        require_or_skip(switch, "a diskimage-builder build needs root")
    try:
        diskimage.disk_image_create()
    except Exception as exc:  # noqa: BLE001 (EnvironmentMissing, said as the skip reason)
        require_or_skip(switch, str(exc))
    for tool in ("qemu-img", "debootstrap", "systemd-nspawn", "debugfs"):
        if not shutil.which(tool) and not shutil.which(tool, path="/usr/sbin:/sbin"):
            require_or_skip(switch, f"{tool} is not installed")
    work = tmp_path_factory.mktemp("dib")
    archive = work / "busybox.tar"
    engine.docker("save", "-o", str(archive), busybox_image)
    clouds = work / "clouds.yaml"
    clouds.write_text(f"clouds:\n  loopback:\n    auth_type: none\n    image_endpoint_override: {glance_endpoint}\n")
    env = dict(os.environ, OS_CLIENT_CONFIG_FILE=str(clouds))
    env.pop("OS_CLOUD", None)
    files = work / "image"
    cmd = [sys.executable, "-m", "bakery", "bake", "--target", "openstack", "--from-local", "--layout",
           "kernel-boot", "--pre-pull-archive", str(archive), "--keep-image", str(files), "--os-cloud", "loopback",
           "--image-name", "bakery-dib-test", "--output", "json"]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1800, check=False)
    if done.returncode != 0:
        log = "".join(p.read_text(errors="replace")[-4000:] for p in files.glob("*.log"))
        pytest.fail(f"bakery bake --from-local exited {done.returncode}:\n{done.stderr[-3000:]}\n{log}")
    conn = openstack.connect(load_yaml_config=False, load_envvars=False, auth_type="none",
                             image_endpoint_override=glance_endpoint)
    return Built(json.loads(done.stdout), files, conn, done.stderr)
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


@pytest.fixture
def os_env(openstack_cloud, monkeypatch):
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(openstack_cloud.clouds_yaml))
    monkeypatch.delenv("OS_CLOUD", raising=False)
    for name in [n for n in __import__("os").environ if n.startswith("OS_") and n != "OS_CLIENT_CONFIG_FILE"]:
        monkeypatch.delenv(name, raising=False)
    return openstack_cloud


def _connect(name: str) -> Any:
    """The tests' own connections retry idempotent requests on a reset connection as bakery's do (the
    services' gunicorn closes idle keep-alive connections after 2 s: a reset is no test failure)."""
    import openstack

    from bakery.providers.openstack.cloud import retry_idempotent

    conn = openstack.connect(cloud=name)
    retry_idempotent(conn.session)
    return conn


@pytest.fixture
def admin(os_env):
    return _connect("admin")


@pytest.fixture
def user(os_env):
    return _connect("bakery")


@pytest.fixture
def sent(monkeypatch):
    """Every user-data payload bakery rendered, by node name (wrapping render.build_userdata)."""
    from bakery import render

    payloads: dict[str, bytes] = {}
    real = render.build_userdata

    def recording(cfg, node, state_root, *a, **kw):
        out = real(cfg, node, state_root, *a, **kw)
        payloads[node.name] = out[0].payload
        return out

    monkeypatch.setattr(render, "build_userdata", recording)
    return payloads


@pytest.fixture
def clean(user, admin):
    """Each test starts and ends with a project holding only the test cloud's own objects."""
    from testkit.osbakery import wipe

    yield
    wipe(user, admin)
