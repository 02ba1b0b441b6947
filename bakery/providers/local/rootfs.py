"""The node image for local clusters: a Debian root filesystem, built once and cached.

Recipe (docs/local-nodes.md): debootstrap minbase with systemd, then a
second apt step inside the image (debootstrap alone cannot resolve
cloud-init's virtual python3-cffi-backend-api-* dependency). Stages:

    base (debootstrap) ─┬─ plain: systemd, cloud-init, NFS client; the user-data installs Docker at boot
                        └─ baked: plain's packages + docker.io, curl, socat + /etc/bakery/baked (no images)
                              └─ baked with archives: a copy of that, the `docker save` archives loaded

The user-data sees the marker and skips the install. A bake with archives
starts from the bake without them, so both share the Docker install (one apt
step) and `bakery bake --target local` with no archive costs nothing more
once an archive bake was made. An image need not have /var/lib/docker: only
loading archives creates it.

Docker's storage driver is not baked in: the user-data's daemon.json sets it,
exactly as on OpenStack. Each stage lives in `<cache>/<stage>-<key>` where key
hashes every input, so an image is rebuilt only when an input changes. Stages
are built in a scratch directory and renamed into place, so a killed build
never leaves a half image behind under a valid key.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass, replace
from pathlib import Path

from ... import __version__
from ...errors import BakeryError, EnvironmentMissing, UserError
from .host import Progress, run, which

# Bump when the recipe below changes in a way that must invalidate caches.
RECIPE_VERSION = 8
BASE_VERSION = 3  # the debootstrap stage alone
SUITE = "bookworm"
BASE_INCLUDE = ("systemd", "systemd-sysv", "dbus", "iproute2", "ca-certificates", "apt-utils")
PLAIN_PACKAGES = ("cloud-init", "nfs-common", "python3-cffi-backend")
# curl and socat: what Flatcar and Fedora CoreOS ship for the sh join agent and service (--format ignition)
BAKED_PACKAGES = (*PLAIN_PACKAGES, "docker.io", "curl", "socat")
MARKER = "etc/bakery/baked"
SOURCES_DIR = Path("/etc/apt/sources.list.d")
CURRENT = "current-baked"


@dataclass(frozen=True)
class Recipe:
    baked: bool
    mirror: str
    archives: tuple[Path, ...] = ()
    suite: str = SUITE

    @property
    def packages(self) -> tuple[str, ...]:
        return BAKED_PACKAGES if self.baked else PLAIN_PACKAGES


@dataclass(frozen=True)
class Image:
    root: Path  # the root filesystem, shared read-only by every node (each gets an overlay)
    key: str
    baked: bool
    marker: dict[str, object]  # /etc/bakery/baked of a baked image; {} for plain


def default_cache_dir() -> Path:
    return Path(os.environ.get("BAKERY_CACHE_DIR") or "/var/cache/bakery") / "local"


def host_mirror(sources_dir: Path = SOURCES_DIR, suite: str = SUITE) -> str:
    """The Debian mirror this machine's apt uses for `suite` (deb822 .sources or one-line .list)."""
    candidates: list[Path] = sorted(sources_dir.glob("*.sources")) + sorted(sources_dir.glob("*.list"))
    legacy = sources_dir.parent / "sources.list"
    if legacy.exists():
        candidates.append(legacy)
    for path in candidates:
        mirror = _mirror_in(path.read_text(errors="replace"), suite, deb822=path.suffix == ".sources")
        if mirror:
            return mirror
    raise EnvironmentMissing(
        f"no apt source for Debian {suite} in {sources_dir} (add one; the node image is built from it)"
    )


def _mirror_in(text: str, suite: str, *, deb822: bool) -> str | None:
    if not deb822:
        for line in text.splitlines():
            parts = line.split("#", 1)[0].split()
            if not parts or parts[0] != "deb":
                continue
            rest = parts[1:]
            if rest and rest[0].startswith("["):  # [arch=amd64 signed-by=...] options
                while rest and not rest[0].endswith("]"):
                    rest = rest[1:]
                rest = rest[1:]
            if len(rest) >= 2 and rest[1] == suite:
                return rest[0]
        return None
    for stanza in text.split("\n\n"):
        fields: dict[str, str] = {}
        for line in stanza.splitlines():
            if line.startswith("#") or ":" not in line or line[:1].isspace():
                continue
            name, value = line.split(":", 1)
            fields[name.strip().lower()] = value.strip()
        if "deb" in fields.get("types", "").split() and suite in fields.get("suites", "").split():
            uris = fields.get("uris", "").split()
            if uris:
                return uris[0]
    return None


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def base_key(recipe: Recipe) -> str:
    data = {"v": BASE_VERSION, "suite": recipe.suite, "mirror": recipe.mirror, "include": BASE_INCLUDE}
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def image_key(recipe: Recipe) -> str:
    data = {
        "v": RECIPE_VERSION,
        "base": base_key(recipe),
        "baked": recipe.baked,
        "packages": recipe.packages,
        "archives": [_digest(a) for a in recipe.archives],
        "bakery": __version__,
    }
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def ensure(recipe: Recipe, cache: Path, progress: Progress) -> Image:
    """The cached image for `recipe`, built (with progress) only if it is not there yet."""
    if recipe.archives and not recipe.baked:
        raise UserError("image archives need Docker in the image, and the plain image has none",
                        fix="drop --plain, or drop --pre-pull-archive")
    for archive in recipe.archives:
        if not archive.is_file():
            raise UserError(f"{archive}: no such image archive (make one with `docker save -o FILE IMAGE`)")
    which("debootstrap")
    which("systemd-nspawn")
    key = image_key(recipe)
    final = cache / f"{'baked' if recipe.baked else 'plain'}-{key}"
    if (final / "rootfs").is_dir():
        progress(f"node image {final.name} is cached ({final})")
        return _image(final, key, recipe.baked)
    if recipe.archives:
        lower = ensure(replace(recipe, archives=()), cache, progress).root.parent
        what = f"the baked image without archives ({lower.name})"
    else:
        lower, what = _ensure_base(recipe, cache, progress), "the base system"
    with _scratch(cache, final.name) as work:
        progress(f"copying {what} into a new {final.name}")
        run(["cp", "-a", "--reflink=auto", str(lower / "rootfs"), str(work / "rootfs")], work / "build.log")
        if recipe.archives:
            _add_archives(work / "rootfs", recipe, work / "build.log", progress)
        else:
            _configure(work / "rootfs", recipe, work / "build.log", progress)
        work.rename(final)
    progress(f"node image ready: {final}")
    return _image(final, key, recipe.baked)


def set_current(cache: Path, image: Image) -> None:
    """Remember `image` as the one `up` boots (what `bakery bake --target local` made last)."""
    (cache / CURRENT).write_text(image.root.parent.name + "\n")


def current(cache: Path) -> Image | None:
    try:
        name = (cache / CURRENT).read_text().strip()
    except OSError:
        return None
    final = cache / name
    if not name.startswith("baked-") or not (final / "rootfs").is_dir():
        return None
    return _image(final, name.removeprefix("baked-"), True)


def _image(final: Path, key: str, baked: bool) -> Image:
    marker_path = final / "rootfs" / MARKER
    marker = json.loads(marker_path.read_text()) if baked and marker_path.exists() else {}
    return Image(root=final / "rootfs", key=key, baked=baked, marker=marker)


class _scratch:
    """A build directory next to the cache entry; removed unless it was renamed into place."""

    def __init__(self, cache: Path, name: str) -> None:
        cache.mkdir(parents=True, exist_ok=True)
        self.path = cache / f".build-{name}-{os.getpid()}"

    def __enter__(self) -> Path:
        shutil.rmtree(self.path, ignore_errors=True)
        self.path.mkdir(parents=True)
        return self.path

    def __exit__(self, *exc: object) -> None:
        if self.path.exists():
            shutil.rmtree(self.path, ignore_errors=True)


def _ensure_base(recipe: Recipe, cache: Path, progress: Progress) -> Path:
    final = cache / f"base-{base_key(recipe)}"
    if (final / "rootfs").is_dir():
        return final
    with _scratch(cache, final.name) as work:
        progress(f"debootstrap {recipe.suite} from {recipe.mirror} (a few minutes; log: {work}/build.log)")
        cmd = ["debootstrap", "--variant=minbase", "--include=" + ",".join(BASE_INCLUDE)]
        run([*cmd, recipe.suite, str(work / "rootfs"), recipe.mirror], work / "build.log", timeout=3600)
        log = final.parent / f"{final.name}.log"
        shutil.copy(work / "build.log", log)
        work.rename(final)
    return final


def _nspawn(root: Path, log: Path, *args: str, binds: tuple[str, ...] = (), net: bool = True) -> None:
    """Run one command inside the image (not booted); nspawn sets up /proc, /sys, /dev and undoes them."""
    cmd = ["systemd-nspawn", "-q", "-D", str(root), "--register=no", "--keep-unit", "--capability=all"]
    cmd += ["--resolv-conf=copy-host"] if net else ["--private-network"]
    cmd += ["--setenv=DEBIAN_FRONTEND=noninteractive", *binds, *args]
    run(cmd, log, timeout=3600)


def _configure(root: Path, recipe: Recipe, log: Path, progress: Progress) -> None:
    # No service may start inside the build (policy-rc.d), whatever the packages' postinst wants.
    policy = root / "usr/sbin/policy-rc.d"
    policy.write_text("#!/bin/sh\nexit 101\n")
    policy.chmod(0o755)
    progress(f"installing {' '.join(recipe.packages)} in the image")
    _nspawn(root, log, "apt-get", "update", "-q")
    _nspawn(root, log, "apt-get", "install", "-y", "-q", "--no-install-recommends", *recipe.packages)
    _nspawn(root, log, "systemctl", "enable", "systemd-networkd.service")
    cfg = root / "etc/cloud/cloud.cfg.d"
    (cfg / "90-bakery-datasource.cfg").write_text("datasource_list: [NoCloud, None]\n")
    # minbase has no generated en_US.UTF-8, cloud-init's default: its locale module would fail.
    (cfg / "91-bakery-locale.cfg").write_text("locale: C.UTF-8\n")
    if recipe.baked:
        # Docker starts when the user-data has configured it (daemon.json, TLS socket), not
        # at first boot with settings the image does not have.
        _nspawn(root, log, "systemctl", "disable", "docker.service", "docker.socket")
        _write_marker(root, recipe)
    _nspawn_cgroups_unit(root, log)
    policy.unlink()
    _hygiene(root, log)


def _add_archives(root: Path, recipe: Recipe, log: Path, progress: Progress) -> None:
    """On a copy of the baked image without archives: load them, list them in the marker, seal again."""
    _load_images(root, recipe.archives, log, progress)
    _write_marker(root, recipe)
    _hygiene(root, log)


CGROUP_UNIT = """\
# Written by bakery for local (systemd-nspawn) nodes only. nspawn mounts the
# cgroup v1 controllers read-only inside the node, so runc cannot create the
# containers' cgroups ("mkdir /sys/fs/cgroup/cpuset/docker/...: read-only file
# system"). The node sees only its own cgroup namespace: make that writable.
[Unit]
Description=bakery: writable cgroup controllers for Docker in a systemd-nspawn node
ConditionVirtualization=systemd-nspawn
DefaultDependencies=no
Before=containerd.service docker.service
After=local-fs.target

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/sh -c 'for d in /sys/fs/cgroup/*/; do \\
  [ "$(stat -f -c %%T "$d")" = cgroupfs ] && mount -o remount,bind,rw "$d"; done; true'

[Install]
WantedBy=sysinit.target
"""


def _nspawn_cgroups_unit(root: Path, log: Path) -> None:
    (root / "etc/systemd/system/bakery-nspawn-cgroups.service").write_text(CGROUP_UNIT)
    _nspawn(root, log, "systemctl", "enable", "bakery-nspawn-cgroups.service", net=False)


def _load_images(root: Path, archives: tuple[Path, ...], log: Path, progress: Progress) -> None:
    """`docker load` each archive with the image's own dockerd, inside the image, on a private network.

    vfs, because that is the storage driver the user-data configures: images
    loaded under another driver would be invisible at boot (docs/local-nodes.md: images vanish
    when the storage driver changes).
    """
    if not archives:
        return
    progress(f"loading {len(archives)} image archive(s) into the image's Docker")
    binds = tuple(f"--bind-ro={a.resolve()}:/run/bakery-archives/{i}.tar" for i, a in enumerate(archives))
    # A fixed script (no interpolated values): the archives arrive as bind mounts.
    script = (
        "S=unix:///run/bakery-load.sock; "
        "dockerd --storage-driver=vfs --bridge=none --iptables=false -H $S >/run/dockerd.log 2>&1 & pid=$!; "
        "for i in $(seq 60); do docker -H $S version >/dev/null 2>&1 && break; sleep 1; done; "
        "for f in /run/bakery-archives/*.tar; do docker -H $S load -i \"$f\" || "
        "{ cat /run/dockerd.log; kill $pid; exit 1; }; done; "
        "docker -H $S image ls --no-trunc --format '{{.Repository}}:{{.Tag}} {{.ID}}' "
        "| grep -v '<none>' | sort > /etc/bakery-images; "
        "kill $pid; wait $pid; true"
    )
    _nspawn(root, log, "/bin/sh", "-c", script, binds=binds, net=False)


def _write_marker(root: Path, recipe: Recipe) -> None:
    listed = root / "etc/bakery-images"
    lines = listed.read_text().splitlines() if listed.exists() else []
    listed.unlink(missing_ok=True)
    # The OpenStack bake's marker format (bakedata.py): each image with the id it was loaded as.
    images = sorted(({"ref": ref, "id": image_id} for ref, _, image_id in (line.partition(" ") for line in lines)
                     if ref), key=lambda i: i["ref"])
    status = (root / "var/lib/dpkg/status").read_text()
    marker = {
        "bakery_version": __version__,
        "docker_version": _package_version(status, "docker.io"),
        "images": images,
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "image_key": image_key(recipe),
    }
    path = root / MARKER
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(marker, indent=2, sort_keys=True) + "\n")


def _package_version(status: str, name: str) -> str:
    for stanza in status.split("\n\n"):
        if f"Package: {name}\n" in stanza + "\n":
            for line in stanza.splitlines():
                if line.startswith("Version: "):
                    return line.split(" ", 1)[1]
    raise BakeryError(f"{name} is not installed in the image (the apt step did not install it)")


def _hygiene(root: Path, log: Path) -> None:
    """What every image must shed before it is cloned (docs/local-nodes.md)."""
    _nspawn(root, log, "cloud-init", "clean", "--logs", "--seed", net=False)
    _nspawn(root, log, "apt-get", "clean", net=False)
    (root / "etc/machine-id").write_text("")
    (root / "var/lib/dbus/machine-id").unlink(missing_ok=True)
    for identity in ("etc/docker/key.json", "var/lib/docker/engine-id"):
        (root / identity).unlink(missing_ok=True)
    # Docker's network store holds the builder's network ids; each node makes its own.
    shutil.rmtree(root / "var/lib/docker/network", ignore_errors=True)
    for leftover in root.glob("var/lib/apt/lists/*_Packages"):
        leftover.unlink()
    (root / "etc/resolv.conf").unlink(missing_ok=True)
