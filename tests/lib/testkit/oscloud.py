"""A real OpenStack control plane on loopback for the tests (docs/OPENSTACK-TESTCLOUD.md).

Keystone, Placement, Nova (API, conductor, scheduler, three fake-driver computes), Neutron (ML2
with a bind-everything driver, no agents), Glance, Octavia (API and worker, noop amphora and compute
drivers, VIPs as real Neutron ports), on a private PostgreSQL and RabbitMQ, all on
127.0.0.1, in one run directory. The services' Python packages live in venvs under the cache dir
($BAKERY_CACHE_DIR or ~/.cache/bakery)/openstack-cloud, never in the test venv; PostgreSQL and
RabbitMQ are Debian's (.ci/run installs them). Every process is started in its own session and
stopped by its own process group; the fake address ranges get `unreachable` routes while the
cloud runs (only routes added here are removed).

By hand:  python tests/lib/testkit/oscloud.py up RUN_DIR   (prints the clouds.yaml to use)
          python tests/lib/testkit/oscloud.py down RUN_DIR
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

KIT = Path(__file__).resolve().parents[2] / "openstack" / "cloud"
FENCED = ("198.18.99.0/24", "10.20.0.0/24")  # the external network and the tenant subnet
PORTS = {"keystone": 5000, "placement": 8778, "nova-api": 8774, "neutron": 9696, "glance": 9292, "octavia": 9876,
         "postgres": 5433, "rabbit": 5672, "rabbit-dist": 25672, "epmd": 43690}
COMPUTES = ("compute1", "compute2", "compute3")
PG = "postgresql+psycopg2://os:os@127.0.0.1:5433"
PG_BIN = Path("/usr/lib/postgresql/15/bin")
RABBIT_BIN = Path("/usr/lib/rabbitmq/bin")
EPMD = Path("/usr/lib/erlang/bin/epmd")
NEUTRON_PATCH = "neutron/db/migration/alembic_migrations/versions/2025.2/expand/d553edeb540f_tag_case_sensitive.py"

CLOUDS_YAML = """\
clouds:
  admin:
    auth: {auth_url: "http://127.0.0.1:5000/v3", username: admin, password: adminpw, project_name: admin,
           user_domain_name: Default, project_domain_name: Default}
    region_name: RegionOne
    identity_api_version: 3
  bakery:
    auth: {auth_url: "http://127.0.0.1:5000/v3", username: bakery, password: bakerypw, project_name: bakery,
           user_domain_name: Default, project_domain_name: Default}
    region_name: RegionOne
    identity_api_version: 3
"""

RABBIT_CONF = """\
listeners.tcp.1 = 127.0.0.1:5672
loopback_users.guest = true
vm_memory_high_watermark.relative = 0.1
disk_free_limit.absolute = 50MB
"""


class Unavailable(Exception):
    """The test cloud cannot run here (a missing package, a busy port, no root)."""


def cache_dir() -> Path:
    if os.environ.get("BAKERY_CACHE_DIR"):
        return Path(os.environ["BAKERY_CACHE_DIR"]) / "openstack-cloud"
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "bakery" / "openstack-cloud"


def _log(msg: str) -> None:
    print(f"[testcloud] {msg}", file=sys.stderr, flush=True)


def _venv(name: str, requirements: Path, like: Path | None = None) -> Path:
    """A venv with the requirements installed, rebuilt when the requirements file changes; with `like`,
    the versions installed in that venv are its constraints (the shared libraries match)."""
    venv = cache_dir() / name
    stamp = venv / ".bakery-requirements"
    want = hashlib.sha256(requirements.read_bytes() + (str(like).encode() if like else b"")).hexdigest()
    if stamp.exists() and stamp.read_text() == want:
        return venv
    if os.environ.get("BAKERY_OPENSTACK_NO_INSTALL") == "1":
        raise Unavailable(f"{venv} is missing or stale and BAKERY_OPENSTACK_NO_INSTALL=1")
    _log(f"installing {requirements.name} into {venv}")
    shutil.rmtree(venv, ignore_errors=True)
    venv.parent.mkdir(parents=True, exist_ok=True)
    pip = [str(venv / "bin" / "pip"), "install", "-q", "-r", str(requirements)]
    if like is not None:
        frozen = subprocess.run([str(like / "bin" / "pip"), "freeze"], capture_output=True, text=True, check=True)
        (venv.parent / f"{name}-constraints.txt").write_text(frozen.stdout)
        pip += ["-c", str(venv.parent / f"{name}-constraints.txt")]
    for cmd in ([sys.executable, "-m", "venv", str(venv)], pip):
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode:
            raise Unavailable(f"{' '.join(cmd[:3])}... failed: {done.stderr.strip()[-800:]}")
    stamp.write_text(want)
    return venv


def _patch_neutron(venv: Path) -> None:
    """Neutron 29: migration d553edeb540f runs MySQL-only DDL and breaks PostgreSQL (trap 3): skip it there."""
    found = list((venv / "lib").glob(f"python3*/site-packages/{NEUTRON_PATCH}"))
    if not found:
        raise Unavailable(f"neutron migration {NEUTRON_PATCH} not found: the patch needs updating")
    text = found[0].read_text()
    if "dialect.name != 'mysql'" not in text:
        text = text.replace("def upgrade():\n", "def upgrade():\n    if op.get_bind().dialect.name != 'mysql':"
                            "  # bakery test cloud: MySQL-only DDL\n        return\n", 1)
        found[0].write_text(text)


def install() -> tuple[Path, Path, Path]:
    """The three venvs (the services; Glance alone; Octavia with the services' versions), installing them
    the first time."""
    venv = _venv("venv", KIT / "requirements.txt")
    _patch_neutron(venv)
    ovenv = _venv("octavia-venv", KIT / "requirements-octavia.txt", like=venv)
    done = subprocess.run([str(ovenv / "bin" / "python"), str(KIT / "patch_octavia_pg.py"), str(ovenv)],
                          capture_output=True, text=True)
    if done.returncode:
        raise Unavailable(f"patching Octavia's migrations failed: {(done.stderr or done.stdout).strip()[-800:]}")
    return venv, _venv("glance-venv", KIT / "requirements-glance.txt"), ovenv


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


@dataclass
class Cloud:
    run: Path
    venv: Path = Path()
    glance_venv: Path = Path()
    octavia_venv: Path = Path()
    procs: dict[str, int] = field(default_factory=dict)  # name -> pid (= its process group)
    routes: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def clouds_yaml(self) -> Path:
        return self.run / "clouds.yaml"

    @property
    def log(self) -> Path:
        return self.run / "log"

    def env(self, **extra: str) -> dict[str, str]:
        env = {**os.environ, "OS_CLIENT_CONFIG_FILE": str(self.clouds_yaml), "PYTHONWARNINGS": "ignore",
               "PYTHONPATH": str(self.run / "pylib"), **extra}
        env.pop("OS_CLOUD", None)
        return env

    def _save(self) -> None:
        (self.run / "procs.json").write_text(json.dumps({"procs": self.procs, "routes": self.routes}))

    # -- processes -------------------------------------------------------------------------------
    def spawn(self, name: str, cmd: list[str], **extra: str) -> None:
        out = open(self.log / f"{name}.out", "wb")
        proc = subprocess.Popen(cmd, cwd=self.run, env=self.env(**extra), stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        out.close()
        self.procs[name] = proc.pid
        self._save()

    def check(self, what: str, cmd: list[str], **extra: str) -> None:
        done = subprocess.run(cmd, cwd=self.run, env=self.env(**extra), capture_output=True, text=True)
        (self.log / f"{what}.log").write_text(done.stdout + done.stderr)
        if done.returncode:
            raise Unavailable(f"{what} failed (exit {done.returncode}): {(done.stdout + done.stderr).strip()[-1500:]}")

    def wait_port(self, name: str, port: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not _answers(port):
            pid = self.procs.get(name)
            if pid is not None and not _alive(pid):
                raise Unavailable(f"{name} exited before listening on {port}: {self.tail(name)}")
            if time.monotonic() > deadline:
                raise Unavailable(f"{name} did not listen on 127.0.0.1:{port} within {timeout:.0f}s: {self.tail(name)}")
            time.sleep(0.2)

    def tail(self, name: str) -> str:
        found = sorted(self.log.glob(f"{name}*"))
        return " | ".join(p.read_text(errors="replace")[-600:] for p in found[:2])

    def gunicorn(self, name: str, port: int, app: str, venv: Path, **extra: str) -> None:
        self.spawn(name, [str(venv / "bin" / "gunicorn"), "--bind", f"127.0.0.1:{port}", "--workers", "1",
                          "--threads", "4", "--worker-class", "gthread", "--timeout", "300", "--no-control-socket",
                          "--error-logfile", str(self.log / f"{name}.gunicorn.log"), app], **extra)

    def stop(self, name: str) -> None:
        pid = self.procs.pop(name, None)
        if pid is None:
            return
        for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(pid, sig)
            except ProcessLookupError:
                break
            deadline = time.monotonic() + wait
            while _group_alive(pid) and time.monotonic() < deadline:
                _reap(pid)
                time.sleep(0.1)
            if not _group_alive(pid):
                break
        _reap(pid)
        self._save()


def _alive(pid: int) -> bool:
    _reap(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def _prepare(run: Path) -> None:
    for d in ("log", "state/keystone", "state/neutron", "state/instances", *(f"state/{c}" for c in COMPUTES),
              "lock/neutron", "glance", "rabbit", "pgrun", "ca"):
        (run / d).mkdir(parents=True, exist_ok=True)
    # Octavia's amphora flow signs a certificate for each (noop) amphora, even with noop drivers.
    if not (run / "ca" / "ca.pem").exists():
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-noenc", "-days", "30", "-subj",
                        "/CN=bakery test cloud octavia CA", "-keyout", str(run / "ca" / "ca.key"),
                        "-out", str(run / "ca" / "ca.pem")], check=True, capture_output=True)
    for src in (KIT / "etc").rglob("*"):
        if src.is_file():
            dst = run / "etc" / src.relative_to(KIT / "etc")
            dst.parent.mkdir(parents=True, exist_ok=True)
            dst.write_text(src.read_text().replace("@RUN@", str(run)))
    shutil.copytree(KIT / "pylib", run / "pylib", dirs_exist_ok=True)
    (run / "clouds.yaml").write_text(CLOUDS_YAML)
    (run / "rabbit" / "rabbitmq.conf").write_text(RABBIT_CONF)
    (run / "rabbit" / "enabled_plugins").write_text("[].\n")
    (run / "rabbit" / "rabbitmq-env.conf").write_text("")


def _preflight() -> None:
    if os.geteuid() != 0:
        raise Unavailable("the test cloud needs root (PostgreSQL runs as user postgres, routes are added)")
    for path in (PG_BIN / "initdb", RABBIT_BIN / "rabbitmq-server", EPMD):
        if not path.exists():
            raise Unavailable(f"{path} is missing: apt-get install postgresql rabbitmq-server")
    busy = [f"{n} ({p})" for n, p in PORTS.items() if not _port_free(p)]
    if busy:
        raise Unavailable(f"ports in use on 127.0.0.1: {', '.join(busy)} (another test cloud running?)")


def _wait_postgres(cloud: Cloud, timeout: float = 60) -> None:
    """The port answers before the server accepts connections ("the database system is starting up")."""
    deadline = time.monotonic() + timeout
    while subprocess.run([str(PG_BIN / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(PORTS["postgres"])],
                         capture_output=True).returncode != 0:
        if time.monotonic() > deadline:
            raise Unavailable(f"PostgreSQL did not accept connections within {timeout:.0f}s: {cloud.tail('postgres')}")
        time.sleep(0.2)


def _fence(cloud: Cloud) -> None:
    """`ip route add unreachable` for the fake ranges, unless one holds an address this machine needs."""
    import ipaddress

    needed = set()
    for host in ("pypi.org", "files.pythonhosted.org", "deb.debian.org"):
        try:
            needed |= {ai[4][0] for ai in socket.getaddrinfo(host, 443, socket.AF_INET)}
        except OSError:
            pass
    for net in FENCED:
        clash = [a for a in needed if ipaddress.ip_address(a) in ipaddress.ip_network(net)]
        if clash:
            raise Unavailable(f"{net} holds {clash}, which this machine reaches its registries at: not fencing it")
        if subprocess.run(["ip", "route", "add", "unreachable", net], capture_output=True).returncode == 0:
            cloud.routes.append(net)
    cloud._save()


def start(run: Path) -> Cloud:
    """Install (first time), start and populate the cloud in RUN; on failure, everything is stopped."""
    _preflight()
    t0 = time.monotonic()
    venv, gvenv, ovenv = install()
    cloud = Cloud(run, venv, gvenv, ovenv)
    cloud.timings["install"] = time.monotonic() - t0
    try:
        _start(cloud)
    except BaseException:
        stop(cloud)
        raise
    cloud.timings["total"] = time.monotonic() - t0
    return cloud


def _wait_octavia(cloud: Cloud, timeout: float = 90) -> None:
    """octavia-api loads its app at the first request, and a create cast before the worker consumes its
    topic is lost: wait for `GET /` to answer and for the worker's consumer."""
    import urllib.request

    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{PORTS['octavia']}/", timeout=5) as r:
                if r.status == 200:
                    break
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise Unavailable(f"octavia-api did not answer GET / within {timeout:.0f}s: {cloud.tail('octavia')}")
        time.sleep(0.3)
    worker_log = cloud.log / "octavia-worker.log"
    while "Starting V2 consumer" not in (worker_log.read_text(errors="replace") if worker_log.exists() else ""):
        if not _alive(cloud.procs["octavia-worker"]):
            raise Unavailable(f"octavia-worker exited: {cloud.tail('octavia-worker')}")
        if time.monotonic() > deadline:
            raise Unavailable(f"octavia-worker did not consume within {timeout:.0f}s: {cloud.tail('octavia-worker')}")
        time.sleep(0.3)


def _start(cloud: Cloud) -> None:
    run, v, gv, ov = cloud.run, cloud.venv, cloud.glance_venv, cloud.octavia_venv
    _prepare(run)
    t = time.monotonic()
    _fence(cloud)
    # PostgreSQL: a private cluster, owned by postgres, fsync off.
    shutil.chown(run / "pgrun", "postgres", "postgres")
    (run / "pg").mkdir(mode=0o700, exist_ok=True)
    shutil.chown(run / "pg", "postgres", "postgres")
    os.chmod(run, 0o755)
    su = ["runuser", "-u", "postgres", "--"]
    cloud.check("initdb", [*su, str(PG_BIN / "initdb"), "-D", str(run / "pg"), "-U", "postgres", "--auth=trust",
                           "-E", "UTF8", "--locale=C.UTF-8"])
    with open(run / "pg" / "postgresql.conf", "a") as f:
        f.write(f"listen_addresses = '127.0.0.1'\nport = 5433\nunix_socket_directories = '{run}/pgrun'\n"
                "max_connections = 300\nshared_buffers = 128MB\nfsync = off\nsynchronous_commit = off\n"
                "full_page_writes = off\n")
    cloud.spawn("postgres", [*su, str(PG_BIN / "postgres"), "-D", str(run / "pg")])
    # RabbitMQ with its own epmd, both on 127.0.0.1 only.
    cloud.spawn("epmd", [str(EPMD), "-address", "127.0.0.1", "-port", str(PORTS["epmd"])])
    r = run / "rabbit"
    cloud.spawn("rabbit", [str(RABBIT_BIN / "rabbitmq-server")], HOME=str(r), RABBITMQ_NODENAME="rabbit@localhost",
                RABBITMQ_NODE_IP_ADDRESS="127.0.0.1", RABBITMQ_NODE_PORT="5672", RABBITMQ_DIST_PORT="25672",
                ERL_EPMD_ADDRESS="127.0.0.1", ERL_EPMD_PORT=str(PORTS["epmd"]),
                RABBITMQ_CONFIG_FILE=str(r / "rabbitmq.conf"), RABBITMQ_ENABLED_PLUGINS_FILE=str(r / "enabled_plugins"),
                RABBITMQ_MNESIA_BASE=str(r / "mnesia"), RABBITMQ_LOG_BASE=str(r / "log"),
                RABBITMQ_PID_FILE=str(r / "rabbit.pid"), RABBITMQ_CONF_ENV_FILE=str(r / "rabbitmq-env.conf"),
                RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}")
    cloud.wait_port("postgres", PORTS["postgres"])
    _wait_postgres(cloud)
    psql = [*su, str(PG_BIN / "psql"), "-h", "127.0.0.1", "-p", "5433", "-U", "postgres", "-qAt", "-c"]
    cloud.check("pg-role", [*psql, "CREATE ROLE os LOGIN PASSWORD 'os' SUPERUSER"])
    for db in ("keystone", "nova_api", "nova_cell0", "nova", "placement", "neutron", "glance", "octavia"):
        cloud.check(f"pg-{db}", [*psql, f"CREATE DATABASE {db} OWNER os"])
    cloud.timings["postgres"] = time.monotonic() - t
    t = time.monotonic()
    # Schemas: Neutron's and Glance's in the background, the rest in order.
    etc = run / "etc"
    slow = {"neutron-db": subprocess.Popen([str(v / "bin" / "neutron-db-manage"), "--config-file",
                                            str(etc / "neutron/neutron.conf"), "upgrade", "heads"],
                                           cwd=run, env=cloud.env(), stdout=open(cloud.log / "neutron-db.log", "wb"),
                                           stderr=subprocess.STDOUT),
            "glance-db": subprocess.Popen([str(gv / "bin" / "glance-manage"), "--config-file",
                                           str(etc / "glance/glance-api.conf"), "db_sync"],
                                          cwd=run, env=cloud.env(), stdout=open(cloud.log / "glance-db.log", "wb"),
                                          stderr=subprocess.STDOUT),
            "octavia-db": subprocess.Popen([str(ov / "bin" / "octavia-db-manage"), "--config-file",
                                            str(etc / "octavia/octavia.conf"), "upgrade", "head"],
                                           cwd=run, env=cloud.env(), stdout=open(cloud.log / "octavia-db.log", "wb"),
                                           stderr=subprocess.STDOUT)}
    km = [str(v / "bin" / "keystone-manage"), "--config-file", str(etc / "keystone/keystone.conf")]
    cloud.check("keystone-db", [*km, "db_sync"])
    cloud.check("keystone-fernet", [*km, "fernet_setup", "--keystone-user", "root", "--keystone-group", "root"])
    cloud.check("keystone-cred", [*km, "credential_setup", "--keystone-user", "root", "--keystone-group", "root"])
    url = "http://127.0.0.1:5000/v3"
    cloud.check("keystone-bootstrap", [*km, "bootstrap", "--bootstrap-password", "adminpw", "--bootstrap-admin-url",
                                       url, "--bootstrap-public-url", url, "--bootstrap-internal-url", url,
                                       "--bootstrap-region-id", "RegionOne"])
    cloud.gunicorn("keystone", 5000, "lab_wsgi_keystone:application", v, OS_KEYSTONE_CONFIG_DIR=str(etc / "keystone"))
    cloud.check("placement-db", [str(v / "bin" / "placement-manage"), "--config-file",
                                 str(etc / "placement/placement.conf"), "db", "sync"])
    nm = [str(v / "bin" / "nova-manage"), "--config-file", str(etc / "nova/nova.conf")]
    cloud.check("nova-api-db", [*nm, "api_db", "sync"])
    cloud.check("nova-cell0", [*nm, "cell_v2", "map_cell0", "--database_connection", f"{PG}/nova_cell0"])
    cloud.check("nova-cell1", [*nm, "cell_v2", "create_cell", "--name", "cell1", "--database_connection", f"{PG}/nova",
                               "--transport-url", "rabbit://guest:guest@127.0.0.1:5672/"])
    cloud.check("nova-db", [*nm, "db", "sync"])
    for name, proc in slow.items():
        if proc.wait() != 0:
            raise Unavailable(f"{name} failed: {(cloud.log / f'{name}.log').read_text()[-1500:]}")
    cloud.timings["db-sync"] = time.monotonic() - t
    t = time.monotonic()
    cloud.wait_port("keystone", 5000)
    cloud.check("keystone-setup", [str(v / "bin" / "python"), str(KIT / "keystone_setup.py")])
    cloud.timings["keystone-setup"] = time.monotonic() - t
    t = time.monotonic()
    cloud.gunicorn("placement", 8778, "placement.wsgi.api:application", v,
                   OS_PLACEMENT_CONFIG_DIR=str(etc / "placement"))
    cloud.gunicorn("glance", 9292, "glance.wsgi.api:application", gv, OS_GLANCE_CONFIG_DIR=str(etc / "glance"))
    cloud.gunicorn("neutron", 9696, "lab_wsgi_neutron:application", v, OS_NEUTRON_CONFIG_DIR=str(etc / "neutron"),
                   OS_NEUTRON_CONFIG_FILES="neutron.conf")
    cloud.gunicorn("nova-api", 8774, "lab_wsgi_nova:application", v, OS_NOVA_CONFIG_DIR=str(etc / "nova"))
    octavia_conf = str(etc / "octavia/octavia.conf")
    cloud.gunicorn("octavia", PORTS["octavia"], "lab_wsgi_octavia:application", ov, OCTAVIA_CONF=octavia_conf)
    cloud.wait_port("rabbit", 5672, timeout=90)
    conf = ["--config-file", str(etc / "nova/nova.conf")]
    cloud.spawn("nova-conductor", [str(v / "bin" / "nova-conductor"), *conf])
    cloud.spawn("octavia-worker", [str(ov / "bin" / "octavia-worker"), "--config-file", octavia_conf])
    for c in COMPUTES:
        cloud.spawn(f"nova-{c}", [str(v / "bin" / "nova-compute"), *conf, "--config-file",
                                  str(etc / c / "nova-compute.conf")])
    for name in ("placement", "glance", "neutron", "nova-api", "octavia"):
        cloud.wait_port(name, PORTS[name], timeout=90)
    # The scheduler starts after the computes' resource providers exist (trap 10: the HostState race).
    cloud.check("wait-rps", [str(v / "bin" / "python"), str(KIT / "wait_rps.py"), str(len(COMPUTES))])
    cloud.spawn("nova-scheduler", [str(v / "bin" / "nova-scheduler"), *conf])
    cloud.check("discover-hosts", [*nm, "cell_v2", "discover_hosts"])
    _wait_octavia(cloud)
    cloud.timings["services"] = time.monotonic() - t
    t = time.monotonic()
    cloud.check("cloud-setup", [str(v / "bin" / "python"), str(KIT / "cloud_setup.py")])
    cloud.timings["cloud-setup"] = time.monotonic() - t


ORDER = ("octavia-worker", "octavia",
         "nova-scheduler", *(f"nova-{c}" for c in COMPUTES), "nova-conductor", "nova-api", "neutron", "glance",
         "placement", "keystone", "rabbit", "epmd", "postgres")


def stop(cloud: Cloud) -> None:
    """Stop every process started here (by its own process group) and remove the routes added here."""
    for name in [*ORDER, *[n for n in cloud.procs if n not in ORDER]]:
        if name == "postgres" and name in cloud.procs:
            subprocess.run(["runuser", "-u", "postgres", "--", str(PG_BIN / "pg_ctl"), "-D", str(cloud.run / "pg"),
                            "-m", "fast", "-w", "stop"], capture_output=True)
        cloud.stop(name)
    for net in cloud.routes:
        subprocess.run(["ip", "route", "del", "unreachable", net], capture_output=True)
    cloud.routes.clear()
    cloud._save()


def _load(run: Path) -> Cloud:
    data = json.loads((run / "procs.json").read_text())
    return Cloud(run, procs={k: int(p) for k, p in data["procs"].items()}, routes=list(data["routes"]))


def attach(run: Path) -> Cloud:
    """A cloud started by hand in RUN (`oscloud.py up RUN`), checked to be answering."""
    cloud = _load(run)
    down = [n for n in ("keystone", "nova-api", "neutron", "glance", "placement", "octavia") if not _answers(PORTS[n])]
    if down:
        raise Unavailable(f"the test cloud in {run} is not answering: {', '.join(down)}")
    return cloud


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in ("up", "down", "install"):
        print(__doc__, file=sys.stderr)
        return 2
    run = Path(argv[1]).resolve()
    if argv[0] == "install":
        print(install())
        return 0
    if argv[0] == "down":
        stop(_load(run))
        return 0
    run.mkdir(parents=True, exist_ok=True)
    cloud = start(run)
    timings = {k: round(v, 1) for k, v in cloud.timings.items()}
    print(json.dumps({"clouds_yaml": str(cloud.clouds_yaml), "timings": timings}))
    print(f"export OS_CLIENT_CONFIG_FILE={cloud.clouds_yaml} OS_CLOUD=bakery", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
