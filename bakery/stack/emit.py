"""The typed stack as v3 stack data: the file emitter's half of the model (the specs are the other).

`data(stack, version)` gives what a v3 stack file says, with values as meant: `$` not escaped,
depends_on with its conditions and the pattern hints under `node_labels` (compose.emit.stack_file
makes the file's form of it: `$$`, and those two in `x-bakery`). Every value is written from the
model, in the shortest form the version takes (`512m`, `1m30s`, `"8080:80"`), so what the file
says is what `stack.load` reads back: `load(data(s)) == s` for every stack (tests/unit/
test_stack_emit.py), and what `bakery deploy` deploys from the file is what it deploys from the
compose input. A form a lower version lacks (a host-mode port, a tmpfs size) raises the version.
"""

from __future__ import annotations

from typing import Any

from .model import (
    Attachment,
    Blob,
    FileRef,
    Healthcheck,
    Mount,
    Network,
    Placement,
    Port,
    Resources,
    RestartPolicy,
    Service,
    Stack,
    UpdateConfig,
    Volume,
)
from .values import version_key

_UNITS = (("p", 1 << 50), ("t", 1 << 40), ("g", 1 << 30), ("m", 1 << 20), ("k", 1 << 10))
_DEFAULT_UPDATE = UpdateConfig()
_DEFAULT_RESTART = RestartPolicy()
_DEFAULT_NET = Attachment("default")


def size(n: int) -> str:
    """Bytes as docker's RAMInBytes reads them: `536870912` -> `512m` (an exact unit, else bytes)."""
    for unit, factor in _UNITS:
        if n and n % factor == 0:
            return f"{n // factor}{unit}"
    return str(n)


def duration(ns: int) -> str:
    """Nanoseconds as a Go duration: `90_000_000_000` -> `1m30s`, `1_500_000` -> `1.5ms`."""
    if ns == 0:
        return "0s"
    if ns < 10**9:
        for unit, factor in (("ms", 10**6), ("us", 10**3), ("ns", 1)):
            if ns >= factor:
                return _decimal(ns, factor) + unit
    hours, rest = divmod(ns, 3600 * 10**9)
    minutes, rest = divmod(rest, 60 * 10**9)
    out = (f"{hours}h" if hours else "") + (f"{minutes}m" if hours or minutes else "")
    return out + (_decimal(rest, 10**9) + "s" if rest or not out else "")


def cpus(nano: int) -> str:
    """Nano-CPUs as compose writes CPUs: `1_500_000_000` -> `"1.5"`."""
    return _decimal(nano, 10**9)


def _decimal(n: int, factor: int) -> str:
    whole, frac = divmod(n, factor)
    if not frac:
        return str(whole)
    digits = len(str(factor)) - 1
    return f"{whole}.{frac:0{digits}d}".rstrip("0")


class _Emit:
    def __init__(self, version: str) -> None:
        self.version = version
        self.needs: set[str] = {version}

    def at_least(self, version: str) -> bool:
        return version_key(self.version) >= version_key(version)

    def stack(self, stack: Stack) -> dict[str, Any]:
        out: dict[str, Any] = {"services": {s.name: self.service(s) for s in stack.services}}
        if stack.node_labels:
            out["node_labels"] = {n.label: n.hint for n in stack.node_labels}
        if stack.networks:
            out["networks"] = {n.key: self.network(n) for n in stack.networks}
        if stack.volumes:
            out["volumes"] = {v.key: self.volume(v) for v in stack.volumes}
        for kind, blobs in (("secrets", stack.secrets), ("configs", stack.configs)):
            if blobs:
                out[kind] = {b.key: self.blob(b) for b in blobs}
        out["version"] = max(self.needs, key=version_key)
        return out

    def service(self, s: Service) -> dict[str, Any]:
        out: dict[str, Any] = {"image": s.image}
        for key in ("command", "entrypoint"):
            if getattr(s, key) is not None:
                out[key] = list(getattr(s, key))
        if s.env:
            out["environment"] = dict(s.env)
        if s.labels:
            out["labels"] = dict(s.labels)
        if s.ports:
            out["ports"] = self.ports(s.ports)
        if s.mounts:
            out["volumes"] = [self.mount(m) for m in s.mounts]
        out["deploy"] = self.deploy(s)
        if s.healthcheck is not None:
            out["healthcheck"] = self.healthcheck(s.healthcheck)
        if s.depends_on:
            conditions = {dep: cond for dep, cond in s.depends_on}
            out["depends_on"] = ({dep: {"condition": c} for dep, c in conditions.items()}
                                 if set(conditions.values()) != {"service_started"} else sorted(conditions))
        if s.networks != (_DEFAULT_NET,):
            nets = {a.network: {"aliases": list(a.aliases)} if a.aliases else None for a in s.networks}
            out["networks"] = nets if any(nets.values()) else list(nets)
        for kind, refs in (("secrets", s.secrets), ("configs", s.configs)):
            if refs:
                out[kind] = [self.file_ref(kind, r) for r in refs]
        for key in ("hostname", "user", "working_dir", "stop_signal", "isolation"):
            if getattr(s, key) is not None:
                out[key] = getattr(s, key)
        for key in ("tty", "stdin_open", "read_only"):
            if getattr(s, key):
                out[key] = True
        if s.init is not None:
            out["init"] = s.init
        if s.stop_grace_period is not None:
            out["stop_grace_period"] = duration(s.stop_grace_period)
        if s.log_driver is not None or s.log_options:
            logging: dict[str, Any] = {"driver": s.log_driver} if s.log_driver is not None else {}
            if s.log_options:
                logging["options"] = dict(s.log_options)
            out["logging"] = logging
        if s.extra_hosts:
            out["extra_hosts"] = [f"{host}:{ip}" for host, ip in s.extra_hosts]
        for key in ("dns", "dns_search", "cap_add", "cap_drop"):
            if getattr(s, key):
                out[key] = list(getattr(s, key))
        if s.sysctls:
            out["sysctls"] = dict(s.sysctls)
        if s.ulimits:
            out["ulimits"] = {u.name: u.soft if u.soft == u.hard else {"soft": u.soft, "hard": u.hard}
                              for u in s.ulimits}
        if s.credential_spec:
            out["credential_spec"] = dict(s.credential_spec)
        if s.extensions:
            self.needs.add("3.7")
            out.update(s.extensions)
        return out

    def deploy(self, s: Service) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if s.mode != "replicated":
            out["mode"] = s.mode
        if s.mode in ("replicated", "replicated-job") and s.replicas != 1:
            out["replicas"] = s.replicas
        if s.endpoint_mode != "vip":
            out["endpoint_mode"] = s.endpoint_mode
        if s.service_labels:
            out["labels"] = dict(s.service_labels)
        resources = self.resources(s.resources)
        if resources:
            out["resources"] = resources
        out["restart_policy"] = self.restart(s.restart)  # written even when it is Docker's default
        placement = self.placement(s.placement)
        if placement:
            out["placement"] = placement
        # Chosen once (compose.service) and written; Docker's defaults are left out only where the
        # version has no room for them (rollback_config is 3.7, update order 3.4).
        for key, config in (("update_config", s.update), ("rollback_config", s.rollback)):
            if config != _DEFAULT_UPDATE or self.at_least("3.7"):
                out[key] = self.update(config)
                if key == "rollback_config":
                    self.needs.add("3.7")
        return out

    def resources(self, r: Resources) -> dict[str, Any]:
        limits: dict[str, Any] = {}
        if r.cpus is not None:
            limits["cpus"] = cpus(r.cpus)
        if r.memory is not None:
            limits["memory"] = size(r.memory)
        if r.pids is not None:
            limits["pids"] = r.pids
        reserve: dict[str, Any] = {}
        if r.reserve_cpus is not None:
            reserve["cpus"] = cpus(r.reserve_cpus)
        if r.reserve_memory is not None:
            reserve["memory"] = size(r.reserve_memory)
        return {k: v for k, v in (("limits", limits), ("reservations", reserve)) if v}

    def restart(self, p: RestartPolicy) -> dict[str, Any]:
        out: dict[str, Any] = {"condition": p.condition}
        if p.delay != _DEFAULT_RESTART.delay:
            out["delay"] = duration(p.delay)
        if p.max_attempts:
            out["max_attempts"] = p.max_attempts
        if p.window:
            out["window"] = duration(p.window)
        return out

    def update(self, u: UpdateConfig) -> dict[str, Any]:
        out: dict[str, Any] = {"parallelism": u.parallelism, "failure_action": u.failure_action}
        if u.order != _DEFAULT_UPDATE.order or self.at_least("3.4"):
            out["order"] = u.order
            self.needs.add("3.4")
        if u.delay:
            out["delay"] = duration(u.delay)
        if u.monitor != _DEFAULT_UPDATE.monitor:
            out["monitor"] = duration(u.monitor)
        if u.max_failure_ratio:
            out["max_failure_ratio"] = u.max_failure_ratio
        return out

    def placement(self, p: Placement) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if p.constraints:
            out["constraints"] = list(p.constraints)
        if p.preferences:
            out["preferences"] = [{"spread": spread} for spread in p.preferences]
        if p.max_replicas is not None:
            out["max_replicas_per_node"] = p.max_replicas
        return out

    def healthcheck(self, h: Healthcheck) -> dict[str, Any]:
        if h.test == ("NONE",) and h == Healthcheck(("NONE",)):
            return {"disable": True}
        out: dict[str, Any] = {"test": list(h.test)}  # NONE with timings: kept, as deploy keeps them
        for key in ("interval", "timeout", "start_period"):
            if getattr(h, key) is not None:
                out[key] = duration(getattr(h, key))
        if h.retries is not None:
            out["retries"] = h.retries
        return out

    def ports(self, ports: tuple[Port, ...]) -> list[Any]:
        """Short syntax where it holds the port (ranges joined again), long syntax for host mode."""
        out: list[Any] = []
        runs: list[list[Port]] = []
        for port in ports:
            last = runs[-1][-1] if runs else None
            if (last is not None and port.mode == last.mode == "ingress" and port.protocol == last.protocol
                    and port.target == last.target + 1 and port.published is not None
                    and last.published is not None and port.published == last.published + 1):
                runs[-1].append(port)
            else:
                runs.append([port])
        for run in runs:
            first, end = run[0], run[-1]
            if first.mode == "host":
                self.needs.add("3.2")
                long: dict[str, Any] = {"target": first.target, "protocol": first.protocol, "mode": "host"}
                if first.published is not None:
                    long["published"] = first.published
                out.append(long)
                continue
            target = str(first.target) if first is end else f"{first.target}-{end.target}"
            published = "" if first.published is None else (
                f"{first.published}:" if first is end else f"{first.published}-{end.published}:")
            out.append(published + target + ("" if first.protocol == "tcp" else f"/{first.protocol}"))
        return out

    def mount(self, m: Mount) -> Any:
        path_like = m.source is not None and m.source.startswith(("/", "./", "../", "~"))
        short = (m.type == "volume" and not m.propagation and not path_like) or (
            m.type == "bind" and path_like and not m.nocopy)
        opts = [o for o in ("ro" if m.read_only else "", m.propagation or "", "nocopy" if m.nocopy else "") if o]
        if short and m.source is None and not opts:  # an anonymous volume
            return m.target
        if short and m.source is not None:
            return ":".join([m.source, m.target, *([",".join(opts)] if opts else [])])
        self.needs.add("3.6" if m.tmpfs_size is not None else "3.2")
        out: dict[str, Any] = {"type": m.type, "target": m.target}
        if m.source is not None:
            out["source"] = m.source
        return {**out, **self._long_opts(m)}

    def _long_opts(self, m: Mount) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if m.read_only:
            out["read_only"] = True
        if m.propagation:
            out["bind"] = {"propagation": m.propagation}
        if m.nocopy:
            out["volume"] = {"nocopy": True}
        if m.tmpfs_size is not None:
            out["tmpfs"] = {"size": m.tmpfs_size}
        return out

    def file_ref(self, kind: str, r: FileRef) -> Any:
        default = f"/{r.source}" if kind == "configs" else r.source
        if r.target == default and r.uid == r.gid == "0" and r.mode == 0o444:
            return r.source
        out: dict[str, Any] = {"source": r.source, "target": r.target}
        if r.uid != "0":
            out["uid"] = r.uid
        if r.gid != "0":
            out["gid"] = r.gid
        if r.mode != 0o444:
            out["mode"] = r.mode
        return out

    def _named(self, obj: Network | Volume | Blob) -> dict[str, Any]:
        """`name` and `external`: before 3.5 an external object's name is `external: {name}`."""
        if obj.external:
            if obj.name is not None and not self.at_least("3.5"):
                return {"external": {"name": obj.name}}
            return {"external": True, **({"name": obj.name} if obj.name is not None else {})}
        if obj.name is None:
            return {}
        self.needs.add("3.4" if isinstance(obj, Volume) else "3.5")  # a volume's name is 3.4, the rest 3.5
        return {"name": obj.name}

    def network(self, n: Network) -> dict[str, Any]:
        out = self._named(n)
        if not n.external:
            out["driver"] = n.driver
            if n.driver_opts:
                out["driver_opts"] = dict(n.driver_opts)
            for key in ("attachable", "internal", "enable_ipv6"):
                if getattr(n, key):
                    out[key] = True
            if n.ipam is not None:
                ipam: dict[str, Any] = {"driver": n.ipam.driver} if n.ipam.driver != "default" else {}
                if n.ipam.subnets:
                    keys = {"Subnet": "subnet", "IPRange": "ip_range", "Gateway": "gateway",
                            "AuxiliaryAddresses": "aux_addresses"}
                    ipam["config"] = [{keys[k]: v for k, v in pool.items()} for pool in n.ipam.subnets]
                if n.ipam.options:
                    ipam["options"] = dict(n.ipam.options)
                out["ipam"] = ipam
        if n.labels:
            out["labels"] = dict(n.labels)
        return out

    def volume(self, v: Volume) -> dict[str, Any]:
        out = self._named(v)
        if v.driver is not None:
            out["driver"] = v.driver
        if v.driver_opts:
            out["driver_opts"] = dict(v.driver_opts)
        if v.labels:
            out["labels"] = dict(v.labels)
        return out

    def blob(self, b: Blob) -> dict[str, Any]:
        out = self._named(b)
        for key in ("file", "environment", "content"):
            if getattr(b, key) is not None:
                out[key] = getattr(b, key)
        if b.labels:
            out["labels"] = dict(b.labels)
        return out


def data(stack: Stack, version: str) -> dict[str, Any]:
    """The v3 stack data of `stack` at `version` or above (values as meant, not escaped)."""
    return _Emit(version).stack(stack)
