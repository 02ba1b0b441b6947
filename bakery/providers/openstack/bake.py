"""`bakery bake --target openstack`: a builder server baked into a Glance image, Packer's flow done carefully.

Boot a builder from a base image with the bake user-data (bakery/bakedata.py),
wait until it powers itself off (SHUTOFF; a timeout or a FAILED line on its
console fails the bake with the console's tail), snapshot it with Nova
createImage, wait for the image to become active (404/5xx while "saving" are
transient), set its properties, tags and visibility, then delete the builder
and its security group. Everything carries the bake id (Nova metadata,
Neutron tags, Glance property); on any failure or Ctrl-C all of it is deleted,
and `bakery bake --cleanup ID` removes what a crashed run left.
"""

from __future__ import annotations

import argparse
import base64
import json
import secrets
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...bakedata import Archive, parse_console
from ...errors import EXIT_FAILED, EXIT_OK, BakeryError, CloudError, UserError
from . import glance
from .cloud import Clock, Poll, create_tagged, find_flavor, find_image, find_network
from .errors import cloud_error, server_fault
from .ledger import Ledger, delete_all, quiet

if TYPE_CHECKING:
    from .diskimage import DiskImage

Progress = Callable[[str], None]
META_KEY = "bakery.bake"  # Nova server metadata
CONSOLE_LINES = 60
CONSOLE_EVERY = 6  # polls between console checks for an early FAILED line
TRANSIENT_LIMIT = 20  # consecutive 404/5xx answers tolerated while an image saves


def new_bake_id() -> str:
    return secrets.token_hex(4)


@dataclass(frozen=True)
class BakeOptions:
    bake_id: str
    image_name: str
    base_image: str
    flavor: str
    network: str
    os_distro: str | None = None
    visibility: str = "private"
    build_timeout: float = 3600.0
    image_timeout: float = 3600.0
    poll: float = 10.0
    requested: tuple[str, ...] = ()  # image refs asked for, used if the console has no marker

    @property
    def builder_name(self) -> str:
        return f"bakery-bake-{self.bake_id}"


@dataclass(frozen=True)
class BakeResult:
    image_id: str
    properties: dict[str, str]
    marker_found: bool


def plan(opts: BakeOptions, userdata_size: int) -> list[str]:
    """What a bake would do, for --dry-run (no cloud calls)."""
    tag = glance.bake_tag(opts.bake_id)
    return [
        f"resolve flavor {opts.flavor!r}, base image {opts.base_image!r}, network {opts.network!r}",
        f"create security group {opts.builder_name} (no inbound rules), tagged {tag}",
        f"boot server {opts.builder_name} with the bake user-data ({userdata_size} bytes), "
        f"metadata {META_KEY}={opts.bake_id}",
        f"wait up to {opts.build_timeout:.0f}s for it to power off (SHUTOFF)",
        f"snapshot it as image {opts.image_name!r}; wait up to {opts.image_timeout:.0f}s for it to become active",
        f"set the image's bakery properties, tags bakery and {tag}, visibility {opts.visibility}",
        f"delete server {opts.builder_name} and security group {opts.builder_name}",
    ]


def bake(conn: Any, opts: BakeOptions, userdata: bytes, progress: Progress, clock: Clock | None = None) -> BakeResult:
    clock = clock or Clock()
    flavor = find_flavor(conn, opts.flavor)
    base = find_image(conn, opts.base_image)
    network = find_network(conn, opts.network)
    ledger = Ledger()
    try:
        result = _run(conn, opts, userdata, (flavor, base, network), ledger, progress, clock)
    except BaseException as exc:  # Ctrl-C too: nothing may be left behind
        progress(f"bake {opts.bake_id} failed; deleting what it created")
        problems = delete_all(conn, ledger, progress, clock)
        if problems:
            raise CloudError(f"{_describe(exc)}; cleanup left: {'; '.join(problems)} "
                             f"(run `bakery bake --target openstack --cleanup {opts.bake_id}`)") from exc
        raise
    return result


def _describe(exc: BaseException) -> str:
    return "interrupted" if isinstance(exc, KeyboardInterrupt) else str(exc)


def _run(conn: Any, opts: BakeOptions, userdata: bytes, found: tuple[Any, Any, Any], ledger: Ledger,
         progress: Progress, clock: Clock) -> BakeResult:
    flavor, base, network = found
    sg = _create_security_group(conn, opts)
    ledger.add("security_group", sg.id)
    server = _boot(conn, opts, userdata, flavor.id, base.id, network.id)
    ledger.add("server", server.id)
    progress(f"builder {opts.builder_name} ({server.id}) booting from {base.name}")
    console = wait_shutoff(conn, server.id, opts, progress, clock)
    state, marker = parse_console(console)
    if marker is None:
        progress("warning: the builder's console has no marker line; properties list the requested images only")
    image_id = _snapshot(conn, server.id, opts)
    ledger.add("image", image_id)
    progress(f"snapshot {opts.image_name} ({image_id}) saving")
    wait_active(conn, image_id, opts, progress, clock)
    props = glance.image_properties(opts.bake_id, marker, opts.os_distro, opts.requested)
    props[glance.STATE_PROPERTY] = "complete"
    glance.set_properties(conn, image_id, props, opts.visibility)
    glance.add_tags(conn, image_id, (glance.BAKERY_TAG, glance.bake_tag(opts.bake_id)))
    ledger.forget("image", image_id)  # the product: kept from here on
    problems = delete_all(conn, ledger, progress, clock)
    if problems:
        progress(f"warning: image is ready but cleanup left: {'; '.join(problems)}")
    return BakeResult(image_id, props, marker is not None)


def _create_security_group(conn: Any, opts: BakeOptions) -> Any:
    try:
        sg = create_tagged(conn.network.create_security_group, glance.bake_tag(opts.bake_id), name=opts.builder_name,
                           description=f"bakery bake {opts.bake_id}: builder, no inbound traffic")
    except Exception as exc:
        raise cloud_error(exc, f"creating security group {opts.builder_name}") from exc
    try:
        conn.network.set_tags(sg, [glance.bake_tag(opts.bake_id)])
    except Exception as exc:
        quiet(lambda: conn.network.delete_security_group(sg.id))
        raise cloud_error(exc, f"tagging security group {sg.id}") from exc
    return sg


def _boot(conn: Any, opts: BakeOptions, userdata: bytes, flavor_id: str, image_id: str, network_id: str) -> Any:
    try:
        return conn.compute.create_server(
            name=opts.builder_name, image_id=image_id, flavor_id=flavor_id,
            networks=[{"uuid": network_id}], security_groups=[{"name": opts.builder_name}],
            user_data=base64.b64encode(userdata).decode(), metadata={META_KEY: opts.bake_id})
    except Exception as exc:
        raise cloud_error(exc, f"booting builder {opts.builder_name}") from exc


def console_tail(conn: Any, server_id: str) -> str:
    try:
        out = conn.compute.get_server_console_output(server_id, length=CONSOLE_LINES)
    except Exception:  # the console is a diagnosis aid; its absence must not hide the real error
        return ""
    return str(out.get("output", "")) if isinstance(out, dict) else ""


def wait_shutoff(conn: Any, server_id: str, opts: BakeOptions, progress: Progress, clock: Clock) -> str:
    """Wait for the builder to power off; returns its console log."""
    deadline = clock.now() + opts.build_timeout
    polls = 0
    retry = Poll()
    while True:
        try:
            server = retry.get(lambda: conn.compute.get_server(server_id))
        except Exception as exc:
            raise cloud_error(exc, f"watching builder {opts.builder_name}") from exc
        if server is None:
            clock.sleep(opts.poll)
            continue
        if server.status == "SHUTOFF":
            return console_tail(conn, server_id)
        if server.status == "ERROR":
            raise server_fault(opts.builder_name, server)
        polls += 1
        if polls % CONSOLE_EVERY == 0:
            console = console_tail(conn, server_id)
            if parse_console(console)[0] == "failed":
                raise BakeryError(f"the bake failed on builder {opts.builder_name}; its console ends:\n{console}")
        if clock.now() >= deadline:
            console = console_tail(conn, server_id) or "(no console output)"
            raise BakeryError(f"builder {opts.builder_name} did not power off within {opts.build_timeout:.0f}s "
                              f"(status {server.status}); its console ends:\n{console}")
        clock.sleep(opts.poll)


def _snapshot(conn: Any, server_id: str, opts: BakeOptions) -> str:
    from openstack.compute.v2.server import Server

    # Properties that let --cleanup find the image even if this process dies now.
    meta = {"bakery_bake_id": opts.bake_id, glance.STATE_PROPERTY: "saving"}
    try:
        return str(Server.existing(id=server_id).create_image(conn.compute, opts.image_name, meta))
    except Exception as exc:
        raise cloud_error(exc, f"snapshotting builder {opts.builder_name}") from exc


def wait_active(conn: Any, image_id: str, opts: BakeOptions, progress: Progress, clock: Clock) -> None:
    """Wait for the snapshot; a 404 or 5xx while Nova is still uploading it is not the end (Packer's trap)."""
    from openstack import exceptions

    deadline = clock.now() + opts.image_timeout
    transient = 0
    last = "unknown"
    while True:
        try:
            image = conn.image.get_image(image_id)
            transient, last = 0, str(image.status)
        except (exceptions.NotFoundException, exceptions.HttpException) as exc:
            code = getattr(exc, "status_code", None)
            if not (code == 404 or (isinstance(code, int) and code >= 500)):
                raise cloud_error(exc, f"watching image {image_id}") from exc
            transient += 1
            if transient > TRANSIENT_LIMIT:
                raise cloud_error(exc, f"watching image {image_id} ({transient} failed polls in a row)") from exc
            progress(f"image {image_id}: transient HTTP {code} while saving; retrying")
        else:
            if last == "active":
                return
            if last in ("killed", "deleted", "deactivated"):
                raise CloudError(f"image {image_id} became {last} while saving (the cloud discarded the snapshot)")
        if clock.now() >= deadline:
            raise CloudError(f"image {image_id} did not become active within {opts.image_timeout:.0f}s "
                             f"(last status {last})")
        clock.sleep(opts.poll)


def cleanup(conn: Any, bake_id: str, progress: Progress, clock: Clock | None = None) -> list[str]:
    """Delete what bake `bake_id` left: its builder, security group and unfinished images (never a complete one)."""
    clock = clock or Clock()
    ledger = Ledger()
    try:
        for server in conn.compute.servers(details=True):
            if (server.metadata or {}).get(META_KEY) == bake_id:
                ledger.add("server", server.id)
        for sg in conn.network.security_groups(tags=glance.bake_tag(bake_id)):
            if glance.bake_tag(bake_id) in (sg.tags or []):  # recheck: never trust a filter to have applied
                ledger.add("security_group", sg.id)
    except Exception as exc:
        raise cloud_error(exc, f"finding what bake {bake_id} left") from exc
    for image in glance.find(conn, None, bakery_bake_id=bake_id):
        if (image.properties or {}).get(glance.STATE_PROPERTY) != "complete":
            ledger.add("image", image.id)
    ledger.sort_for_deletion()
    if not ledger.items:
        progress(f"bake {bake_id}: nothing left to clean up")
    return delete_all(conn, ledger, progress, clock)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of `bakery bake --target openstack` (commands/bake.py owns --target and --output)."""
    from .cloud import add_arguments as add_cloud

    g = p.add_argument_group("--target openstack")
    add_cloud(g)  # type: ignore[arg-type]
    g.add_argument("--base-image", metavar="IMAGE", help="Glance image (name or id) the builder boots from")
    g.add_argument("--flavor", metavar="FLAVOR", help="the builder's flavor (name or id)")
    g.add_argument("--network", metavar="NETWORK", help="the builder's network; it needs outbound access")
    g.add_argument("--image-name", metavar="NAME", help="name of the new image (default bakery-node-BAKEID)")
    g.add_argument("--pull", action="append", default=[], metavar="REF", help="an image to pre-pull (repeatable)")
    g.add_argument("--archive-url", action="append", default=[], metavar="URL[#sha256=HEX]",
                   help="a `docker save` archive the builder downloads and loads (repeatable)")
    g.add_argument("--os-distro", metavar="NAME", help="the image's os_distro property (e.g. debian, ubuntu)")
    g.add_argument("--visibility", choices=("private", "shared", "community", "public"), default="private",
                   help="the new image's visibility (default private)")
    g.add_argument("--build-timeout", type=float, default=3600, metavar="S",
                   help="seconds to wait for the builder to power off (default 3600)")
    g.add_argument("--snapshot-timeout", type=float, default=3600, metavar="S",
                   help="seconds to wait for the snapshot to become an active image (default 3600)")
    g.add_argument("--from-local", type=Path, nargs="?", const=BUILD_HERE, metavar="FILE",
                   help="no builder server: build the image on this machine with diskimage-builder (as root) "
                        "and upload it; with FILE, upload that image file (qcow2/raw) instead")
    g.add_argument("--disk-format", choices=("qcow2", "raw"), default="qcow2", help="format of --from-local FILE")
    g.add_argument("--layout", choices=diskimage_layouts(), default="whole-disk",
                   help="--from-local build: whole-disk (partitioned, GRUB; needs device-mapper) or kernel-boot "
                        "(a filesystem image, booted by Nova with its kernel and ramdisk images; default whole-disk)")
    g.add_argument("--keep-image", type=Path, metavar="DIR",
                   help="--from-local build: write the image files into DIR and keep them (default: a temporary "
                        "directory, removed after the upload)")
    g.add_argument("--no-upload", action="store_true", help="--from-local build: build only (needs --keep-image)")
    g.add_argument("--cleanup", metavar="BAKEID", help="delete what a crashed bake left, then exit")
    g.add_argument("--dry-run", action="store_true", help="print the plan without touching the cloud")


class _BuildHere:
    def __repr__(self) -> str:
        return "<build here>"


BUILD_HERE = _BuildHere()  # --from-local without FILE; not a str, which argparse would pass through type=


def diskimage_layouts() -> tuple[str, ...]:
    from .diskimage import LAYOUTS

    return LAYOUTS


def _archive(value: str) -> Archive:
    url, _, digest = value.partition("#sha256=")
    return Archive(url, digest or None)


def _options(args: argparse.Namespace, bake_id: str) -> BakeOptions:
    if not args.from_local:
        absent = [f"--{n.replace('_', '-')}" for n in ("base_image", "flavor", "network") if not getattr(args, n)]
        if absent:
            raise UserError(f"bake --target openstack needs {', '.join(absent)}",
                            fix="name the base image, flavor and network the builder uses")
    return BakeOptions(
        bake_id=bake_id, image_name=args.image_name or f"bakery-node-{bake_id}", base_image=args.base_image or "",
        flavor=args.flavor or "", network=args.network or "", os_distro=args.os_distro, visibility=args.visibility,
        build_timeout=args.build_timeout, image_timeout=args.snapshot_timeout, requested=tuple(args.pull))


def run(args: argparse.Namespace) -> int:
    from ... import bakedata
    from ...commands.common import load_config
    from ..local.host import stderr_progress
    from .cloud import connect

    progress = stderr_progress("bakery bake")
    as_json = getattr(args, "output", "text") == "json"
    if args.cleanup:
        problems = cleanup(connect(args.os_cloud), args.cleanup, progress)
        for problem in problems:
            print(f"bakery bake: could not delete {problem}", file=sys.stderr)
        return EXIT_FAILED if problems else EXIT_OK
    bake_id = new_bake_id()
    opts = _options(args, bake_id)
    if args.from_local == BUILD_HERE:
        return _build_here(args, opts, progress, as_json)
    if args.from_local:
        return _from_local(args, opts, progress, as_json)
    cfg = load_config(args)
    spec = bakedata.spec_from_config(cfg, bake_id, tuple(args.pull), tuple(_archive(a) for a in args.archive_url))
    userdata = bakedata.build(spec)
    if args.dry_run:
        steps = plan(opts, len(userdata.payload))
        print(json.dumps({"bake_id": bake_id, "plan": steps}, indent=2) if as_json else "\n".join(steps))
        return EXIT_OK
    result = bake(connect(args.os_cloud), opts, userdata.payload, progress)
    _print_result(opts, result.image_id, result.properties, as_json)
    return EXIT_OK


def _from_local(args: argparse.Namespace, opts: BakeOptions, progress: Progress, as_json: bool) -> int:
    from .cloud import connect

    if not args.from_local.is_file():
        raise UserError(f"--from-local {args.from_local}: no such file", fix="build the image first")
    props = glance.image_properties(opts.bake_id, None, opts.os_distro, opts.requested)
    props[glance.STATE_PROPERTY] = "complete"
    tags = (glance.BAKERY_TAG, glance.bake_tag(opts.bake_id))
    if args.dry_run:
        print(f"upload {args.from_local} as image {opts.image_name!r} ({args.disk_format}), tags {', '.join(tags)}")
        return EXIT_OK
    progress(f"uploading {args.from_local} as {opts.image_name}")
    image_id = glance.upload(connect(args.os_cloud), args.from_local, opts.image_name, args.disk_format, props, tags,
                             opts.visibility)
    _print_result(opts, image_id, props, as_json)
    return EXIT_OK


def _build_here(args: argparse.Namespace, opts: BakeOptions, progress: Progress, as_json: bool) -> int:
    """--from-local without FILE: diskimage-builder on this machine, then the upload."""
    import shutil
    import tempfile

    from ... import bakedata
    from ...commands.common import load_config
    from . import diskimage
    from .cloud import connect

    if args.no_upload and not args.keep_image:
        raise UserError("--no-upload needs --keep-image DIR", fix="say where the built image should stay")
    cfg = load_config(args)
    spec = bakedata.spec_from_config(cfg, opts.bake_id, tuple(args.pull), tuple(_archive(a) for a in args.archive_url))
    archives = diskimage.check_archives(args.pre_pull_archive)
    name = opts.image_name
    if args.dry_run:
        steps = [f"build {name} with diskimage-builder (Debian {diskimage.RELEASE}, layout {args.layout}, "
                 f"{len(archives)} archive(s), {len(spec.pulls)} pull(s))"]
        steps.append(f"keep the files in {args.keep_image}" if args.keep_image
                     else "build in a temporary directory, removed after the upload")
        if not args.no_upload:
            parts = "with its kernel and ramdisk images, " if args.layout == "kernel-boot" else ""
            steps.append(f"upload as image {name!r} ({parts}tags {glance.BAKERY_TAG}, {glance.bake_tag(opts.bake_id)})")
        print(json.dumps({"bake_id": opts.bake_id, "plan": steps}, indent=2) if as_json else "\n".join(steps))
        return EXIT_OK
    diskimage.check_host(args.layout)
    conn = None if args.no_upload else connect(args.os_cloud)  # a cloud problem shows before a long build
    out_dir = args.keep_image or Path(tempfile.mkdtemp(prefix=f"bakery-bake-{opts.bake_id}-", dir="/var/tmp"))
    try:
        image = diskimage.build(spec, archives, args.layout, out_dir, name, progress, args.build_timeout)
        props = glance.image_properties(opts.bake_id, image.marker, opts.os_distro or "debian", opts.requested)
        if conn is None:
            _print_built(opts, image, props, as_json)
            return EXIT_OK
        ids = upload_built(conn, image, opts, props, progress)
    finally:
        if not args.keep_image:
            shutil.rmtree(out_dir, ignore_errors=True)
    _print_result(opts, ids["image"], props, as_json, ids)
    return EXIT_OK


def upload_built(conn: Any, image: DiskImage, opts: BakeOptions, props: dict[str, str],
                 progress: Progress) -> dict[str, str]:
    """Upload a diskimage.DiskImage: for kernel-boot, the kernel and ramdisk first and the root image pointing
    at them. Each is tagged with the bake; all are marked complete only when all are up, and on any
    failure (Ctrl-C too) the ones already uploaded are deleted."""
    tags = (glance.BAKERY_TAG, glance.bake_tag(opts.bake_id))
    base = {"bakery_bake_id": opts.bake_id, "bakery_version": props.get("bakery_version", ""),
            glance.STATE_PROPERTY: "uploading"}
    ids: dict[str, str] = {}
    links: dict[str, str] = {}  # what the root image needs to boot with its kernel and ramdisk
    try:
        for part, path, fmt in (("kernel", image.kernel, "aki"), ("ramdisk", image.ramdisk, "ari")):
            if path is None:
                continue
            progress(f"uploading the {part} {path.name}")
            ids[part] = glance.upload(conn, path, f"{opts.image_name}-{part}", fmt, dict(base, bakery_part=part), tags,
                                      opts.visibility, container_format=fmt)
        if image.command_line is not None:
            links = {"kernel_id": ids["kernel"], "ramdisk_id": ids["ramdisk"], "os_command_line": image.command_line}
        root_props = {**props, **links, glance.STATE_PROPERTY: "uploading"}
        progress(f"uploading {image.root.name} ({image.root.stat().st_size // (1 << 20)} MiB) as {opts.image_name}")
        ids["image"] = glance.upload(conn, image.root, opts.image_name, "qcow2", root_props, tags, opts.visibility)
        for image_id in ids.values():
            glance.set_properties(conn, image_id, {glance.STATE_PROPERTY: "complete"})
    except BaseException:
        progress(f"upload of bake {opts.bake_id} failed; deleting the {len(ids)} image(s) it uploaded")
        for image_id in ids.values():
            try:
                glance.delete(conn, image_id)
            except CloudError as exc:
                progress(f"could not delete image {image_id}: {exc}")
        raise
    props.update(links)
    props[glance.STATE_PROPERTY] = "complete"
    return ids


def _print_built(opts: BakeOptions, image: DiskImage, props: dict[str, str], as_json: bool) -> None:
    files = {"image": str(image.root)}
    if image.command_line is not None:
        files.update(kernel=str(image.kernel), ramdisk=str(image.ramdisk), command_line=image.command_line)
    if as_json:
        print(json.dumps({"bake_id": opts.bake_id, "layout": image.layout, "files": files, "properties": props},
                         indent=2, sort_keys=True))
        return
    print(f"built {image.root} (layout {image.layout}); bake id {opts.bake_id}")
    for key, value in files.items():
        if key != "image":
            print(f"  {key}: {value}")


def _print_result(opts: BakeOptions, image_id: str, props: dict[str, str], as_json: bool,
                  ids: dict[str, str] | None = None) -> None:
    if as_json:
        out: dict[str, Any] = {"bake_id": opts.bake_id, "image_id": image_id, "image_name": opts.image_name,
                               "properties": props}
        if ids and len(ids) > 1:
            out["kernel_id"], out["ramdisk_id"] = ids["kernel"], ids["ramdisk"]
        print(json.dumps(out, indent=2, sort_keys=True))
    else:
        print(f"image {opts.image_name} ({image_id}) is active; bake id {opts.bake_id}")
        if ids and len(ids) > 1:
            print(f"  boots with kernel {ids['kernel']} and ramdisk {ids['ramdisk']}")
