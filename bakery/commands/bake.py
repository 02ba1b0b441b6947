"""Build a node image with Docker and the application's images preinstalled.

  bakery bake --target local --pre-pull-archive app.tar

--target local builds the root filesystem that `bakery up --provider local`
boots: Debian with systemd, cloud-init, docker.io and the NFS client, the
images from each `docker save` archive loaded into Docker (no registry is
needed), the marker /etc/bakery/baked (so the user-data skips installing
Docker), and the hygiene every image needs before it is cloned (`cloud-init
clean`, empty machine-id, no Docker engine identity). The image is cached
under a key of all its inputs and rebuilt only when one changes. Progress
goes to stderr. Needs root and debootstrap/systemd-nspawn.

  bakery bake --target openstack --base-image debian-12 --flavor m1.small --network private --pull nginx:1.27

--target openstack boots a builder server with the bake user-data, waits for
it to power off, snapshots it into Glance with bakery's properties and tags,
and deletes the builder; on failure or Ctrl-C it deletes everything it made
(`--cleanup BAKEID` for a crashed run, `--dry-run` for the plan).

  bakery bake --target openstack --from-local --layout kernel-boot --pre-pull-archive app.tar

--from-local builds the image on this machine with diskimage-builder instead
of a builder server (root, `pip install diskimage-builder`, qemu-utils) and
uploads it with the same properties and tags; `--from-local FILE` uploads an
image file made elsewhere.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..errors import EXIT_OK
from .common import CONFIG_HELP, add_config, add_output


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--target", choices=("local", "openstack"), default="local",
                   help="local: a root filesystem for systemd-nspawn nodes (default); openstack: a Glance image")
    p.add_argument("--pre-pull-archive", action="append", default=[], type=Path, metavar="FILE",
                   help="a `docker save` archive to load into the image (repeatable)")
    p.add_argument("--plain", action="store_true",
                   help="build the plain image instead (no Docker: nodes install it at boot)")
    p.add_argument("--cache-dir", type=Path, metavar="DIR",
                   help="where images are cached (default: $BAKERY_CACHE_DIR/local or /var/cache/bakery/local)")
    add_config(p, help="cluster definition: docker.install, apt_proxy, ... (" + CONFIG_HELP.split("(", 1)[1])
    add_output(p)
    from ..providers.openstack.bake import add_arguments as add_openstack

    add_openstack(p)


def run(args: argparse.Namespace) -> int:
    if args.target == "openstack":
        from ..errors import UserError
        from ..providers.openstack import bake

        if args.plain or args.cache_dir:
            raise UserError("--plain and --cache-dir are for --target local")
        if args.pre_pull_archive and args.from_local != bake.BUILD_HERE:
            raise UserError("--pre-pull-archive needs --target local, or --from-local (a build on this machine)",
                            fix="for a builder server, use --archive-url and --pull")
        return bake.run(args)
    from ..providers.local import rootfs
    from ..providers.local.host import require_host, stderr_progress

    require_host(["debootstrap", "systemd-nspawn"], "bakery bake --target local")
    cache = args.cache_dir or rootfs.default_cache_dir()
    archives = tuple(a.resolve() for a in args.pre_pull_archive)
    recipe = rootfs.Recipe(baked=not args.plain, mirror=rootfs.host_mirror(), archives=archives)
    image = rootfs.ensure(recipe, cache, stderr_progress("bakery bake"))
    if image.baked:
        rootfs.set_current(cache, image)
    if args.output == "json":
        out = {"root": str(image.root), "key": image.key, "baked": image.baked, "marker": image.marker}
        print(json.dumps(out, indent=2, sort_keys=True))
    else:
        kind = "baked" if image.baked else "plain"
        print(f"{kind} node image: {image.root}")
        images = image.marker.get("images")
        for entry in images if isinstance(images, list) else []:
            ref = f"{entry['ref']} ({entry['id']})" if isinstance(entry, dict) else entry
            print(f"  preloaded: {ref}")
        if image.baked:
            print("`bakery up --provider local` boots this image.", file=sys.stderr)
    return EXIT_OK
