"""Connecting to the operator's cloud, resolving names, and waiting with a clock tests can replace.

The cloud comes from clouds.yaml (`--os-cloud` or $OS_CLOUD) or the OS_*
variables of an openrc, exactly as the `openstack` client reads them.
"""

from __future__ import annotations

import argparse
import itertools
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from .errors import ambiguous, cloud_error, missing

T = TypeVar("T")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-?([0-9a-fA-F]{4}-?){3}[0-9a-fA-F]{12}\Z")


@dataclass
class Clock:
    """time.sleep and time.monotonic, swappable: tests advance a fake clock instead of waiting."""

    sleep: Callable[[float], None] = field(default=time.sleep)
    now: Callable[[], float] = field(default=time.monotonic)


@dataclass
class Poll:
    """One watch loop's patience with a flaky API: `get` returns the call's answer, or sets `again`
    (and returns None) when the call failed transiently (errors.is_transient), up to `limit` times in a
    row; any other failure, or one too many, is raised as it came."""

    limit: int = 5
    failed: int = 0
    again: bool = False

    def get(self, call: Callable[[], T]) -> T | None:
        from .errors import is_transient

        try:
            value = call()
        except Exception as exc:
            if not is_transient(exc) or self.failed >= self.limit:
                raise
            self.failed, self.again = self.failed + 1, True
            return None
        self.failed, self.again = 0, False
        return value


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--os-cloud", metavar="NAME", default=os.environ.get("OS_CLOUD"),
                   help="the clouds.yaml entry to use (default: $OS_CLOUD, else the OS_* variables)")


def connect(os_cloud: str | None) -> Any:
    """An openstacksdk Connection; nothing is sent until the first call. The SDK's and keystoneauth's
    log records (a retried request's "Failure: ... Retrying in 0.5s") are not printed: bakery says
    what failed, in its own words, once the retries are spent."""
    import logging

    import openstack

    for name in ("keystoneauth", "openstack"):
        logging.getLogger(name).addHandler(logging.NullHandler())

    try:
        conn = openstack.connect(cloud=os_cloud) if os_cloud else openstack.connect()
        retry_idempotent(conn.session)
        return conn
    except Exception as exc:
        if type(exc).__name__ in ("MissingRequiredOptions", "ConfigException", "OpenStackConfigException"):
            from ...errors import EnvironmentMissing

            named = f" {os_cloud!r}" if os_cloud else ""
            raise EnvironmentMissing(
                f"no usable OpenStack cloud configuration{named} ({type(exc).__name__}): pass --os-cloud NAME "
                "(an entry of clouds.yaml) or source your openrc (OS_AUTH_URL, ...)") from None
        raise cloud_error(exc, f"reading the cloud configuration{f' {os_cloud!r}' if os_cloud else ''}") from exc


# Methods sent again when the connection fails (reset, refused, timed out) before an answer: repeating them
# changes nothing. POST is never repeated (a second server could boot); PUT carries image data streamed once.
IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "DELETE"})
CONNECT_RETRIES = 3


def retry_idempotent(session: Any) -> None:
    """Have the keystoneauth session retry idempotent requests whose connection failed, or that a gateway
    answered 503, with its backoff (0.5 s, then doubled). Such failures are ordinary: a proxy or an API
    worker closes an idle keep-alive connection just as the next request goes out, a service restarts.
    `connect_retries` / `status_code_retries` set in clouds.yaml win."""
    send = session.request

    def request(url: str, method: str, *args: Any, **kwargs: Any) -> Any:
        if method.upper() in IDEMPOTENT:
            if kwargs.get("connect_retries") is None:
                kwargs["connect_retries"] = CONNECT_RETRIES
            if not kwargs.get("status_code_retries"):  # a 503 (keystoneauth's retriable code) a moment long
                kwargs["status_code_retries"] = CONNECT_RETRIES
        return send(url, method, *args, **kwargs)

    session.request = request


def _pick(kind: str, wanted: str, found: list[Any], names: list[str], flag: str) -> Any:
    by_id = [r for r in found if r.id == wanted]
    if by_id:
        return by_id[0]
    by_name = [r for r in found if r.name == wanted]
    if len(by_name) > 1:
        raise ambiguous(kind, wanted, [r.id for r in by_name], flag)
    if not by_name:
        raise missing(kind, wanted, names, flag)
    return by_name[0]


def create_tagged(create: Callable[..., Any], tag: str, **attrs: Any) -> Any:
    """A Neutron create with its tag in the request itself (Neutron's `tag-creation` extension): a kill
    between the create and a separate `set_tags` left an untagged resource that `down` never finds. A
    cloud without the extension refuses the attribute (400): then it is created untagged, and the
    caller's `set_tags` tags it, as before."""
    from openstack import exceptions

    try:
        return create(**attrs, tags=[tag])
    except exceptions.BadRequestException as exc:
        if "tags" not in str(exc):
            raise
        return create(**attrs)


def find_or_none(finder: Any, name_or_id: str) -> Any:
    """`find_*` without the deprecated ignore_missing=True (docs/FACTS.md §6)."""
    from openstack import exceptions

    try:
        return finder(name_or_id, ignore_missing=False)
    except exceptions.NotFoundException:
        return None


def find_flavor(conn: Any, wanted: str) -> Any:
    try:
        flavors = list(conn.compute.flavors(details=False))
    except Exception as exc:
        raise cloud_error(exc, "listing flavors") from exc
    return _pick("flavor", wanted, flavors, [f.name for f in flavors], "--flavor")


def find_image(conn: Any, wanted: str, flag: str = "--base-image") -> Any:
    try:
        found = list(conn.image.images(name=wanted))
        if not found and _UUID.match(wanted):
            found = [i for i in [find_or_none(conn.image.find_image, wanted)] if i is not None]
        if found:
            return _pick("image", wanted, found, [], flag)
        names = [i.name for i in itertools.islice(conn.image.images(status="active"), 50)]
    except Exception as exc:
        raise cloud_error(exc, f"looking up image {wanted!r}") from exc
    raise missing("image", wanted, names, flag)


def find_network(conn: Any, wanted: str, flag: str = "--network") -> Any:
    try:
        found = list(conn.network.networks(name=wanted))
        if not found and _UUID.match(wanted):
            found = list(conn.network.networks(id=wanted))
        if found:
            return _pick("network", wanted, found, [], flag)
        names = [n.name for n in conn.network.networks()]
    except Exception as exc:
        raise cloud_error(exc, f"looking up network {wanted!r}") from exc
    raise missing("network", wanted, names, flag)
