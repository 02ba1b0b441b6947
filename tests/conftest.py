"""Shared fixtures: a private real dockerd in swarm mode, and tool switches.

The engine recipe is docs/ENGINES.md: a private socket, data root and
pid file, vfs storage, swarm init on 127.0.0.1. Only the dockerd started here
is ever stopped (by its own pid file). Set BAKERY_TEST_DOCKER_HOST to use an
engine you already run instead.

Without an engine the engine tests skip; with BAKERY_REQUIRE_ENGINE=1 (CI)
they fail instead. BAKERY_REQUIRE_VALIDATORS=1 does the same for cloud-init
and systemd-analyze.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from testkit import REPO, require_or_skip
from testkit.engine import Engine, find_dockerd, init_swarm, own_bridge, private_dockerd


def pytest_configure(config: pytest.Config) -> None:
    """Under tox and CI (BAKERY_TEST_INSTALLED=1) the tests must run the installed package."""
    import bakery

    where = Path(bakery.__file__).resolve()
    if os.environ.get("BAKERY_TEST_INSTALLED") == "1" and where.is_relative_to(REPO / "bakery"):
        raise pytest.UsageError(f"bakery was imported from the checkout ({where}), not the installed package")


@pytest.fixture(scope="session")
def engine() -> Iterator[Engine]:
    given = os.environ.get("BAKERY_TEST_DOCKER_HOST")
    if given:
        yield Engine(given, given.removeprefix("unix://"))
        return
    find_dockerd()
    with own_bridge() as bridge, private_dockerd("--bridge", bridge) as d:
        eng = Engine(f"unix://{d.socket}", d.socket)
        init_swarm(eng.docker, gateway=d.gateway)
        yield eng


@pytest.fixture(scope="session")
def busybox_image(engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> str:
    """`local/busybox:1`, imported from Debian's busybox-static (no registry here)."""
    ref = "local/busybox:1"
    if engine.docker("image", "inspect", ref, check=False).returncode == 0:
        return ref
    busybox = shutil.which("busybox") or "/bin/busybox"
    if not Path(busybox).exists():
        require_or_skip("BAKERY_REQUIRE_ENGINE", "busybox is not installed (apt-get install busybox-static)")
    root = tmp_path_factory.mktemp("busybox-root")
    (root / "bin").mkdir()
    (root / "www").mkdir()
    (root / "www" / "index.html").write_text("hello from bakery\n")
    shutil.copy(busybox, root / "bin" / "busybox")
    for applet in ("sh", "httpd", "sleep", "echo", "cat", "wget", "ls", "true", "false", "env", "nc"):
        (root / "bin" / applet).symlink_to("busybox")
    tar = subprocess.run(["tar", "-C", str(root), "-c", "."], capture_output=True, check=True).stdout
    cli = shutil.which("docker", path="/usr/local/bin") or "docker"
    subprocess.run([cli, "-H", engine.host, "import", "-", ref], input=tar, check=True, capture_output=True)
    return ref
