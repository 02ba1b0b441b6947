"""`bakery bake --target openstack` against the test cloud: a real Nova boots the builder, a real Glance
holds the snapshot, real Neutron the builder's security group (testkit/oscloud.py).

The fake virt driver runs no user-data and its snapshot uploads nothing, so the test plays the builder's
part (`Builder`): it powers the server off as the bake's last step would, and gives the snapshot its
bytes, with the disk and container formats a real Nova copies from the base image. Everything else is
bakery against the services: the boot, the wait for SHUTOFF, the snapshot, the wait for an active
image, its properties and tags, and the deletion of the builder and its security group; an interrupt
and a killed run (then `--cleanup BAKEID`) leave nothing.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest
from testkit.osbakery import project_objects, run

from bakery.providers.openstack import glance
from bakery.providers.openstack.bake import META_KEY

pytestmark = pytest.mark.openstack

BAKE = ["bake", "--target", "openstack", "--os-cloud", "bakery", "--base-image", "fake-raw", "--flavor", "m1.small",
        "--network", "private", "--pull", "nginx:1.27"]
IMAGE_BYTES = b"bakery-node-image\n" * 64


class Builder(threading.Thread):
    """What the builder server and Nova's snapshot upload would do: power off once ACTIVE (`power_off`),
    then give each of the bake's queued snapshots its bytes."""

    def __init__(self, admin, user, power_off: bool = True) -> None:
        super().__init__(daemon=True)
        self.admin, self.user, self.power_off = admin, user, power_off
        self.done = threading.Event()
        self.active: dict[str, str] = {}  # bake id -> builder server id, once ACTIVE
        self.errors: list[str] = []

    def run(self) -> None:
        stopped: set[str] = set()
        given: set[str] = set()
        while not self.done.is_set():
            try:
                for s in self.admin.compute.servers(all_projects=True, details=True):
                    bake_id = (s.metadata or {}).get(META_KEY)
                    if bake_id and s.status == "ACTIVE":
                        self.active.setdefault(bake_id, s.id)
                        if self.power_off and s.id not in stopped:
                            self.admin.compute.stop_server(s.id)
                            stopped.add(s.id)
                for im in self.user.image.images():
                    if im.properties.get("bakery_bake_id") and im.status == "queued" and im.id not in given:
                        self.user.image.update_image(im, disk_format="raw", container_format="bare")
                        self.user.image.put(f"/images/{im.id}/file", data=IMAGE_BYTES,
                                            headers={"Content-Type": "application/octet-stream"})
                        given.add(im.id)
            except Exception as exc:  # a race with bakery's own deletes: look again
                self.errors.append(repr(exc))
            self.done.wait(1)


@pytest.fixture
def builder(admin, user, clean):
    started: list[Builder] = []

    def start(power_off: bool = True) -> Builder:
        b = Builder(admin, user, power_off)
        b.start()
        started.append(b)
        return b

    yield start
    for b in started:
        b.done.set()
        b.join(timeout=10)
    for im in list(user.image.images()):
        if im.properties.get("bakery_bake_id"):
            user.image.delete_image(im.id)


def leftovers(admin, user, bake_id: str) -> dict[str, list[str]]:
    """What carries this bake's mark: servers, security groups, images."""
    tag = glance.bake_tag(bake_id)
    return {
        "servers": [s.name for s in admin.compute.servers(all_projects=True, details=True)
                    if (s.metadata or {}).get(META_KEY) == bake_id],
        "security_groups": [g.name for g in user.network.security_groups() if tag in (g.tags or [])],
        "images": [i.name for i in user.image.images() if i.properties.get("bakery_bake_id") == bake_id],
    }


def test_bake_makes_one_active_tagged_image_and_deletes_its_builder(os_env, admin, user, builder, capsys):
    builder()
    code, out, err = run(capsys, [*BAKE, "--output", "json", "--image-name", "node-v1"])
    assert code == 0, err
    result = json.loads(out)
    image = user.image.get_image(result["image_id"])
    assert image.name == "node-v1" and image.status == "active" and image.size == len(IMAGE_BYTES)
    assert set(image.tags) >= {glance.BAKERY_TAG, glance.bake_tag(result["bake_id"])}
    assert image.properties[glance.STATE_PROPERTY] == "complete"
    assert image.properties["bakery_bake_id"] == result["bake_id"]
    assert result["properties"][glance.STATE_PROPERTY] == "complete"
    # The fake driver's console is not the bake's: no marker line, so the requested images are listed.
    assert "the builder's console has no marker line" in err
    assert leftovers(admin, user, result["bake_id"]) == {"servers": [], "security_groups": [],
                                                          "images": ["node-v1"]}


def _bake_process(os_env, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "OS_CLIENT_CONFIG_FILE": str(os_env.clouds_yaml)}
    return subprocess.Popen([sys.executable, "-m", "bakery", *BAKE, *extra], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _wait_for_builder(b: Builder, proc: subprocess.Popen, timeout: float = 180) -> str:
    deadline = time.monotonic() + timeout
    while not b.active:
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            out, err = proc.communicate()
            pytest.fail(f"no builder became ACTIVE (bakery exit {proc.returncode}):\n{err}")
        time.sleep(1)
    return next(iter(b.active))


def test_an_interrupted_bake_leaves_nothing(os_env, admin, user, builder):
    b = builder(power_off=False)  # the builder never finishes: bakery waits for it
    proc = _bake_process(os_env)
    bake_id = _wait_for_builder(b, proc)
    assert leftovers(admin, user, bake_id)["servers"], "the builder is there while the bake runs"
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode != 0 and "Traceback" not in err, err
    assert f"bake {bake_id} failed; deleting what it created" in err
    assert leftovers(admin, user, bake_id) == {"servers": [], "security_groups": [], "images": []}


def test_a_killed_bake_is_cleaned_up_by_its_id(os_env, admin, user, builder, capsys):
    b = builder(power_off=False)
    proc = _bake_process(os_env)
    bake_id = _wait_for_builder(b, proc)
    proc.kill()  # no chance to clean up
    proc.communicate(timeout=60)
    left = leftovers(admin, user, bake_id)
    assert left["servers"] and left["security_groups"], left
    # What else carries a bake's mark: this bake's snapshot that never finished (removed) and one that did
    # (kept: it is a usable image), and another bake's security group (kept: that bake may be running).
    half = user.image.create_image(name="half", disk_format="raw", container_format="bare",
                                   bakery_bake_id=bake_id, bakery_state="saving")
    done = user.image.create_image(name="done", disk_format="raw", container_format="bare", data=IMAGE_BYTES,
                                   bakery_bake_id=bake_id, bakery_state="complete")
    other = user.network.create_security_group(name="bakery-bake-other")
    user.network.set_tags(other, [glance.bake_tag("other")])
    code, _, err = run(capsys, ["bake", "--target", "openstack", "--os-cloud", "bakery", "--cleanup", bake_id])
    assert code == 0, err
    assert leftovers(admin, user, bake_id) == {"servers": [], "security_groups": [], "images": ["done"]}
    assert half.id not in {i.id for i in user.image.images()} and user.image.get_image(done.id).status == "active"
    assert leftovers(admin, user, "other")["security_groups"] == ["bakery-bake-other"]
    user.network.delete_security_group(other.id)


@pytest.mark.parametrize("flag, value, start", [
    ("--flavor", "m1.huge", "flavor 'm1.huge' does not exist on this cloud (available: "),
    ("--base-image", "centos", "image 'centos' does not exist on this cloud (available: "),
    ("--network", "nowhere", "network 'nowhere' does not exist on this cloud (available: "),
])
def test_a_flavor_image_or_network_not_there_fails_before_anything_is_created(os_env, admin, user, clean, capsys,
                                                                                flag, value, start):
    argv = list(BAKE)
    argv[argv.index(flag) + 1] = value
    before = project_objects(user)
    code, _, err = run(capsys, argv)
    assert code == 2, err
    assert err.strip().splitlines()[-1].startswith("bakery bake: error: " + start), err
    assert project_objects(user) == before
