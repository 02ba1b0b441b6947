"""OpenStack failures as one clear line each: what bakery was doing, what the cloud said, the fix.

Quota, a missing flavor/image/network and a refused request are what operators
meet most; each gets its own message instead of an openstacksdk traceback.
Messages carry the cloud's explanation, never request headers or credentials.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from ...errors import BakeryError, CloudError, EnvironmentMissing, UserError

QUOTA_WORDS = ("quota", "overlimit", "over limit", "exceeded")


def _status(exc: Any) -> int | None:
    code = getattr(exc, "status_code", None)
    return code if isinstance(code, int) else None


def _details(exc: Any) -> str:
    text = str(getattr(exc, "details", None) or getattr(exc, "message", None) or exc)
    return " ".join(_message_of(text).split())[:400]


def _message_of(text: str) -> str:
    """The human part of an error body: Nova {"forbidden": {"message"}}, Neutron {"NeutronError": ...},
    Glance/Octavia {"message"}/{"faultstring"}; other text as it is."""
    try:
        body = json.loads(text)
    except ValueError:
        return text
    if isinstance(body, dict) and len(body) == 1 and isinstance(next(iter(body.values())), dict):
        body = next(iter(body.values()))
    if isinstance(body, dict):
        for key in ("message", "faultstring", "description", "title"):
            if isinstance(body.get(key), str) and body[key]:
                return str(body[key])
    return text


def is_quota(exc: Any) -> bool:
    status = _status(exc)
    return status in (403, 409, 413) and any(w in _details(exc).lower() for w in QUOTA_WORDS)


TRANSIENT_STATUS = (502, 503, 504)


def is_transient(exc: BaseException) -> bool:
    """A failure that the same request may not meet a moment later: the connection reset or timed out
    (a proxy or API worker closing an idle keep-alive connection), or a gateway answering 502/503/504."""
    from keystoneauth1 import exceptions as ksa

    if isinstance(exc, ksa.RetriableConnectionFailure):
        return True
    return _status(exc) in TRANSIENT_STATUS


def cloud_error(exc: BaseException, doing: str) -> BakeryError:
    """The BakeryError for an exception raised by openstacksdk while `doing` something."""
    if isinstance(exc, BakeryError):
        return exc
    from openstack import exceptions

    if isinstance(exc, exceptions.ConfigException):
        return EnvironmentMissing(f"{doing}: no usable cloud configuration: {_details(exc)} "
                                  "(set --os-cloud with a clouds.yaml entry, or source an openrc for OS_* variables)")
    status = _status(exc)
    details = _details(exc)
    if is_quota(exc):
        return CloudError(f"{doing}: quota exceeded: {details} (free some resources or ask the cloud's admins "
                          "to raise the project's quota; `openstack quota show` lists it)")
    if status == 401:
        return EnvironmentMissing(f"{doing}: the cloud refused the credentials (HTTP 401) "
                                  "(check the clouds.yaml entry or the OS_* variables)")
    if status == 403:
        return CloudError(f"{doing}: not allowed (HTTP 403): {details} (the project's role lacks this permission)")
    if status == 404:
        return CloudError(f"{doing}: not found (HTTP 404): {details}")
    if status is not None:
        return CloudError(f"{doing}: the cloud answered HTTP {status}: {details}")
    if isinstance(exc, exceptions.SDKException):
        return CloudError(f"{doing}: {details}")
    return CloudError(f"{doing}: {type(exc).__name__}: {details}")


def _choices(names: Iterable[str]) -> str:
    listed = sorted(set(names))
    if not listed:
        return "none are visible to this project"
    more = f", and {len(listed) - 12} more" if len(listed) > 12 else ""
    return ", ".join(listed[:12]) + more


def missing(kind: str, wanted: str, available: Iterable[str], flag: str) -> UserError:
    return UserError(f"{kind} {wanted!r} does not exist on this cloud (available: {_choices(available)})",
                     fix=f"pass {flag} with one of them")


def ambiguous(kind: str, wanted: str, ids: Iterable[str], flag: str) -> UserError:
    return UserError(f"{kind} name {wanted!r} matches several: {', '.join(sorted(ids))}",
                     fix=f"pass {flag} with the id instead")


def server_fault(name: str, server: Any) -> CloudError:
    fault = getattr(server, "fault", None) or {}
    message = fault.get("message", "no fault message") if isinstance(fault, dict) else str(fault)
    hint = ""
    if "no valid host" in message.lower():
        hint = " (no hypervisor could take it: try a smaller flavor, another availability zone, or fewer servers)"
    return CloudError(f"server {name} went to ERROR: {message}{hint}")
