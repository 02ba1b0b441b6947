"""Helpers the tests share (importable as `testkit`: pytest puts tests/lib on sys.path).

Only this folder is on the path, never the checkout's root, so the tests import the
installed `bakery`, the one a user gets, not the source tree beside them.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import NoReturn

# The checkout: test data (tests/cases, stacks/, bench/) lives here; code is imported from the installed package.
REPO = Path(__file__).resolve().parents[3]


def require_or_skip(switch: str, reason: str) -> NoReturn:
    import pytest  # here, so that scripts (testkit/oracles.py, run by .ci/run) need no pytest

    if os.environ.get(switch) == "1":
        pytest.fail(f"{reason} ({switch}=1 makes this a failure)")
    pytest.skip(reason)


def need_tool(name: str, switch: str = "BAKERY_REQUIRE_VALIDATORS") -> str:
    path = shutil.which(name)
    if path is None:
        require_or_skip(switch, f"{name} is not installed")
    assert path is not None
    return path


def cache_dir() -> Path:
    """Downloads the tests reuse: $BAKERY_CACHE_DIR, else $XDG_CACHE_HOME/bakery or ~/.cache/bakery."""
    if os.environ.get("BAKERY_CACHE_DIR"):
        return Path(os.environ["BAKERY_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "bakery"
