"""Deploy v3 stacks onto a swarm over the Docker Engine API.

    wanted = swarm.build("voting", result.model)          # a typed bakery.stack.Stack -> StackSpecs; no engine
    engine = swarm.connect(swarm.endpoint(host=...))
    plan, found = swarm.plan(engine, wanted)               # engine None: the plan for an empty swarm
    result = swarm.apply(engine, plan, progress=print)

Importing this package does not import docker; only `connect` does.
"""

from __future__ import annotations

from .apply import apply
from .connect import ClusterAddress, Endpoint, connect, endpoint
from .engine import Engine
from .model import Change, Plan, Progress, Result, ServiceOutcome
from .plan import plan
from .specs import StackSpecs, build

__all__ = [
    "Change",
    "ClusterAddress",
    "Endpoint",
    "Engine",
    "Plan",
    "Progress",
    "Result",
    "ServiceOutcome",
    "StackSpecs",
    "apply",
    "build",
    "connect",
    "endpoint",
    "plan",
]
