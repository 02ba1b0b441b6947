import copy

import pytest

from bakery.compose import convert_files
from bakery.errors import UserError
from bakery.stack import load
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
            "depends_on": {"api": {"condition": "service_healthy"}},
            "deploy": {"replicas": 2, "placement": {"constraints": ["node.role==worker"]}},
        },
        "api": {"image": "api:1", "command": "serve --port 8000"},
    },
    "networks": {"front": {"attachable": True}},
    "secrets": {"token": {"file": "token.txt"}},
}


@pytest.fixture
def stack_dir(tmp_path):
    (tmp_path / "token.txt").write_text("s3cret-value")
    return tmp_path


def specs(data, stack_dir):
    out = build("st", load(data, source="stack.yml"), base_dir=stack_dir, environ={})
    return {(d.kind, d.key): d for d in out.objects}, out, None


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


def test_update_config_from_the_file(stack_dir):
    data = copy.deepcopy(STACK)
    data["services"]["web"]["deploy"]["update_config"] = {"order": "start-first", "failure_action": "rollback",
                                                          "delay": "1m30s"}
    objs, _, _ = specs(data, stack_dir)
    update = objs[("service", "web")].spec["UpdateConfig"]
    assert (update["Order"], update["FailureAction"], update["Delay"]) == ("start-first", "rollback", 90 * 10**9)


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


def test_dependencies_with_conditions(stack_dir):
    _, out, _ = specs(STACK, stack_dir)
    runs = {r.key: r for r in out.runs}
    assert runs["web"].depends_on == (("api", "service_healthy"),)
    assert runs["web"].expected_tasks == 2 and runs["api"].expected_tasks == 1


@pytest.mark.parametrize(
    ("mutate", "path", "message"),
    [
        (lambda d: d["services"]["api"].update(depends_on=["web"]), ("services",), "depends_on cycle"),
        (lambda d: d["services"]["api"].update(depends_on=["nope"]), ("services", "api", "depends_on"),
         "unknown service"),
        (lambda d: d["services"]["api"].update(volumes=["logs:/logs"]), ("services", "api", "volumes", 0),
         "not declared"),
        (lambda d: d["services"]["api"].update(ports=["http"]), ("services", "api", "ports", 0), "not a port"),
        (lambda d: d["services"]["api"].update(ports=["99999:80"]), ("services", "api", "ports", 0),
         "not a port number"),
        (lambda d: d["services"]["api"].update(ports=["80:80", "80:81"]), ("services", "api", "ports"),
         "published twice"),
        (lambda d: d["services"]["api"].pop("image"), ("services", "api", "image"), "needs an image"),
        (lambda d: d["services"]["api"].update(stop_grace_period="soon"), ("services", "api", "stop_grace_period"),
         "not a duration"),
        (lambda d: d["services"]["api"].update(networks=["back"]), ("services", "api", "networks"), "not declared"),
        (lambda d: d["services"]["api"].update(deploy={"placement": "x"}), ("services", "api", "deploy", "placement"),
         "must be a mapping"),
        (lambda d: d["services"]["api"].update(deploy={"replicas": float("inf")}),
         ("services", "api", "deploy", "replicas"), "not a valid replica count"),
        (lambda d: d["services"]["api"].update(deploy={"mode": ["global"]}), ("services", "api", "deploy", "mode"),
         "is not one of"),
        (lambda d: d["services"]["api"].update(deploy={"resources": {"limits": {"memory": "12x"}}}),
         ("services", "api", "deploy", "resources", "limits", "memory"), "not a size"),
        (lambda d: d["services"]["api"].update(volumes=[":/etc/x"]), ("services", "api", "volumes", 0),
         "empty source"),
    ],
)
def test_errors_name_the_yaml_path(stack_dir, mutate, path, message):
    data = copy.deepcopy(STACK)
    mutate(data)
    with pytest.raises(UserError, match=message) as err:
        build("st", load(data, source="stack.yml"), base_dir=stack_dir, environ={})
    assert err.value.path[: len(path)] == path
    assert err.value.source == "stack.yml"


def test_sizes_take_docker_units(stack_dir):
    data = copy.deepcopy(STACK)
    data["services"]["api"]["deploy"] = {"resources": {"limits": {"memory": "64MiB", "cpus": "0.5"}}}
    objs, _, _ = specs(data, stack_dir)
    limits = objs[("service", "api")].spec["TaskTemplate"]["Resources"]["Limits"]
    assert limits == {"MemoryBytes": 64 << 20, "NanoCPUs": 5 * 10**8}


def test_bad_stack_name():
    with pytest.raises(UserError, match="stack name"):
        build("-bad name", load(STACK))


def test_a_deploy_time_error_names_the_file_and_line_of_the_value(tmp_path):
    """A secret that an override file adds and nothing declares: the error points into the override,
    at the entry itself (the specs are built long after the files were read)."""
    (tmp_path / "base.yml").write_text('version: "3.7"\nservices:\n  web:\n    image: nginx:1\n'
                                       "secrets:\n  real:\n    file: ./real.txt\n")
    (tmp_path / "override.yml").write_text('version: "3.7"\nservices:\n  web:\n    secrets:\n'
                                           "      - real\n      - nope\n")
    (tmp_path / "real.txt").write_text("x\n")
    model = convert_files([tmp_path / "base.yml", tmp_path / "override.yml"], environ={}).model
    with pytest.raises(UserError, match="secret 'nope' is not declared") as err:
        build("st", model, base_dir=tmp_path, environ={})
    assert (err.value.source, err.value.line, err.value.column) == (str(tmp_path / "override.yml"), 6, 9)
    assert err.value.path == ("services", "web", "secrets", 1)
