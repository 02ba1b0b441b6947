"""The engine fixture itself: a real dockerd in swarm mode."""

import pytest

pytestmark = pytest.mark.engine


def test_engine_is_a_swarm_manager(engine):
    out = engine.docker("info", "--format", "{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}").stdout
    assert out.strip() == "active true"


def test_busybox_image_runs(engine, busybox_image):
    out = engine.docker("run", "--rm", busybox_image, "echo", "hi").stdout
    assert out.strip() == "hi"
