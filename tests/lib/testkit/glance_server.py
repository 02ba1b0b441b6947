"""A real Glance on loopback (docs/ENGINES.md §5): sqlite, file store, no Keystone.

Glance runs in its own interpreter: the main environment's when it can import
glance, else a venv under the cache dir ($BAKERY_CACHE_DIR or
~/.cache/bakery) that is created with `pip install glance gunicorn` the first
time. gunicorn serves glance.wsgi.api:application on a free 127.0.0.1 port;
a tiny context middleware (instead of Keystone) gives every request an
admin/member/reader context in one project. Only the gunicorn started here
is ever stopped, by its own pid.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from testkit import cache_dir

PROJECT = "bakery-test-project"

CONTEXT_MIDDLEWARE = f'''\
"""Stands in for Keystone in bakery's tests: one project, all roles."""
import glance.context
from glance.api.middleware.context import BaseContextMiddleware


class TestContext(BaseContextMiddleware):
    def process_request(self, req):
        req.context = glance.context.RequestContext(
            user_id="bakery-test", project_id="{PROJECT}", roles=["admin", "member", "reader"], is_admin=True)
'''

API_CONF = """\
[DEFAULT]
enabled_backends = fs:file
log_file = {run}/glance-api.log
[glance_store]
default_backend = fs
[fs]
filesystem_store_datadir = {run}/images
[os_glance_staging_store]
filesystem_store_datadir = {run}/staging
[os_glance_tasks_store]
filesystem_store_datadir = {run}/tasks
[database]
connection = sqlite:///{run}/glance.sqlite
[paste_deploy]
flavor =
config_file = {run}/glance-api-paste.ini
[oslo_policy]
enforce_new_defaults = false
"""


class GlanceUnavailable(Exception):
    """Glance could not be installed or started here (the message says why)."""


@dataclass
class Glance:
    endpoint: str
    run_dir: Path
    proc: subprocess.Popen[bytes]

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def _importable(python: str) -> bool:
    res = subprocess.run([python, "-c", "import glance.wsgi, gunicorn"], capture_output=True)
    return res.returncode == 0


def interpreter() -> Path:
    """A python that can import glance and gunicorn; installs a cached venv if needed."""
    if _importable(sys.executable):
        return Path(sys.executable)
    venv = cache_dir() / "glance-venv"
    python = venv / "bin" / "python"
    if python.exists() and _importable(str(python)):
        return python
    if os.environ.get("BAKERY_GLANCE_NO_INSTALL") == "1":
        raise GlanceUnavailable(f"glance is not importable and BAKERY_GLANCE_NO_INSTALL=1 ({venv})")
    shutil.rmtree(venv, ignore_errors=True)
    steps = [[sys.executable, "-m", "venv", str(venv)],
             [str(python), "-m", "pip", "install", "-q", "glance", "gunicorn"]]
    for step in steps:
        res = subprocess.run(step, capture_output=True, text=True, timeout=900)
        if res.returncode != 0:
            raise GlanceUnavailable(f"could not install glance ({' '.join(step[-3:])}): {res.stderr[-800:]}")
    return python


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _configure(python: Path, run: Path) -> Path:
    """glance-api.conf and a paste ini whose pipeline uses our context middleware."""
    prefix = Path(subprocess.run([str(python), "-c", "import sys; print(sys.prefix)"],
                                 capture_output=True, text=True, check=True).stdout.strip())
    paste = (prefix / "etc" / "glance" / "glance-api-paste.ini").read_text()
    paste = paste.replace("glance.api.middleware.context:UnauthenticatedContextMiddleware.factory",
                          "bakery_test_context:TestContext.factory")
    paste = paste.replace("/etc/glance/healthcheck_disable", str(run / "healthcheck_disable"))
    for d in ("images", "staging", "tasks", "etc"):
        (run / d).mkdir(parents=True, exist_ok=True)
    (run / "glance-api-paste.ini").write_text(paste)
    (run / "bakery_test_context.py").write_text(CONTEXT_MIDDLEWARE)
    conf = run / "etc" / "glance-api.conf"
    conf.write_text(API_CONF.format(run=run))
    manage = prefix / "bin" / "glance-manage"
    res = subprocess.run([str(manage), "--config-file", str(conf), "db_sync"], capture_output=True, text=True,
                         timeout=120)
    if res.returncode != 0:
        raise GlanceUnavailable(f"glance-manage db_sync failed: {res.stderr[-800:]}")
    return prefix


def start(run: Path) -> Glance:
    python = interpreter()
    prefix = _configure(python, run)
    port = _free_port()
    env = dict(os.environ, OS_GLANCE_CONFIG_DIR=str(run / "etc"), PYTHONPATH=str(run))
    log = (run / "gunicorn.log").open("wb")
    proc = subprocess.Popen(
        [str(prefix / "bin" / "gunicorn"), "--bind", f"127.0.0.1:{port}", "--workers", "1",
         "--worker-class", "gthread", "--threads", "4", "--no-control-socket", "glance.wsgi.api:application"],
        cwd=run, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    glance = Glance(f"http://127.0.0.1:{port}", run, proc)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise GlanceUnavailable(f"gunicorn exited: {(run / 'gunicorn.log').read_text()[-1500:]}")
        try:
            with urllib.request.urlopen(glance.endpoint + "/v2/images", timeout=2) as resp:  # noqa: S310
                if resp.status == 200:
                    return glance
        except OSError:
            time.sleep(0.2)
    glance.stop()
    raise GlanceUnavailable(f"glance did not answer on {glance.endpoint}: {(run / 'gunicorn.log').read_text()[-1500:]}")


def qcow2(tmp_path, size=1 << 20):
    """A real qcow2 v2 header (Glance checks the data matches disk_format)."""
    header = b"QFI\xfb" + struct.pack(">IQIIQ", 2, 0, 0, 16, size) + struct.pack(">IIQQIIQ", 0, 0, 0, 0, 0, 0, 0)
    path = tmp_path / "node.qcow2"
    path.write_bytes(header + b"\0" * (512 - len(header)))
    return path
