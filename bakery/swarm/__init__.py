"""Deploy v3 stacks onto a swarm over the Docker Engine API.

    engine = swarm.connect(swarm.endpoint(host=...))
    plan, report = swarm.plan(engine, "voting", stack_dict)
    result = swarm.apply(engine, plan, progress=print)

Importing this package does not import docker; only `connect` does.
"""

from __future__ import annotations

from .apply import apply
from .connect import Endpoint, connect, endpoint
from .engine import Engine
from .model import Change, Plan, Progress, Result, ServiceOutcome
from .plan import plan

__all__ = [
    "Change",
    "Endpoint",
    "Engine",
    "Plan",
    "Progress",
    "Result",
    "ServiceOutcome",
    "apply",
    "connect",
    "endpoint",
    "plan",
]
