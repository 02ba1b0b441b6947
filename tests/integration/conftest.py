"""Deploy-test fixtures: `bakery deploy` in-process against the engine fixture (helpers in testkit.deploy)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from testkit.deploy import (
    _NET_OCTETS,
    CASES,
    WEB_IMAGES,
    Deployer,
    busybox_rootfs,
    free_port,
    import_image,
    stack_images,
)


@pytest.fixture
def deployer(engine: Any, busybox_image: str, capsys: pytest.CaptureFixture[str]) -> Deployer:
    return Deployer(engine.host, capsys)


@pytest.fixture
def case_dir(tmp_path: Path):  # type: ignore[no-untyped-def]
    """Copy a case under tmp_path, with @PORT@ replaced by a free port and @NET@ by an octet
    unique in this session (stacks deployed side by side get distinct subnets; see case_net);
    returns (dir, port)."""

    def make(name: str) -> tuple[Path, int]:
        port, net = free_port(), next(_NET_OCTETS) % 250
        dest = tmp_path / name
        shutil.copytree(CASES / name, dest)
        for f in dest.iterdir():
            if f.suffix in (".yml", ".yaml"):
                text = f.read_text().replace("@PORT@", str(port)).replace("@NET@", str(net))
                f.write_text(text)
        (dest / ".net").write_text(str(net))
        return dest, port

    return make


@pytest.fixture(scope="session")
def stand_ins(engine: Any, busybox_image: str, tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """No registry here: every image of stacks/ is the busybox rootfs tagged as that ref."""
    refs = [r for r in stack_images() if r != busybox_image]
    root = busybox_rootfs(tmp_path_factory.mktemp("stand-in") / "root")
    sleepers = [r for r in refs if r not in WEB_IMAGES]
    webs = [r for r in refs if r in WEB_IMAGES]
    import_image(engine.host, root, sleepers, ["sleep", "3600"])
    import_image(engine.host, root, webs, ["httpd", "-f", "-p", "80", "-h", "/www"])
    return refs
