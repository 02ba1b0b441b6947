"""What `bakery convert` writes, `docker stack deploy` deploys as `bakery deploy` does.

For every golden convert case: the converted stack file is deployed once with `docker stack deploy
-c stack.yml` (the Docker CLI, the reference) and once with `bakery deploy stack.yml`, one after the
other on the test engine, and each service's live spec is compared: container (image, command,
environment, mounts, user, hostname, ...), placement, resources, restart, update and rollback
config, healthcheck, networks and their aliases, endpoint and ports. Set aside: the stack name in
object names, bakery's own labels (spec and content hashes), the image digest the CLI may pin, and
object IDs (networks, secrets and configs are compared by name).
"""

from __future__ import annotations

import copy
import json
import shutil
import time
from pathlib import Path
from typing import Any

import docker.errors
import pytest
from testkit.deploy import CASES

from bakery.compose import convert_files, dumps
from bakery.compose.nodes import load_nodes

pytestmark = pytest.mark.engine

_NAMES = sorted(p.name for p in CASES.parent.joinpath("convert").iterdir()
                if (p / "stack.yml").exists() and not (p / "error.txt").exists())
_OWN_LABELS = ("com.docker.stack.", "com.bakery.")


def _convert(case: Path) -> Path:
    args = json.loads((case / "args.json").read_text()) if (case / "args.json").exists() else {}
    result = convert_files([case / f for f in args.get("files", ["docker-compose.yml"])], environ=args.get("env", {}),
                           nodes=load_nodes(case / args["nodes"]) if "nodes" in args else None,
                           image_prefix=args.get("image_prefix"), publish_mode=args.get("publish_mode", "ingress"),
                           profiles=args.get("profiles"), env_files=[case / e for e in args.get("env_files", [])])
    out = case / "converted.yml"  # beside the input: relative paths name the same folder
    out.write_text(dumps(result.stack))
    return out


def _labels(labels: dict[str, str] | None) -> dict[str, str]:
    return {k: v for k, v in (labels or {}).items() if not k.startswith(_OWN_LABELS)}


def _object_name(name: str, stack: str) -> str:
    return name.removeprefix(f"{stack}_")


def _normal(engine: Any, service: dict[str, Any], stack: str) -> dict[str, Any]:
    """The service's live spec with what may differ between two deployers set aside."""
    api = engine.client().api
    spec = copy.deepcopy(service["Spec"])
    spec["Name"] = _object_name(spec["Name"], stack)
    spec["Labels"] = _labels(spec.get("Labels"))
    task = spec["TaskTemplate"]
    task.pop("ForceUpdate", None)
    container = task["ContainerSpec"]
    container["Labels"] = _labels(container.get("Labels"))
    for mount in container.get("Mounts") or []:
        _volume_driver(mount)
        if mount["Type"] == "volume" and mount.get("Source"):
            mount["Source"] = _object_name(mount["Source"], stack)
        options = mount.get("VolumeOptions") or {}
        if "Labels" in options:
            options["Labels"] = _labels(options["Labels"])
            if not options["Labels"]:
                del options["Labels"]
    for kind in ("Secrets", "Configs"):
        for ref in container.get(kind) or []:
            ref.pop(f"{kind[:-1]}ID", None)
            ref[f"{kind[:-1]}Name"] = _object_name(ref[f"{kind[:-1]}Name"], stack)
    nets = []
    for net in task.get("Networks") or []:
        name = api.inspect_network(net["Target"])["Name"]
        nets.append({**net, "Target": _object_name(name, stack), "Aliases": sorted(net.get("Aliases") or [])})
    task["Networks"] = sorted(nets, key=lambda n: n["Target"])
    spec.pop("Networks", None)
    for key in ("Env", "Mounts", "Secrets", "Configs", "Hosts", "CapabilityAdd", "CapabilityDrop"):
        if isinstance(container.get(key), list):
            container[key] = sorted(container[key], key=json.dumps)
    ports = (spec.get("EndpointSpec") or {}).get("Ports")
    if ports:
        spec["EndpointSpec"]["Ports"] = sorted(ports, key=json.dumps)
    constraints = (task.get("Placement") or {}).get("Constraints")
    if constraints:
        task["Placement"]["Constraints"] = sorted(constraints)
    return spec


# What swarm does when a field is unset (swarmkit's defaults): an unset field and its default are one.
_ENGINE_DEFAULTS = {
    ("TaskTemplate", "RestartPolicy"): {"Condition": "any", "Delay": 5 * 10**9, "MaxAttempts": 0, "Window": 0},
    ("UpdateConfig",): {"Parallelism": 1, "Delay": 0, "FailureAction": "pause", "Monitor": 5 * 10**9,
                        "MaxFailureRatio": 0, "Order": "stop-first"},
    ("RollbackConfig",): {"Parallelism": 1, "Delay": 0, "FailureAction": "pause", "Monitor": 5 * 10**9,
                          "MaxFailureRatio": 0, "Order": "stop-first"},
}


def _pruned(value: Any) -> Any:
    """Without None, empty mappings and empty lists (the CLI sends some empty, bakery omits them)."""
    if isinstance(value, dict):
        out = {k: _pruned(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if v not in (None, {}, [])}
    if isinstance(value, list):
        return [_pruned(v) for v in value]
    return value


def _image(ref: str) -> str:
    """`x` is `x:latest` and `docker.io/x` is `x` (the CLI writes the familiar form with its tag); a
    digest is set aside."""
    ref = ref.split("@", 1)[0].removeprefix("docker.io/").removeprefix("library/")
    return ref if ":" in ref.rsplit("/", 1)[-1] else f"{ref}:latest"


def _volume_driver(mount: dict[str, Any]) -> None:
    """A volume's driver `local` named or left out is one driver."""
    config = (mount.get("VolumeOptions") or {}).get("DriverConfig") or {}
    if config.get("Name") == "local":
        del config["Name"]


def _services(engine: Any, stack: str) -> dict[str, dict[str, Any]]:
    found = engine.client().api.services(filters={"label": f"com.docker.stack.namespace={stack}"})
    out = {}
    for service in found:
        spec = _normal(engine, service, stack)
        for path, defaults in _ENGINE_DEFAULTS.items():
            holder = spec
            for key in path[:-1]:
                holder = holder.setdefault(key, {})
            holder[path[-1]] = {**defaults, **{k: v for k, v in (holder.get(path[-1]) or {}).items() if v is not None}}
        spec["TaskTemplate"]["ContainerSpec"]["Image"] = _image(spec["TaskTemplate"]["ContainerSpec"]["Image"])
        out[spec["Name"]] = _pruned(spec)
    return out


def _remove(engine: Any, stack: str) -> None:
    """`docker stack rm`, then wait until its services and networks are gone (the next deploy reuses
    subnets). The CLI removes a network once, right after the services: while a task's container still
    holds an endpoint that removal fails and is never retried, so the leftovers are removed here."""
    engine.docker("stack", "rm", stack, check=False)
    api = engine.client().api
    label = {"label": f"com.docker.stack.namespace={stack}"}
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        services, left = api.services(filters=label), api.networks(filters=label)
        if not services and not left:
            return
        if not services:
            for network in left:
                try:
                    api.remove_network(network["Id"])
                except docker.errors.APIError:
                    pass  # still has an endpoint: tried again next round
        time.sleep(0.5)
    raise AssertionError(f"stack {stack} still has {len(services)} services and {len(left)} networks after 120 s")


def _differences(a: Any, b: Any, path: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for key in sorted(set(a) | set(b)):
            out += _differences(a.get(key), b.get(key), f"{path}.{key}")
        return out
    return [] if a == b else [f"{path}: docker stack deploy {a!r}, bakery deploy {b!r}"]


def _on_this_engine(case: Path, name: str, engine: Any) -> None:
    """Cases whose hints name nodes the test swarm lacks (bakery refuses a constraint no live node
    meets; docker's tasks would pend) name its one node instead."""
    node = engine.client().api.nodes()[0]["Description"]
    host, arch = node["Hostname"], {"x86_64": "amd64", "aarch64": "arm64"}.get(node["Platform"]["Architecture"])
    # disk is an engine label (dockerd --label) the test engine has none of: `!=` admits it.
    swaps = {"hint-glob-with-nodes": [("web", host), ("disk==", "disk!=")], "hint-glob-without-nodes": [("web", host)],
             "hint-labels": [("api1", host)], "hint-node-pin": [("pocket", host)],
             "hint-pattern-not-equal": [("web1", host)], "tmpfs-and-network-mode": [("arm64/v8", str(arch))]}
    for old, new in swaps.get(name, []):
        for f in case.iterdir():
            if f.suffix in (".yml", ".yaml"):
                f.write_text(f.read_text().replace(old, new))
    return {}


def _node_labels(engine: Any) -> dict[str, str]:
    return dict(engine.client().api.nodes()[0]["Spec"].get("Labels") or {})


def _hint_labels_off(engine: Any, before: dict[str, str]) -> None:
    """Take off the node labels this case's hints added (`docker stack rm` leaves them)."""
    api = engine.client().api
    node = api.nodes()[0]
    spec = node["Spec"]
    labels = {k: v for k, v in (spec.get("Labels") or {}).items() if k in before}
    if labels != (spec.get("Labels") or {}):
        api.update_node(node["ID"], node["Version"]["Index"], {**spec, "Labels": labels})


@pytest.mark.parametrize("name", _NAMES)
def test_docker_stack_deploy_and_bakery_deploy_give_the_same_services(engine, deployer, tmp_path, name):
    case = tmp_path / name
    shutil.copytree(CASES.parent / "convert" / name, case)
    _on_this_engine(case, name, engine)
    stack_file = _convert(case)
    ref, ours = f"ref{_NAMES.index(name)}", f"our{_NAMES.index(name)}"
    before = _node_labels(engine)
    try:
        engine.docker("stack", "deploy", "--detach=true", "--resolve-image", "never", "-c", str(stack_file), ref)
        theirs = _services(engine, ref)
    finally:
        _remove(engine, ref)
    try:
        code, out = deployer(str(stack_file), "--name", ours, "--detach")
        assert code == 0, out
        mine = _services(engine, ours)
    finally:
        _remove(engine, ours)
        _hint_labels_off(engine, before)
    assert set(mine) == set(theirs)
    diffs = [f"{svc}{d}" for svc in sorted(theirs) for d in _differences(theirs[svc], mine[svc])]
    assert not diffs, "\n".join(diffs)
