"""The only module that talks to the Engine API (through docker-py's low-level client).

Services are created and updated with the full spec posted as-is: docker-py's
`update_service` helpers merge with the current spec and cannot clear a field.
Every call's failure becomes an EngineError naming the object, never a traceback.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from ..errors import EngineError
from .model import NAMESPACE_LABEL, Kind, Spec

T = TypeVar("T")
OUT_OF_SEQUENCE = "update out of sequence"


def _explain(exc: Exception) -> str:
    text = getattr(exc, "explanation", None) or str(exc)
    return str(text).strip()


def call(what: str, fn: Callable[[], T]) -> T:
    """Run one API call; an engine refusal becomes `EngineError("<what>: <engine's reason>")`."""
    import docker.errors
    import requests

    try:
        return fn()
    except docker.errors.APIError as exc:
        raise EngineError(f"{what}: {_explain(exc)}") from None
    except (requests.exceptions.RequestException, docker.errors.DockerException) as exc:
        raise EngineError(f"{what}: {_explain(exc)}") from None


class Engine:
    def __init__(self, api: Any) -> None:
        self.api = api  # docker.APIClient

    def _post(self, path: str, body: Mapping[str, Any], **params: Any) -> Any:
        response = self.api._post_json(self.api._url(path), data=body, params=params or None)
        return self.api._result(response, True)

    # -- reading -------------------------------------------------------------
    def stack_objects(self, stack: str) -> dict[Kind, list[dict[str, Any]]]:
        label = {"label": f"{NAMESPACE_LABEL}={stack}"}
        api = self.api
        return {
            "service": call("list services", lambda: api.services(filters=label)),
            "network": call("list networks", lambda: api.networks()),
            "volume": call("list volumes", lambda: api.volumes(filters=label).get("Volumes") or []),
            "secret": call("list secrets", lambda: api.secrets()),
            "config": call("list configs", lambda: api.configs()),
        }

    def nodes(self) -> list[dict[str, Any]]:
        return call("list nodes", lambda: self.api.nodes())

    def all_services(self) -> list[dict[str, Any]]:
        """Every service of the swarm, of any stack or none (whose constraints may name a hint label)."""
        return call("list services", lambda: self.api.services())

    def services(self, stack: str) -> list[dict[str, Any]]:
        return call("list services", lambda: self.api.services(filters={"label": f"{NAMESPACE_LABEL}={stack}"}))

    def tasks(self, service_ids: list[str], *, up_to_date: bool = False) -> list[dict[str, Any]]:
        """Tasks of these services; `up_to_date` keeps those matching the current spec."""
        if not service_ids:
            return []
        filters: dict[str, Any] = {"service": service_ids}
        if up_to_date:
            filters["_up-to-date"] = "true"
        return call("list tasks", lambda: self.api.tasks(filters=filters))

    def inspect_service(self, ident: str) -> dict[str, Any]:
        return call(f"inspect service {ident}", lambda: self.api.inspect_service(ident))

    # -- writing -------------------------------------------------------------
    def create(self, kind: Kind, spec: Spec, data: bytes | None = None) -> str:
        name = spec["Name"]
        if kind == "volume":
            body = call(f"create volume {name}", lambda: self._post("/volumes/create", spec))
            return str(body["Name"])
        if kind in ("secret", "config"):
            full = {**spec, "Data": base64.b64encode(data or b"").decode()}
            body = call(f"create {kind} {name}", lambda: self._post(f"/{kind}s/create", full))
        elif kind == "network":
            body = call(f"create network {name}", lambda: self._post("/networks/create", spec))
        else:
            body = call(f"create service {name}", lambda: self._post("/services/create", spec))
        return str(body.get("ID") or body.get("Id"))

    def update_service(self, ident: str, version: int | None, spec: Spec, attempts: int = 5) -> None:
        """Post the full spec; on `update out of sequence` re-read the version and retry."""
        for attempt in range(attempts):
            if version is None:
                version = int(self.inspect_service(ident)["Version"]["Index"])
            try:
                self._update(ident, version, spec)
                return
            except EngineError as exc:
                if OUT_OF_SEQUENCE not in str(exc) or attempt == attempts - 1:
                    raise
                version = None
                time.sleep(0.1 * (attempt + 1))

    def label_node(self, ident: str, name: str, labels: Mapping[str, str | None], attempts: int = 5) -> None:
        """Set (a value) or remove (None) these labels of a node; its other labels and settings are
        re-read and posted back as they are. `update out of sequence`: read again and retry."""
        for attempt in range(attempts):
            node = call(f"inspect node {name}", lambda: self.api.inspect_node(ident))
            spec = dict(node["Spec"])
            current = {k: v for k, v in (spec.get("Labels") or {}).items() if labels.get(k, v) is not None}
            spec["Labels"] = {**current, **{k: v for k, v in labels.items() if v is not None}}
            try:
                self._update_node(ident, name, int(node["Version"]["Index"]), spec)
                return
            except EngineError as exc:
                if OUT_OF_SEQUENCE not in str(exc) or attempt == attempts - 1:
                    raise
                time.sleep(0.1 * (attempt + 1))

    def _update_node(self, ident: str, name: str, version: int, spec: Spec) -> None:
        call(f"label node {name}", lambda: self.api.update_node(ident, version, spec))

    def _update(self, ident: str, version: int, spec: Spec) -> None:
        path = f"/services/{ident}/update"
        call(f"update service {spec['Name']}", lambda: self._post(path, spec, version=version))

    def _gone(self, ident: str, wait: float = 10.0) -> None:
        """A removed swarm network lingers on the node for a moment; wait until it is gone."""
        import docker.errors

        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            try:
                self.api.inspect_network(ident)
            except docker.errors.NotFound:
                return
            time.sleep(0.1)

    def remove(self, kind: Kind, ident: str, name: str, *, retry_for: float = 0.0) -> None:
        """Remove one object; networks and blobs may still be in use for a moment after their
        service went away, so those retry for `retry_for` seconds."""
        import docker.errors

        fn = {
            "service": self.api.remove_service,
            "network": self.api.remove_network,
            "secret": self.api.remove_secret,
            "config": self.api.remove_config,
            "volume": self.api.remove_volume,
        }[kind]
        deadline = time.monotonic() + retry_for
        while True:
            try:
                fn(ident)
                if kind == "network":
                    self._gone(ident)
                return
            except docker.errors.NotFound:
                return
            except docker.errors.APIError as exc:
                if time.monotonic() >= deadline:
                    raise EngineError(f"remove {kind} {name}: {_explain(exc)}") from None
                time.sleep(0.25)
