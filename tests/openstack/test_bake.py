"""`bakery bake --target openstack` against the fake cloud: what the test cloud cannot show (a console with the
bake's marker and FAILED lines, a builder that never powers off, transient and fatal snapshot states, a quota
refusal, a failure at one exact request). The bake itself, an interrupt and `--cleanup` after a kill run
against the real services: test_cloud_bake.py."""

from __future__ import annotations

import base64
import json

import pytest
from testkit.fakecloud import connect

from bakery.errors import BakeryError, CloudError, UserError
from bakery.providers.openstack import bake as ob

MARKER = {"bakery_version": "0.1.0", "docker_version": "20.10.24", "built_at": "2024-05-01T10:00:00Z",
          "images": [{"ref": "nginx:1.27", "id": "sha256:" + "a" * 64}]}
CONSOLE = "boot...\nbakery-bake-marker: " + json.dumps(MARKER) + "\nbakery-bake: done\nreboot: Power down\n"


def opts(**over):
    base = dict(bake_id="b0001", image_name="node-1", base_image="debian-12", flavor="m1.small", network="private",
                os_distro="debian", visibility="shared", build_timeout=600, image_timeout=600, poll=10,
                requested=("nginx:1.27",))
    return ob.BakeOptions(**(base | over))


def run_bake(cloud, clock, **over):
    msgs = []
    result = ob.bake(connect(), opts(**over), b"#cloud-config\n", msgs.append, clock)
    return result, msgs


def test_successful_bake_sends_exactly_these_requests(cloud, clock):
    cloud.console = CONSOLE
    result, _ = run_bake(cloud, clock)
    sg, srv, img = "secu-0001", "srv-0002", "img-0003"
    assert cloud.calls() == [
        "GET /v2.1/flavors?is_public=None",
        "GET /v2/images?name=debian-12",
        "GET /v2.0/networks?name=private",
        "POST /v2.0/security-groups",
        f"PUT /v2.0/security-groups/{sg}/tags",
        "POST /v2.1/servers",
        f"GET /v2.1/servers/{srv}", f"GET /v2.1/servers/{srv}", f"GET /v2.1/servers/{srv}",  # BUILD ACTIVE SHUTOFF
        f"POST /v2.1/servers/{srv}/action",  # console
        f"POST /v2.1/servers/{srv}/action",  # createImage
        f"GET /v2/images/{img}", f"GET /v2/images/{img}", f"GET /v2/images/{img}",  # queued saving active
        f"PATCH /v2/images/{img}",
        f"PUT /v2/images/{img}/tags/bakery",
        f"PUT /v2/images/{img}/tags/bakery.bake=b0001",
        f"DELETE /v2.1/servers/{srv}", f"GET /v2.1/servers/{srv}",  # DELETED: gone
        f"DELETE /v2.0/security-groups/{sg}",
    ]
    server = cloud.bodies("POST", "/v2.1/servers")[0]["server"]
    assert server["metadata"] == {"bakery.bake": "b0001"}
    assert server["security_groups"] == [{"name": "bakery-bake-b0001"}]
    assert server["networks"] == [{"uuid": "net-private"}]
    assert base64.b64decode(server["user_data"]) == b"#cloud-config\n"
    assert cloud.bodies("PUT", f"/v2.0/security-groups/{sg}/tags") == [{"tags": ["bakery.bake=b0001"]}]
    assert cloud.bodies("POST", f"/v2.1/servers/{srv}/action")[1] == {
        "createImage": {"name": "node-1", "metadata": {"bakery_bake_id": "b0001", "bakery_state": "saving"}}}
    image = cloud.images[img]
    assert image["status"] == "active" and image["visibility"] == "shared"
    assert image["tags"] == ["bakery", "bakery.bake=b0001"]
    assert image["bakery_state"] == "complete" and image["os_distro"] == "debian"
    assert image["bakery_docker_version"] == "20.10.24"
    assert image["bakery_image_0"] == "nginx:1.27@sha256:" + "a" * 64
    assert result.image_id == img and result.marker_found
    assert cloud.servers[srv]["_deleted"] and not cloud.neutron["security-groups"]


def test_builder_that_never_powers_off_times_out_with_console_and_cleans_up(cloud, clock):
    cloud.default_statuses = ["BUILD", "ACTIVE"]
    cloud.console = "cloud-init: running modules\napt-get: waiting for lock\n"
    with pytest.raises(BakeryError) as err:
        run_bake(cloud, clock, build_timeout=60)
    message = str(err.value)
    assert "did not power off within 60s" in message and "apt-get: waiting for lock" in message
    assert clock.fake.t >= 60
    assert all(s.get("_deleted") for s in cloud.servers.values())
    assert not cloud.neutron["security-groups"]
    assert list(cloud.images) == ["img-debian"]


def test_failed_line_on_console_fails_early(cloud, clock):
    cloud.default_statuses = ["ACTIVE"]
    cloud.console = "bakery-bake: FAILED (exit 1); see /var/log/cloud-init-output.log\n"
    with pytest.raises(BakeryError, match="the bake failed on builder bakery-bake-b0001"):
        run_bake(cloud, clock, build_timeout=3600)
    assert clock.fake.t < 3600
    assert all(s.get("_deleted") for s in cloud.servers.values()) and not cloud.neutron["security-groups"]


def test_image_stuck_saving_with_transient_errors_then_active(cloud, clock):
    cloud.console = CONSOLE
    cloud.image_statuses = ["queued", "saving", 404, 500, "saving", 502, "saving", "active"]
    msgs = []
    result = ob.bake(connect(), opts(), b"x", msgs.append, clock)
    assert cloud.images[result.image_id]["status"] == "active"
    assert sum("transient HTTP" in m for m in msgs) == 3
    assert cloud.calls().count(f"GET /v2/images/{result.image_id}") == 8


def test_image_killed_while_saving_deletes_everything(cloud, clock):
    cloud.console = CONSOLE
    cloud.image_statuses = ["queued", "saving", "killed"]
    with pytest.raises(CloudError, match="became killed while saving"):
        run_bake(cloud, clock)
    assert list(cloud.images) == ["img-debian"]
    assert all(s.get("_deleted") for s in cloud.servers.values()) and not cloud.neutron["security-groups"]


def test_failure_half_way_leaves_nothing(cloud, clock):
    cloud.console = CONSOLE
    cloud.fail("PATCH", r"/v2/images/.*", 500, "Internal Server Error")
    with pytest.raises(CloudError, match="setting properties of image"):
        run_bake(cloud, clock)
    assert list(cloud.images) == ["img-debian"]
    assert all(s.get("_deleted") for s in cloud.servers.values())
    assert not cloud.neutron["security-groups"]
    deletes = [c for c in cloud.calls() if c.startswith("DELETE")]
    assert deletes == ["DELETE /v2/images/img-0003", "DELETE /v2.1/servers/srv-0002",
                       "DELETE /v2.0/security-groups/secu-0001"]


def test_quota_error_is_one_clear_message(cloud, clock):
    cloud.fail("POST", "/v2.1/servers", 403,
               "Quota exceeded for instances: Requested 1, but already used 10 of 10 instances")
    with pytest.raises(CloudError) as err:
        run_bake(cloud, clock)
    text = str(err.value)
    assert text.startswith("booting builder bakery-bake-b0001: quota exceeded: Quota exceeded for instances")
    assert "openstack quota show" in text and "\n" not in text
    assert not cloud.neutron["security-groups"]


def test_dry_run_plan_touches_nothing(cloud, capsys):
    import argparse

    p = argparse.ArgumentParser()
    ob.add_arguments(p)
    args = p.parse_args(["--base-image", "debian-12", "--flavor", "m1.small", "--network", "private",
                         "--pull", "nginx:1.27", "--dry-run"])
    assert ob.run(args) == 0
    out = capsys.readouterr().out
    assert "boot server bakery-bake-" in out and "wait up to 3600s for it to power off" in out
    assert cloud.m.request_history == []


def test_missing_flags_are_a_usage_error():
    import argparse

    p = argparse.ArgumentParser()
    ob.add_arguments(p)
    with pytest.raises(UserError, match="needs --base-image, --network"):
        ob.run(p.parse_args(["--flavor", "x"]))
