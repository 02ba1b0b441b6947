"""Booted-node fixtures: the cached node image, and a local cluster torn down from its record.

Needs root, systemd-nspawn, debootstrap, dnsmasq and a free 10.213.0.0/24.
Without them the node tests skip; BAKERY_REQUIRE_NODES=1 (CI) makes that a
failure. The node image is cached in $BAKERY_CACHE_DIR (default
/var/cache/bakery) across runs, as `bakery bake` caches it for users: the first
run builds it (about 1 minute here), later runs reuse it. Everything else
(state, overlays, records) lives under pytest's tmp_path.

  BAKERY_REQUIRE_NODES=1 pytest -m nodes tests/nodes                      # CI tier
  BAKERY_REQUIRE_NODES=1 BAKERY_NODES_FULL=1 pytest -m nodes tests/nodes  # + faults, bake user-data boot

The CI tier also deploys tests/nodes/stacks/pinned-web (compose v2) from the
host over mutual TLS and probes the join service and token hygiene inside
the nodes (node_scripts/token_probe.py).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from testkit import require_or_skip
from testkit.archive import busybox_archive
from testkit.nodes import SWITCH, TOOLS, bakery


@pytest.fixture(scope="session")
def node_host() -> None:
    if os.geteuid() != 0:
        require_or_skip(SWITCH, "booting nodes needs root")
    for tool in TOOLS:
        if shutil.which(tool) is None and shutil.which(tool, path="/usr/sbin:/sbin") is None:
            require_or_skip(SWITCH, f"{tool} is not installed (debootstrap systemd-container dnsmasq-base)")
    used = subprocess.run(["ip", "-br", "addr"], capture_output=True, text=True, check=True).stdout
    if "10.213.0." in used:
        require_or_skip(SWITCH, "10.213.0.0/24 is in use on this host (another local cluster is up)")


@pytest.fixture(scope="session")
def cache_dir(node_host: None) -> Path:
    from bakery.providers.local.rootfs import default_cache_dir

    return default_cache_dir()


@pytest.fixture(scope="session")
def app_archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return busybox_archive(tmp_path_factory.mktemp("archives") / "busybox.tar")


@pytest.fixture(scope="session")
def baked_image(cache_dir: Path, app_archive: Path) -> dict[str, Any]:
    """`bakery bake --target local` with the busybox archive: built once, then cached."""
    done = bakery("bake", "--target", "local", "--pre-pull-archive", str(app_archive),
                  "--cache-dir", str(cache_dir), "--output", "json", timeout=1800)
    image: dict[str, Any] = json.loads(done.stdout)
    image["stderr"] = done.stderr
    return image
