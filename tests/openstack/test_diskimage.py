"""`bakery bake --from-local` (a diskimage-builder build): the element bakery writes, the host checks,
the CLI's refusals, and the upload of a kernel-boot image's three parts into a real Glance.

The build itself runs in test_diskimage_build.py.
"""

from __future__ import annotations

import json
import stat
import subprocess

import pytest
from testkit import need_tool

from bakery import cli
from bakery.bakedata import Archive, BakeSpec
from bakery.errors import CloudError
from bakery.providers.openstack import diskimage, glance

SPEC = BakeSpec(bake_id="b0d1", install="distro", version=None, apt_proxy=None, storage_driver="overlay2")


def _element(tmp_path, spec=SPEC, archives=()):
    elements, run = diskimage.write_element(tmp_path, spec, tuple(archives))
    return elements / diskimage.ELEMENT, run


def test_element_hooks_are_executable_and_valid_shell(tmp_path):
    archive = tmp_path / "app.tar"
    archive.write_bytes(b"")
    element, run = _element(tmp_path, archives=[archive])
    hooks = [element / "install.d/50-bakery-docker", element / "post-root.d/50-bakery-images",
             element / "finalise.d/99-bakery-seal", run / "images.sh"]
    shellcheck = need_tool("shellcheck")
    for hook in hooks:
        assert hook.stat().st_mode & stat.S_IXUSR, hook
        shell = "bash" if hook.read_text().startswith("#!/bin/bash") else "sh"
        subprocess.run([shell, "-n", str(hook)], check=True)
        res = subprocess.run([shellcheck, "-s", shell, "-e", "SC1091", str(hook)], capture_output=True, text=True)
        assert res.returncode == 0, f"{hook}:\n{res.stdout}"
    assert (element / "element-deps").read_text().split() == list(diskimage.ELEMENT_DEPS)
    assert json.loads((run / "bake.json").read_text())["bake_id"] == "b0d1"
    assert (run / "marker.py").read_text().startswith('"""Written by `bakery bake`')


def test_install_hook_installs_docker_by_the_method_with_the_storage_driver(tmp_path):
    element, _ = _element(tmp_path)
    install = (element / "install.d/50-bakery-docker").read_text()
    assert "method=distro" in install and "install_docker\n" in install
    assert '"storage-driver": "%s"' in install and "overlay2" in install
    assert "systemctl enable docker.service" in install
    assert "docker load" not in install  # nothing runs in the chroot


def test_images_are_loaded_offline_from_bind_mounted_archives(tmp_path):
    archives = []
    for name in ("a.tar", "b c.tar"):
        (tmp_path / name).write_bytes(b"")
        archives.append(tmp_path / name)
    element, run = _element(tmp_path, archives=archives)
    post = (element / "post-root.d/50-bakery-images").read_text()
    assert "--private-network" in post and "--resolv-conf" not in post  # nothing to fetch: no network
    assert f"'--bind-ro={tmp_path}/b c.tar:/run/bakery-archives/2.tar'" in post
    images = (run / "images.sh").read_text()
    assert "load_archive /run/bakery-archives/1.tar ''" in images
    assert "load_archive /run/bakery-archives/2.tar ''" in images
    assert "python3 /run/bakery-bake/marker.py" in images


def test_pulls_and_urls_get_the_network(tmp_path):
    spec = BakeSpec(bake_id="b0d2", install="apt-repo", version="27.3", apt_proxy=None, storage_driver=None,
                    pulls=("nginx:1.27",), archives=(Archive("https://example.test/app.tar", "a" * 64),))
    element, run = _element(tmp_path, spec)
    assert "--resolv-conf=copy-host" in (element / "post-root.d/50-bakery-images").read_text()
    images = (run / "images.sh").read_text()
    assert "pull nginx:1.27" in images
    assert f"load_archive https://example.test/app.tar {'a' * 64}" in images
    assert "storage-driver" not in (element / "install.d/50-bakery-docker").read_text()


def test_device_mapper_probe(tmp_path):
    assert diskimage.device_mapper(tmp_path / "missing") is False
    node = tmp_path / "regular"
    node.write_text("")
    assert diskimage.device_mapper(node) is True


def test_archive_paths_are_checked(tmp_path):
    from bakery.errors import UserError

    with pytest.raises(UserError, match="no such image archive"):
        diskimage.check_archives([tmp_path / "nope.tar"])
    odd = tmp_path / "a:b.tar"
    odd.write_bytes(b"")
    with pytest.raises(UserError, match="may not contain ':'"):
        diskimage.check_archives([odd])


def test_build_progress_names_each_phase_once():
    seen: list[str] = []
    phase = ""
    for line in ("2026-11-22 06:35:30.513 | dib-run-parts Running /tmp/dib_build.x/hooks/root.d/08-debootstrap\n",
                 "2026-11-22 06:35:31.513 | dib-run-parts Running /tmp/dib_build.x/hooks/root.d/09-apt-keyring\n",
                 "2026-11-22 06:35:32.513 | dib-run-parts Running /tmp/in_target.d/install.d/50-bakery-docker\n",
                 "2026-11-22 | bakery-bake: loading archive 1 of 2\n",
                 "2026-11-22 | Unpacking cpio\n",
                 "2026-11-22 | dib-run-parts 50-bakery-docker completed\n"):
        phase = diskimage._progress_line(line, seen.append, phase)
    assert seen == ["diskimage-builder: root.d", "diskimage-builder: install.d", "bakery-bake: loading archive 1 of 2"]
    assert phase == "install.d"


@pytest.mark.parametrize("argv, message", [
    (["--from-local", "--no-upload"], "--no-upload needs --keep-image"),
    (["--pre-pull-archive", "x.tar", "--base-image", "d", "--flavor", "f", "--network", "n"],
     "--pre-pull-archive needs --target local, or --from-local"),
    (["--from-local", "--pre-pull-archive", "/nonexistent/x.tar", "--dry-run"], "no such image archive"),
])
def test_cli_refusals_are_one_line(argv, message, capsys):
    code = cli.main(["bake", "--target", "openstack", *argv])
    err = capsys.readouterr().err
    assert code == 2, err
    assert message in err and "Traceback" not in err


def test_dry_run_plans_the_build_and_the_three_uploads(tmp_path, capsys):
    archive = tmp_path / "app.tar"
    archive.write_bytes(b"")
    code = cli.main(["bake", "--target", "openstack", "--from-local", "--layout", "kernel-boot",
                     "--pre-pull-archive", str(archive), "--image-name", "node", "--dry-run", "--output", "json"])
    assert code == 0
    plan = json.loads(capsys.readouterr().out)["plan"]
    assert "diskimage-builder" in plan[0] and "kernel-boot" in plan[0] and "1 archive(s)" in plan[0]
    assert "with its kernel and ramdisk images" in plan[-1]


# The upload of a built kernel-boot image, against the real Glance.

@pytest.fixture
def conn(glance_endpoint):
    import openstack

    c = openstack.connect(load_yaml_config=False, load_envvars=False, auth_type="none",
                          image_endpoint_override=glance_endpoint)
    yield c
    for image in list(c.image.images()):
        c.image.delete_image(image.id, ignore_missing=True)


def _built(tmp_path, root_bytes):
    from testkit.glance_server import qcow2

    root = qcow2(tmp_path)
    if root_bytes is not None:
        root.write_bytes(root_bytes)
    kernel, ramdisk = tmp_path / "n.vmlinuz", tmp_path / "n.initrd"
    kernel.write_bytes(b"\x00kernel" * 64)
    ramdisk.write_bytes(b"\x00ramdisk" * 64)
    return diskimage.DiskImage(root=root, kernel=kernel, ramdisk=ramdisk, layout="kernel-boot",
                               marker={}, log=tmp_path / "n.log")



@pytest.mark.glance
def test_kernel_boot_upload_links_the_three_images(conn, tmp_path):
    from bakery.providers.openstack.bake import BakeOptions, upload_built

    opts = BakeOptions(bake_id="k1", image_name="node-k1", base_image="", flavor="", network="")
    props = glance.image_properties("k1", {"docker_version": "20.10.24", "images": []}, "debian")
    ids = upload_built(conn, _built(tmp_path, None), opts, props, lambda m: None)
    assert set(ids) == {"kernel", "ramdisk", "image"}
    root = conn.image.get_image(ids["image"])
    assert (root.kernel_id, root.ramdisk_id) == (ids["kernel"], ids["ramdisk"])
    assert root.os_command_line == diskimage.COMMAND_LINE
    assert root.properties["bakery_docker_version"] == "20.10.24"
    for part, fmt in (("kernel", "aki"), ("ramdisk", "ari")):
        image = conn.image.get_image(ids[part])
        assert (image.disk_format, image.container_format) == (fmt, fmt)
        assert image.name == f"node-k1-{part}" and image.properties["bakery_part"] == part
    for image_id in ids.values():
        image = conn.image.get_image(image_id)
        assert image.status == "active" and glance.bake_tag("k1") in image.tags
        assert image.properties[glance.STATE_PROPERTY] == "complete"
    assert props["kernel_id"] == ids["kernel"]  # the printed result names them too


@pytest.mark.glance
def test_a_refused_root_image_leaves_no_kernel_or_ramdisk(conn, tmp_path):
    from bakery.providers.openstack.bake import BakeOptions, upload_built

    opts = BakeOptions(bake_id="k2", image_name="node-k2", base_image="", flavor="", network="")
    said: list[str] = []
    with pytest.raises(CloudError):
        upload_built(conn, _built(tmp_path, b"not a qcow2 at all" * 100), opts, {}, said.append)
    assert list(conn.image.images()) == []
    assert any("deleting the 2 image(s)" in s for s in said)


def test_what_an_interrupted_build_leaves_is_released(tmp_path):
    """release_under (run after every build, Ctrl-C included) unmounts nested mounts deepest first and
    detaches loop devices backed by files under the build directory, and touches nothing else."""
    import os

    from testkit import require_or_skip

    if os.geteuid() != 0:
        require_or_skip("BAKERY_REQUIRE_DIB", "mounting needs root")
    build = tmp_path / "dib tmp"  # a space: mountinfo escapes it
    outside = tmp_path / "outside"
    for d in (build / "mnt", outside):
        d.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(build / "mnt")], check=True)
    (build / "mnt" / "proc").mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(build / "mnt" / "proc")], check=True)
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(outside)], check=True)
    image = build / "image.raw"
    with image.open("wb") as f:
        f.truncate(8 << 20)
    loop = subprocess.run(["losetup", "-f", "--show", str(image)], capture_output=True, text=True, check=True)
    device = loop.stdout.strip()
    try:
        released = diskimage.release_under(build)
        mounts = open("/proc/self/mountinfo").read()
        assert released[:2] == [str(build / "mnt" / "proc"), str(build / "mnt")]
        assert device in released
        assert "dib\\040tmp" not in mounts
        assert str(outside) in mounts  # not under the build: left alone
        assert str(image) not in subprocess.run(["losetup", "-l", "-n"], capture_output=True, text=True).stdout
        assert os.path.exists(image)
    finally:
        subprocess.run(["umount", str(outside)], check=False)
        subprocess.run(["losetup", "-d", device], capture_output=True, check=False)
        for point in (build / "mnt" / "proc", build / "mnt"):
            subprocess.run(["umount", "-l", str(point)], capture_output=True, check=False)
