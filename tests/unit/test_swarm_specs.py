import copy

import pytest

from bakery.errors import UserError
from bakery.swarm.model import HASH_LABEL, NAMESPACE_LABEL
from bakery.swarm.specs import build

STACK = {
    "version": "3.8",
    "services": {
        "web": {
            "image": "nginx:1",
            "ports": ["80:80"],
            "environment": {"B": "2", "A": "1"},
            "networks": {"front": {"aliases": ["www"]}},
            "secrets": ["token"],
            "depends_on": ["api"],
            "deploy": {"replicas": 2, "placement": {"constraints": ["node.role==worker"]}},
        },
        "api": {"image": "api:1", "command": "serve --port 8000", "container_name": "ignored"},
    },
    "networks": {"front": {"attachable": True}},
    "secrets": {"token": {"file": "token.txt"}},
    "x-bakery": {"depends_on": {"web": {"api": "service_healthy"}}},
}


@pytest.fixture
def stack_dir(tmp_path):
    (tmp_path / "token.txt").write_text("s3cret-value")
    return tmp_path


def specs(data, stack_dir, **kw):
    out, report = build("st", data, base_dir=stack_dir, environ={}, **kw)
    return {(d.kind, d.key): d for d in out.objects}, out, report


def test_names_labels_and_references(stack_dir):
    objs, out, report = specs(STACK, stack_dir)
    web = objs[("service", "web")].spec
    assert web["Name"] == "st_web"
    assert web["Labels"][NAMESPACE_LABEL] == "st"
    assert web["TaskTemplate"]["ContainerSpec"]["Labels"] == {NAMESPACE_LABEL: "st"}
    assert web["TaskTemplate"]["ContainerSpec"]["Env"] == ["A=1", "B=2"]
    assert web["TaskTemplate"]["Networks"] == [{"Target": "st_front", "Aliases": ["web", "www"]}]
    assert web["Mode"] == {"Replicated": {"Replicas": 2}}
    # api lists no networks, so it joins the stack's default network, which is created.
    assert objs[("service", "api")].spec["TaskTemplate"]["Networks"][0]["Target"] == "st_default"
    assert ("network", "default") in objs
    assert objs[("service", "api")].spec["TaskTemplate"]["ContainerSpec"]["Args"] == ["serve", "--port", "8000"]
    secret = objs[("secret", "token")]
    assert secret.name.startswith("st_token_") and secret.data == b"s3cret-value"
    assert "s3cret" not in repr(secret) and "s3cret" not in str(secret.spec)
    ref = web["TaskTemplate"]["ContainerSpec"]["Secrets"][0]
    assert ref == {"File": {"Name": "token", "UID": "0", "GID": "0", "Mode": 0o444}, "SecretName": secret.name}
    assert [f.path for f in report.warnings] == [("services", "api", "container_name")]


def test_explicit_defaults_avoid_the_docker_py_traps(stack_dir):
    objs, _, _ = specs(STACK, stack_dir)
    web = objs[("service", "web")].spec
    assert web["TaskTemplate"]["RestartPolicy"] == {
        "Condition": "any",
        "Delay": 5 * 10**9,
        "MaxAttempts": 0,
        "Window": 0,
    }
    assert web["UpdateConfig"]["Parallelism"] == 1
    assert (web["UpdateConfig"]["Order"], web["UpdateConfig"]["FailureAction"]) == ("stop-first", "pause")


@pytest.mark.parametrize(
    ("ports", "order"), [(["80:80"], "start-first"), ([{"target": 80, "published": 80, "mode": "host"}], "stop-first")]
)
def test_v2_update_defaults(stack_dir, ports, order):
    data = copy.deepcopy(STACK)
    data["services"]["web"]["ports"] = ports
    objs, _, _ = specs(data, stack_dir, update_defaults=True)
    update = objs[("service", "web")].spec["UpdateConfig"]
    assert (update["Order"], update["FailureAction"], update["Parallelism"]) == (order, "rollback", 1)


def test_deterministic_and_hash_follows_content(stack_dir):
    a, _, _ = specs(STACK, stack_dir)
    b, _, _ = specs(copy.deepcopy(STACK), stack_dir)
    assert a[("service", "web")].spec == b[("service", "web")].spec
    changed = copy.deepcopy(STACK)
    changed["services"]["web"]["environment"]["A"] = "9"
    c, _, _ = specs(changed, stack_dir)
    assert c[("service", "web")].spec["Labels"][HASH_LABEL] != a[("service", "web")].spec["Labels"][HASH_LABEL]
    assert c[("service", "api")].spec == a[("service", "api")].spec


def test_secret_content_changes_its_name(stack_dir):
    a, _, _ = specs(STACK, stack_dir)
    (stack_dir / "token.txt").write_text("rotated")
    b, _, _ = specs(STACK, stack_dir)
    assert a[("secret", "token")].name != b[("secret", "token")].name


def test_dependencies_with_x_bakery_conditions(stack_dir):
    _, out, _ = specs(STACK, stack_dir)
    runs = {r.key: r for r in out.runs}
    assert runs["web"].depends_on == (("api", "service_healthy"),)
    assert runs["web"].expected_tasks == 2 and runs["api"].expected_tasks == 1


@pytest.mark.parametrize(
    ("mutate", "path", "message"),
    [
        (lambda d: d["services"]["api"].update(depends_on=["web"]), ("services",), "dependency cycle"),
        (
            lambda d: d["services"]["api"].update(depends_on=["nope"]),
            ("services", "api", "depends_on"),
            "not a service",
        ),
        (
            lambda d: d["services"]["api"].update(volumes=["logs:/logs"]),
            ("services", "api", "volumes", 0),
            "not declared",
        ),
        (lambda d: d["services"]["api"].update(ports=["http"]), ("services", "api", "ports", 0), "not a port"),
        (lambda d: d["services"]["api"].pop("image"), ("services", "api", "image"), "needs an image"),
        (lambda d: d["services"]["api"].update(stop_grace_period="soon"), ("services", "api"), "not a duration"),
        (lambda d: d["services"]["api"].update(networks=["back"]), ("networks", "back"), "not declared"),
    ],
)
def test_errors_name_the_yaml_path(stack_dir, mutate, path, message):
    data = copy.deepcopy(STACK)
    mutate(data)
    with pytest.raises(UserError, match=message) as err:
        build("st", data, base_dir=stack_dir, environ={}, source="stack.yml", locate=lambda p: (3, 5))
    assert err.value.path[: len(path)] == path
    assert str(err.value).startswith("stack.yml:3:5 ")


def test_bad_stack_name():
    with pytest.raises(UserError, match="stack name"):
        build("-bad name", STACK)
