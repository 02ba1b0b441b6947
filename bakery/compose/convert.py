"""A loaded compose project into a swarm-mode v3 stack and its report."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..report import Report
from . import emit, network
from .model import NodeInfo, Project
from .service import convert_service


def escape_dollars(value: Any) -> Any:
    """`docker stack deploy` interpolates the stack file again: a literal $ must be $$."""
    if isinstance(value, str):
        return value.replace("$", "$$")
    if isinstance(value, dict):
        return {k: escape_dollars(v) for k, v in value.items()}
    if isinstance(value, list):
        return [escape_dollars(v) for v in value]
    return value


def _check_cycles(project: Project, depends: dict[str, dict[str, str]]) -> None:
    """docker-compose refuses circular depends_on; so does `bakery deploy`, so refuse it here first."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(name: str, path: list[str]) -> None:
        state[name] = 1
        for dep in depends.get(name, {}):
            if state.get(dep) == 1:
                cycle = " -> ".join([*path[path.index(dep):], dep]) if dep in path else f"{name} -> {dep}"
                raise project.services[name].at("depends_on").error(
                    f"depends_on cycle: {cycle}", "remove one of these depends_on entries")
            if dep not in state:
                visit(dep, [*path, dep])
        state[name] = 2

    for name in sorted(depends):
        if name not in state:
            visit(name, [name])


def _version_key(v: str) -> tuple[int, int]:
    major, _, minor = v.partition(".")
    return int(major), int(minor or 0)


def convert_project(project: Project, report: Report, *, nodes: Sequence[NodeInfo] | None = None,
                    image_prefix: str | None = None, publish_mode: str = "ingress") -> tuple[dict[str, Any], str]:
    """Return the v3 stack (plain data, ordered as emitted) and the version chosen."""
    needs: set[str] = {"3.0"}
    services: dict[str, Any] = {}
    depends: dict[str, dict[str, str]] = {}
    extra_networks: set[str] = set()
    extra_volumes: set[str] = set()
    for name in sorted(project.services):
        out, ctx = convert_service(project.services[name], project, report, nodes, image_prefix,
                                   publish_mode)
        services[name] = out
        needs |= ctx.needs
        extra_networks |= ctx.extra_networks
        extra_volumes |= ctx.extra_volumes
        if ctx.depends:
            depends[name] = dict(sorted(ctx.depends.items()))
    stack: dict[str, Any] = {"services": services}
    nets = network.top_networks(project, extra_networks, report, needs)
    if nets:
        stack["networks"] = nets
    vols = network.top_volumes(project, extra_volumes, report, needs)
    if vols:
        stack["volumes"] = vols
    for key, version in (("secrets", "3.1"), ("configs", "3.3")):
        if key in project.extras:
            stack[key] = project.extras[key]
            needs.add(version)
    _check_cycles(project, depends)
    if depends:
        # Ordering for `bakery deploy`; top-level x- keys need 3.4.
        stack["x-bakery"] = {"depends_on": depends}
        needs.add("3.4")
    version = max(needs, key=_version_key)
    stack = {k: escape_dollars(v) if k != "x-bakery" else v for k, v in stack.items()}
    stack["version"] = version
    return emit.ordered(stack), version
