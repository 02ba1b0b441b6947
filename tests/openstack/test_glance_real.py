"""bakery's Glance code against a real Glance on loopback (sqlite, file store, no Keystone), through openstacksdk."""

from __future__ import annotations

import pytest
from testkit.glance_server import qcow2

from bakery.errors import CloudError
from bakery.providers.openstack import glance

pytestmark = pytest.mark.glance


@pytest.fixture
def conn(glance_endpoint):
    import openstack

    c = openstack.connect(load_yaml_config=False, load_envvars=False, auth_type="none",
                          image_endpoint_override=glance_endpoint)
    yield c
    for image in list(c.image.images()):  # each test starts from an empty Glance
        c.image.delete_image(image.id, ignore_missing=True)


def test_upload_with_properties_and_tags(conn, tmp_path):
    marker = {"bakery_version": "0.1.0", "docker_version": "20.10.24", "built_at": "2024-05-01T10:00:00Z",
              "images": [{"ref": "nginx:1.27", "id": "sha256:" + "b" * 64}]}
    props = glance.image_properties("b42", marker, "debian")
    image_id = glance.upload(conn, qcow2(tmp_path), "node-b42", "qcow2", props, ("bakery", glance.bake_tag("b42")))
    image = conn.image.get_image(image_id)
    assert image.status == "active" and image.disk_format == "qcow2" and image.size == 512
    assert sorted(image.tags) == ["bakery", "bakery.bake=b42"]
    assert image.properties["bakery_docker_version"] == "20.10.24"
    assert image.properties["bakery_image_0"] == "nginx:1.27@sha256:" + "b" * 64
    assert image.os_distro == "debian"


def test_set_properties_through_the_id_and_visibility(conn, tmp_path):
    image_id = glance.upload(conn, qcow2(tmp_path), "n", "qcow2", {"bakery_bake_id": "b1"}, ())
    glance.set_properties(conn, image_id, {"bakery_state": "complete", "bakery_bake_id": "b1"}, "shared")
    glance.add_tags(conn, image_id, ("bakery",))
    image = conn.image.get_image(image_id)
    assert image.visibility == "shared" and image.tags == ["bakery"]
    assert image.properties["bakery_state"] == "complete"


def test_lookup_by_tag_and_property_is_exact(conn, tmp_path):
    data = qcow2(tmp_path)
    a = glance.upload(conn, data, "a", "qcow2", {"bakery_bake_id": "one", "bakery_state": "complete"}, ("bakery",))
    b = glance.upload(conn, data, "b", "qcow2", {"bakery_bake_id": "two"}, ("bakery", "other"))
    c = glance.upload(conn, data, "c", "qcow2", {"bakery_bake_id": "one"}, ())
    assert sorted(i.id for i in glance.find(conn, "bakery")) == sorted([a, b])
    assert sorted(i.id for i in glance.find(conn, None, bakery_bake_id="one")) == sorted([a, c])
    assert [i.id for i in glance.find(conn, "bakery", bakery_bake_id="one", bakery_state="complete")] == [a]
    assert glance.find(conn, "nope") == [] and glance.find(conn, None, bakery_bake_id="three") == []


def test_upload_refused_leaves_no_record(conn, tmp_path):
    junk = tmp_path / "junk.qcow2"
    junk.write_bytes(b"not a qcow2 image at all" * 40)
    with pytest.raises(CloudError, match="HTTP 4"):
        glance.upload(conn, junk, "junk", "qcow2", {}, ("bakery",))
    assert list(conn.image.images()) == []


def test_cleanup_deletes_and_tolerates_gone(conn, tmp_path):
    image_id = glance.upload(conn, qcow2(tmp_path), "gone", "qcow2", {}, ())
    assert glance.delete(conn, image_id) is True
    assert glance.delete(conn, image_id) is False
    assert list(conn.image.images()) == []


def test_cleanup_by_bake_id_keeps_complete_images(conn, tmp_path):
    """`bakery bake --cleanup` Glance side: unfinished images of that bake go, a finished one stays."""
    from bakery.providers.openstack.bake import cleanup

    class NoNova:  # the Glance part only: no servers or security groups exist in this test
        def __init__(self, real):
            self.image = real.image
            self.compute = type("C", (), {"servers": staticmethod(lambda details=True: [])})()
            self.network = type("N", (), {"security_groups": staticmethod(lambda tags=None: [])})()

    data = qcow2(tmp_path)
    done = glance.upload(conn, data, "done", "qcow2", {"bakery_bake_id": "x1", "bakery_state": "complete"}, ())
    glance.upload(conn, data, "half", "qcow2", {"bakery_bake_id": "x1", "bakery_state": "saving"}, ())
    other = glance.upload(conn, data, "other", "qcow2", {"bakery_bake_id": "x2", "bakery_state": "saving"}, ())
    assert cleanup(NoNova(conn), "x1", lambda m: None) == []
    assert sorted(i.id for i in conn.image.images()) == sorted([done, other])
