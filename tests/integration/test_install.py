"""The package as a user installs it: the wheel carries everything, and the README's first command works.

Builds the wheel from this checkout, installs it (with its dependencies from the index) into a
fresh venv, and runs `bakery render --role manager` from an empty directory with an empty HOME.
"""

from __future__ import annotations

import configparser
import json
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest
from testkit import REPO


def _declared_packages() -> set[str]:
    cfg = configparser.ConfigParser()
    cfg.read(REPO / "setup.cfg")
    return {line.strip() for line in cfg["options"]["packages"].splitlines() if line.strip()}


def test_setup_cfg_lists_every_package_of_the_tree():
    found = {".".join(p.parent.relative_to(REPO).parts) for p in (REPO / "bakery").rglob("__init__.py")}
    assert _declared_packages() == found | {"bakery.templates"}


def _tracked(under: str) -> set[str]:
    out = subprocess.run(["git", "ls-files", under], cwd=REPO, capture_output=True, text=True, check=True).stdout
    return set(out.split())


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dest = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dest), str(REPO)],
                   check=True, capture_output=True, timeout=600)
    (found,) = dest.glob("bakery-*.whl")
    return found


def test_wheel_carries_every_file_the_commands_read(wheel: Path):
    names = set(zipfile.ZipFile(wheel).namelist())
    if not (REPO / ".git").exists():
        pytest.skip("not a git checkout: no list of tracked files to compare with")
    expected = {f for f in _tracked("bakery") if not f.endswith(".pyc")}
    expected |= {"bakery/templates/" + f.removeprefix("templates/") for f in _tracked("templates")}
    assert expected - names == set()


def test_fresh_venv_renders_a_manager_from_an_empty_directory(wheel: Path, tmp_path: Path):
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    py = env_dir / "bin" / "python"
    subprocess.run([str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check", str(wheel)],
                   check=True, capture_output=True, timeout=900)
    empty, home = tmp_path / "empty", tmp_path / "home"
    empty.mkdir()
    home.mkdir()
    env = {"PATH": f"{env_dir / 'bin'}:/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8"}
    done = subprocess.run([str(env_dir / "bin" / "bakery"), "render", "--role", "manager"], cwd=empty, env=env,
                          capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout.startswith(b"#cloud-config\n"), done.stdout[:200]
    assert b"docker-tcp.socket" in done.stdout and b"bakery-join" in done.stdout
    assert (home / ".local" / "state" / "bakery" / "default").is_dir()
    (empty / "bakery.yml").write_text("docker: {install: none}\n")
    done = subprocess.run([str(env_dir / "bin" / "bakery"), "render", "--role", "worker", "--name", "w1",
                           "--format", "ignition"], cwd=empty, env=env, capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr.decode()
    files = {f["path"] for f in json.loads(done.stdout)["storage"]["files"]}
    assert "/opt/bakery/bakery-join.sh" in files  # the sh agent's text is in the wheel
    where = subprocess.run([str(py), "-c", "import bakery; print(bakery.__file__)"], cwd=empty, env=env,
                           capture_output=True, text=True, check=True).stdout.strip()
    assert where.startswith(str(env_dir)), where
