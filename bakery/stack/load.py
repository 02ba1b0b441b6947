"""v3 stack data into the typed stack, every value checked where it was written.

The data is the converter's output: what a stack file says after interpolation
(`$$` already read as `$`), with depends_on conditions in place (the file keeps
them in `x-bakery`, which the converter reads back). `locate` maps a
YAML path of that data to the `Ref` of the file it came from, so a bad value
(`deploy.replicas: .inf`, `placement: "x"`, `mem_limit: 12x`) is refused with
file:line, YAML path, the rule and the fix, never a traceback.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Iterator, Mapping
from dataclasses import fields
from typing import Any, TypeVar, cast

from ..yamlsrc import Document, Path_
from . import values
from .model import (
    CONDITIONS,
    MODES,
    Attachment,
    Blob,
    Condition,
    FileRef,
    Healthcheck,
    Ipam,
    Mode,
    Mount,
    Network,
    NodeLabel,
    Pairs,
    Placement,
    Port,
    Ref,
    Resources,
    RestartPolicy,
    Service,
    Stack,
    Ulimit,
    UpdateConfig,
    Volume,
)

Locate = Callable[[Path_], Ref]
T = TypeVar("T")

_RESTART_CONDITIONS = ("none", "on-failure", "any")
_FAILURE_ACTIONS = ("pause", "continue", "rollback")
_ORDERS = ("stop-first", "start-first")
# Keys of a v3 service that become part of its spec; keys.py decides what reaches a stack file.
_SERVICE_KEYS = frozenset({
    "image", "command", "entrypoint", "environment", "labels", "deploy", "ports", "volumes", "networks",
    "healthcheck", "secrets", "configs", "hostname", "user", "working_dir", "stop_grace_period", "stop_signal",
    "tty", "stdin_open", "read_only", "init", "isolation", "logging", "extra_hosts", "dns", "dns_search",
    "cap_add", "cap_drop", "sysctls", "ulimits", "depends_on", "credential_spec"})


class _At:
    """The YAML path of one object of the data, for its errors."""

    def __init__(self, locate: Locate, path: Path_) -> None:
        self.locate, self.path = locate, path

    def ref(self, *sub: Any) -> Ref:
        return self.locate((*self.path, *sub))

    def fail(self, sub: tuple[Any, ...], message: str, fix: str | None = None) -> Exception:
        return self.ref(*sub).error(message, fix)

    def parse(self, fn: Callable[[Any], T], value: Any, *sub: Any) -> T:
        try:
            return fn(value)
        except values.BadValue as exc:
            raise self.fail(sub, exc.message, exc.fix) from None

    def mapping(self, value: Any, *sub: Any) -> Mapping[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            raise self.fail(sub, f"{'.'.join(map(str, sub))} must be a mapping, not {value!r}",
                            "write it as `key: value` lines under it")
        return value

    def known(self, value: Mapping[str, Any], allowed: frozenset[str], *sub: Any) -> Mapping[str, Any]:
        """`value`, every key of it one of `allowed` (or an `x-` extension)."""
        for key in value:
            if key not in allowed and not str(key).startswith("x-"):
                from ..schema import key_fix  # only on this error

                raise self.fail((*sub, key), f"{key} is not a key of {'.'.join(map(str, sub))}",
                                key_fix(str(key), allowed))
        return value

    def listing(self, value: Any, *sub: Any) -> list[Any]:
        if value is None:
            return []
        if isinstance(value, str) or not isinstance(value, list):
            raise self.fail(sub, f"{'.'.join(map(str, sub))} must be a list, not {value!r}", "write `- item` lines")
        return value

    def choice(self, value: Any, options: tuple[str, ...], *sub: Any) -> str:
        if not isinstance(value, str) or value not in options:
            raise self.fail(sub, f"{value!r} is not one of {', '.join(options)}", f"use {' or '.join(options)}")
        return value

    def text(self, value: Any, *sub: Any) -> str:
        if isinstance(value, dict | list) or value is None:
            raise self.fail(sub, f"{value!r} is not a string", "write a single value")
        return _scalar(value)

    def flag(self, value: Any, *sub: Any) -> bool:
        if not isinstance(value, bool):
            raise self.fail(sub, f"{value!r} is not true or false", "use true or false")
        return value


def _scalar(v: Any) -> str:
    return ("true" if v else "false") if isinstance(v, bool) else str(v)


def pairs(value: Any) -> dict[str, str | None]:
    """A list of `K=V` (or `K`) or a mapping; None means "no value"."""
    if isinstance(value, Mapping):
        return {str(k): None if v is None else _scalar(v) for k, v in value.items()}
    out: dict[str, str | None] = {}
    for item in value or []:
        key, sep, val = str(item).partition("=")
        out[key] = val if sep else None
    return out


def _labels(value: Any) -> Pairs:
    return tuple(sorted((k, v or "") for k, v in pairs(value).items()))


def _words(value: Any) -> tuple[str, ...]:
    if not isinstance(value, str):
        return tuple(_scalar(v) for v in value)
    try:
        return tuple(shlex.split(value))
    except ValueError as exc:  # an unclosed quote, a trailing backslash
        raise values.BadValue(f"{value!r} cannot be split into words ({exc})",
                              "close the quote (or escape it), or write the command as a list") from None


def _strings(value: Any) -> tuple[str, ...]:
    return tuple(str(v) for v in ([value] if isinstance(value, str) else value or []))


def load(data: Mapping[str, Any], locate: Locate | None = None, source: str = "<stack>") -> Stack:
    """The typed stack of v3 `data`; raises ComposeError (a UserError) located in the file."""
    if locate is None:
        doc = Document(data, source)
        locate = lambda path: Ref(doc, path)  # noqa: E731
    top = _At(locate, ())
    services = top.mapping(data.get("services"), "services")
    out = [_service(str(name), _At(locate, ("services", name)), top.mapping(svc, "services", name))
           for name, svc in sorted(services.items())]
    _check_depends(out)
    _check_published(out)
    return Stack(
        services=tuple(out),
        networks=tuple(_network(str(k), _At(locate, ("networks", k)), top.mapping(v, "networks", k))
                       for k, v in sorted(top.mapping(data.get("networks"), "networks").items())),
        volumes=tuple(_volume(str(k), _At(locate, ("volumes", k)), top.mapping(v, "volumes", k))
                      for k, v in sorted(top.mapping(data.get("volumes"), "volumes").items())),
        secrets=_blobs("secret", data, locate), configs=_blobs("config", data, locate),
        node_labels=tuple(_node_label(str(k), _At(locate, ("node_labels", k)), v)
                          for k, v in sorted(top.mapping(data.get("node_labels"), "node_labels").items())))


def _node_label(label: str, at: _At, hint: Any) -> NodeLabel:
    """`bakery.hint.<hex>: node==web*` (the file's x-bakery.node_labels): the label must be the
    one its hint names, else the services' constraints and the labelled nodes would disagree."""
    parts = values.hint_parts(at.text(hint)) if isinstance(hint, str) else None
    if parts is None:
        raise at.fail((), f"{hint!r} is not a classic-Swarm hint", "write KEY==PATTERN or KEY!=PATTERN")
    if at.parse(values.hint_pattern, parts[2]) is None:
        raise at.fail((), f"hint {hint!r} has no pattern; an exact value needs no node label",
                      "remove the entry and constrain on the value itself")
    if values.hint_label(*parts) != label:
        raise at.fail((), f"label {label} does not name the hint {hint!r} (that is {values.hint_label(*parts)})",
                      "convert the compose file again rather than editing x-bakery by hand")
    return NodeLabel(label, *parts, ref=at.ref())


def _service(name: str, at: _At, svc: Mapping[str, Any]) -> Service:
    for key in svc:
        if key not in _SERVICE_KEYS and not str(key).startswith("x-"):
            raise at.fail((key,), f"{key} is not a key of a swarm service", "remove it")
    if not svc.get("image") or not isinstance(svc["image"], str):
        raise at.fail(("image",), "a service needs an image", "add `image: NAME:TAG`")
    at.parse(values.image_reference, svc["image"], "image")
    deploy = at.known(at.mapping(svc.get("deploy"), "deploy"), _DEPLOY_KEYS, "deploy")
    mode, replicas = _mode(at, deploy)
    logging = at.mapping(svc.get("logging"), "logging")
    fields: dict[str, Any] = dict(
        name=name, ref=at.ref(), image=svc["image"],
        env=tuple(sorted(pairs(svc.get("environment")).items())),
        labels=_labels(svc.get("labels")), service_labels=_labels(deploy.get("labels")),
        ports=_ports(at, at.listing(svc.get("ports"), "ports")),
        mounts=tuple(_mount(at, m, i) for i, m in enumerate(at.listing(svc.get("volumes"), "volumes"))),
        resources=_resources(at, at.mapping(deploy.get("resources"), "deploy", "resources")),
        restart=_restart(at, at.mapping(deploy.get("restart_policy"), "deploy", "restart_policy")),
        mode=mode, replicas=replicas,
        placement=_placement(at, at.mapping(deploy.get("placement"), "deploy", "placement")),
        update=_update(at, deploy.get("update_config"), "update_config"),
        rollback=_update(at, deploy.get("rollback_config"), "rollback_config"),
        endpoint_mode=at.choice(deploy.get("endpoint_mode", "vip"), ("vip", "dnsrr"), "deploy", "endpoint_mode"),
        healthcheck=_healthcheck(at, svc["healthcheck"]) if svc.get("healthcheck") else None,
        depends_on=_depends(at, svc.get("depends_on")),
        networks=_attachments(at, svc.get("networks")),
        secrets=_file_refs(at, "secrets", svc.get("secrets")), configs=_file_refs(at, "configs", svc.get("configs")),
        log_driver=at.text(logging["driver"], "logging", "driver") if "driver" in logging else None,
        log_options=_labels(logging.get("options")),
        extra_hosts=tuple(sorted(_hosts(svc.get("extra_hosts")))),
        sysctls=_labels(svc.get("sysctls")), ulimits=_ulimits(at, at.mapping(svc.get("ulimits"), "ulimits")),
        refs=_Refs(at, svc),
        extensions=tuple(sorted((str(k), v) for k, v in svc.items() if str(k).startswith("x-"))),
    )
    for key in ("command", "entrypoint"):
        if svc.get(key) is not None:
            fields[key] = at.parse(_words, svc[key], key)
    for key in ("hostname", "user", "working_dir", "stop_signal", "isolation"):
        if svc.get(key) is not None:
            fields[key] = at.text(svc[key], key)
    for key in ("tty", "stdin_open", "read_only", "init"):
        if svc.get(key) is not None:
            fields[key] = at.flag(svc[key], key)
    for key in ("dns", "dns_search", "cap_add", "cap_drop"):
        fields[key] = tuple(sorted(_strings(svc.get(key)))) if key.startswith("cap") else _strings(svc.get(key))
    if svc.get("stop_grace_period") is not None:
        fields["stop_grace_period"] = at.parse(values.duration_ns, svc["stop_grace_period"], "stop_grace_period")
    if svc.get("credential_spec"):
        spec = at.mapping(svc["credential_spec"], "credential_spec")
        fields["credential_spec"] = tuple(sorted((str(k), _scalar(v)) for k, v in spec.items()))
    return Service(**fields)


class _Refs(Mapping[Path_, Ref]):
    """Where each key of the service, and each item of its lists, was written: found when asked
    (most are never asked; making them all up front cost a tenth of a 1,000-service convert)."""

    def __init__(self, at: _At, svc: Mapping[str, Any]) -> None:
        self._at, self._svc = at, svc

    def _paths(self) -> list[Path_]:
        out: list[Path_] = []
        for key, value in self._svc.items():
            out.append((key,))
            subs = range(len(value)) if isinstance(value, list) else value if isinstance(value, Mapping) else ()
            out.extend((key, sub) for sub in subs)
        return out

    def __getitem__(self, path: Path_) -> Ref:
        key = path[0] if path else None
        if not 1 <= len(path) <= 2 or not isinstance(key, str) or key not in self._svc:
            raise KeyError(path)
        if len(path) == 2:
            value, sub = self._svc[key], path[1]
            if not ((isinstance(value, list) and isinstance(sub, int) and 0 <= sub < len(value))
                    or (isinstance(value, Mapping) and sub in value)):
                raise KeyError(path)
        return self._at.ref(*path)

    def __iter__(self) -> Iterator[Path_]:
        return iter(self._paths())

    def __len__(self) -> int:
        return len(self._paths())


def _mode(at: _At, deploy: Mapping[str, Any]) -> tuple[Mode, int]:
    mode = cast(Mode, at.choice(deploy.get("mode", "replicated"), MODES, "deploy", "mode"))
    replicas = deploy.get("replicas")
    count = 1 if replicas is None else at.parse(lambda v: values.count(v, "replica count"), replicas,
                                                "deploy", "replicas")
    return mode, count


# The keys of deploy and its parts, as Docker's v3 schemas and the Compose Specification have them.
_DEPLOY_KEYS = frozenset({"mode", "replicas", "labels", "update_config", "rollback_config", "resources",
                          "restart_policy", "placement", "endpoint_mode"})
_RESOURCES_KEYS = frozenset({"limits", "reservations"})
_LIMITS_KEYS = frozenset({"cpus", "memory", "pids"})
_RESERVATIONS_KEYS = frozenset({"cpus", "memory", "generic_resources", "devices"})
_PLACEMENT_KEYS = frozenset({"constraints", "preferences", "max_replicas_per_node"})
# update_config, rollback_config and restart_policy: the file's keys are the model's fields.
_UPDATE_KEYS = frozenset(f.name for f in fields(UpdateConfig))
_RESTART_KEYS = frozenset(f.name for f in fields(RestartPolicy))


def _resources(at: _At, res: Mapping[str, Any]) -> Resources:
    at.known(res, _RESOURCES_KEYS, "deploy", "resources")
    limits = at.known(at.mapping(res.get("limits"), "deploy", "resources", "limits"), _LIMITS_KEYS,
                      "deploy", "resources", "limits")
    reserve = at.known(at.mapping(res.get("reservations"), "deploy", "resources", "reservations"),
                       _RESERVATIONS_KEYS, "deploy", "resources", "reservations")

    def opt(fn: Callable[[Any], int], part: Mapping[str, Any], kind: str, key: str) -> int | None:
        value = part.get(key)
        return None if value is None else at.parse(fn, value, "deploy", "resources", kind, key)

    return Resources(
        cpus=opt(values.nano_cpus, limits, "limits", "cpus"), memory=opt(values.size_bytes, limits, "limits", "memory"),
        pids=opt(lambda v: values.count(v, "pids limit", minimum=1), limits, "limits", "pids"),
        reserve_cpus=opt(values.nano_cpus, reserve, "reservations", "cpus"),
        reserve_memory=opt(values.size_bytes, reserve, "reservations", "memory"))


def _restart(at: _At, policy: Mapping[str, Any]) -> RestartPolicy:
    sub = ("deploy", "restart_policy")
    at.known(policy, _RESTART_KEYS, *sub)
    default = RestartPolicy()
    return RestartPolicy(
        condition=at.choice(policy.get("condition", default.condition), _RESTART_CONDITIONS, *sub, "condition"),
        delay=at.parse(values.duration_ns, policy.get("delay", "5s"), *sub, "delay"),
        max_attempts=at.parse(lambda v: values.count(v, "attempt count"), policy.get("max_attempts", 0),
                              *sub, "max_attempts"),
        window=at.parse(values.duration_ns, policy.get("window", 0), *sub, "window"))


def _update(at: _At, raw: Any, key: str) -> UpdateConfig:
    sub = ("deploy", key)
    cfg = at.known(at.mapping(raw, *sub), _UPDATE_KEYS, *sub)
    d = UpdateConfig()
    return UpdateConfig(
        parallelism=at.parse(lambda v: values.count(v, "parallelism"), cfg.get("parallelism", d.parallelism),
                             *sub, "parallelism"),
        delay=at.parse(values.duration_ns, cfg.get("delay", 0), *sub, "delay"),
        failure_action=at.choice(cfg.get("failure_action", d.failure_action), _FAILURE_ACTIONS, *sub,
                                 "failure_action"),
        monitor=at.parse(values.duration_ns, cfg.get("monitor", "5s"), *sub, "monitor"),
        max_failure_ratio=at.parse(lambda v: values.ratio(v, "failure ratio"), cfg.get("max_failure_ratio", 0),
                                   *sub, "max_failure_ratio"),
        order=at.choice(cfg.get("order", d.order), _ORDERS, *sub, "order"))


def _placement(at: _At, placement: Mapping[str, Any]) -> Placement:
    sub = ("deploy", "placement")
    at.known(placement, _PLACEMENT_KEYS, *sub)
    constraints = [at.text(c, *sub, "constraints", i)
                   for i, c in enumerate(at.listing(placement.get("constraints"), *sub, "constraints"))]
    spread = []
    for i, pref in enumerate(at.listing(placement.get("preferences"), *sub, "preferences")):
        spread.append(at.text(at.mapping(pref, *sub, "preferences", i).get("spread"), *sub, "preferences", i))
    most = placement.get("max_replicas_per_node")
    return Placement(tuple(sorted(constraints)), tuple(spread), None if most is None else at.parse(
        lambda v: values.count(v, "replica count", minimum=1), most, *sub, "max_replicas_per_node"))


def _ports(at: _At, entries: list[Any]) -> tuple[Port, ...]:
    out: list[Port] = []
    for i, item in enumerate(entries):
        if isinstance(item, Mapping):
            published = item.get("published")
            out.append(Port(
                target=at.parse(values.port_number, item.get("target"), "ports", i, "target"),
                published=None if published in (None, "") else at.parse(values.port_number, published, "ports", i),
                protocol=at.choice(item.get("protocol", "tcp"), values.PROTOCOLS, "ports", i, "protocol"),
                mode=at.choice(item.get("mode", "ingress"), ("ingress", "host"), "ports", i, "mode")))
        else:
            out.extend(at.parse(_short_port, item, "ports", i))
    seen: set[tuple[int, str]] = set()
    for i, port in enumerate(out):
        if port.published is not None and (port.published, port.protocol) in seen:
            raise at.fail(("ports",), f"port {port.published}/{port.protocol} is published twice",
                          "publish each port once")
        seen.add((port.published or 0, port.protocol) if port.published else (-i - 1, ""))
    return tuple(sorted(out, key=lambda p: (p.published or 0, p.target, p.protocol)))


def _short_port(item: Any) -> list[Port]:
    """`[IP:][PUBLISHED:]TARGET[/PROTO]`, ranges expanded (a host IP is not part of a swarm port)."""
    short = values.short_port(item)
    targets = values.port_range(short.target)
    published = values.port_range(short.published) if short.published else []
    if published and len(published) != len(targets):
        raise values.BadValue(f"{item!r}: published and target ranges differ in size", "give ranges of one size")
    return [Port(t, published[n] if published else None, short.proto or "tcp") for n, t in enumerate(targets)]


def _mount(at: _At, item: Any, i: int) -> Mount:
    if not isinstance(item, Mapping):
        short = at.parse(values.short_mount, item, "volumes", i)
        if short.kind == "anonymous":
            return Mount("volume", short.target)
        opts = short.mode.split(",") if short.mode else []
        prop = [o for o in opts if o in values.PROPAGATIONS] if short.kind == "bind" else []  # a bind's option
        return Mount(short.kind, short.target, short.source, "ro" in opts, prop[0] if prop else None,
                     "nocopy" in opts and short.kind == "volume")  # a volume's
    kind = at.choice(item.get("type", "volume"), ("volume", "bind", "tmpfs", "npipe"), "volumes", i, "type")
    if not item.get("target"):
        raise at.fail(("volumes", i), "a mount needs a target path", "add `target: /path/in/container`")
    source = item.get("source")
    if kind == "bind" and not source:
        raise at.fail(("volumes", i), "a bind mount needs a source path", "add `source: /path/on/the/node`")
    size = at.mapping(item.get("tmpfs"), "volumes", i, "tmpfs").get("size")
    return Mount(kind, str(item["target"]), str(source) if source else None, bool(item.get("read_only")),
                 at.mapping(item.get("bind"), "volumes", i, "bind").get("propagation"),
                 bool(at.mapping(item.get("volume"), "volumes", i, "volume").get("nocopy")),
                 None if size is None else at.parse(values.size_bytes, size, "volumes", i, "tmpfs", "size"))


def _healthcheck(at: _At, raw: Any) -> Healthcheck:
    value = at.mapping(raw, "healthcheck")
    if value.get("disable"):
        return Healthcheck(("NONE",))
    test = value.get("test")
    words = ("CMD-SHELL", test) if isinstance(test, str) else tuple(str(t) for t in test or ())

    def ns(key: str) -> int | None:
        return None if value.get(key) is None else at.parse(values.duration_ns, value[key], "healthcheck", key)

    retries = value.get("retries")
    return Healthcheck(words, ns("interval"), ns("timeout"), ns("start_period"), None if retries is None else
                       at.parse(lambda v: values.count(v, "retry count"), retries, "healthcheck", "retries"))


def _depends(at: _At, raw: Any) -> tuple[tuple[str, Condition], ...]:
    """A list of services, or `{service: {condition}}`."""
    deps: dict[str, Any] = {}
    for dep in raw or []:
        spec = raw[dep] if isinstance(raw, Mapping) else None
        deps[str(dep)] = (spec or {}).get("condition") if isinstance(spec, Mapping) else None
    for dep, cond in deps.items():
        at.choice(cond or "service_started", CONDITIONS, "depends_on", dep)
    return tuple(sorted((d, cast(Condition, c or "service_started")) for d, c in deps.items()))


def _check_published(services: list[Service]) -> None:
    """A port published through the ingress mesh belongs to one service of the swarm: a second one
    is refused here, before anything is deployed (the engine refuses its create half-way)."""
    owner: dict[tuple[int, str], str] = {}
    for s in services:
        for port in s.ports:
            if port.mode != "ingress" or port.published is None:
                continue
            first = owner.setdefault((port.published, port.protocol), s.name)
            if first != s.name:
                raise s.ref.error(f"port {port.published}/{port.protocol} is published by service {first} too",
                                  "publish it from one service (put a proxy in front of both if they share it)",
                                  "ports")


def _check_depends(services: list[Service]) -> None:
    """Every dependency is a service of the stack, and there is no cycle."""
    by_name = {s.name: s for s in services}
    for s in services:
        for dep, _ in s.depends_on:
            if dep not in by_name:
                raise s.ref.error(f"depends on unknown service {dep!r}",
                                  "name a service defined in the file", "depends_on")
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(name: str, path: list[str]) -> None:
        state[name] = 1
        for dep, _ in by_name[name].depends_on:
            if state.get(dep) == 1:
                cycle = " -> ".join([*path[path.index(dep):], dep])
                raise by_name[name].ref.error(f"depends_on cycle: {cycle}",
                                              "remove one of these depends_on entries", "depends_on")
            if dep not in state:
                visit(dep, [*path, dep])
        state[name] = 2

    for s in services:
        if s.name not in state:
            visit(s.name, [s.name])


def _attachments(at: _At, raw: Any) -> tuple[Attachment, ...]:
    if not raw:
        return (Attachment("default"),)
    nets = raw if isinstance(raw, Mapping) else {str(n): None for n in at.listing(raw, "networks")}
    return tuple(Attachment(str(n), tuple(sorted(_strings(at.mapping(cfg, "networks", n).get("aliases")))))
                 for n, cfg in sorted(nets.items()))


def _file_refs(at: _At, kind: str, raw: Any) -> tuple[FileRef, ...]:
    out = []
    for i, item in enumerate(at.listing(raw, kind)):
        ref = item if isinstance(item, Mapping) else {"source": str(item)}
        source = at.text(ref.get("source"), kind, i)
        default = f"/{source}" if kind == "configs" else source
        mode = ref.get("mode", 0o444)
        out.append(FileRef(source, str(ref.get("target") or default), str(ref.get("uid", "0")),
                           str(ref.get("gid", "0")), at.parse(lambda v: values.count(v, "file mode"), mode, kind, i),
                           at.ref(kind, i)))
    return tuple(sorted(out, key=lambda r: r.target))


def _hosts(value: Any) -> list[tuple[str, str]]:
    if isinstance(value, Mapping):
        return [(str(h), str(ip)) for h, ip in value.items()]
    return [(h, ip) for h, _, ip in (str(v).partition(":") for v in value or [])]


def _ulimits(at: _At, value: Mapping[str, Any]) -> tuple[Ulimit, ...]:
    out = []
    for name, limit in sorted(value.items()):
        if isinstance(limit, Mapping):
            soft, hard = limit.get("soft"), limit.get("hard")
        else:
            soft = hard = limit
        number = lambda v: values.count(v, "ulimit", minimum=-1)  # noqa: E731
        out.append(Ulimit(str(name), at.parse(number, soft, "ulimits", name), at.parse(number, hard, "ulimits", name)))
    return tuple(out)


def _external(cfg: Mapping[str, Any]) -> tuple[bool, str | None]:
    ext = cfg.get("external")
    name = cfg.get("name")
    if isinstance(ext, Mapping):
        return True, str(ext.get("name") or name or "") or None
    return bool(ext), None if name is None else str(name)


def _network(key: str, at: _At, cfg: Mapping[str, Any]) -> Network:
    external, name = _external(cfg)
    ipam = at.mapping(cfg.get("ipam"), "ipam")
    pools = []
    for i, pool in enumerate(at.listing(ipam.get("config"), "ipam", "config")):
        pool = at.mapping(pool, "ipam", "config", i)
        item: dict[str, Any] = {api: str(pool[k]) for k, api in
                                (("subnet", "Subnet"), ("ip_range", "IPRange"), ("gateway", "Gateway")) if pool.get(k)}
        if pool.get("aux_addresses"):
            item["AuxiliaryAddresses"] = dict(sorted(pool["aux_addresses"].items()))
        pools.append(item)
    return Network(key, at.ref(), name, external, str(cfg.get("driver") or "overlay"), _labels(cfg.get("driver_opts")),
                   _labels(cfg.get("labels")), bool(cfg.get("attachable")), bool(cfg.get("internal")),
                   bool(cfg.get("enable_ipv6")),
                   Ipam(str(ipam.get("driver") or "default"), tuple(pools), _labels(ipam.get("options")))
                   if ipam else None)


def _volume(key: str, at: _At, cfg: Mapping[str, Any]) -> Volume:
    external, name = _external(cfg)
    return Volume(key, at.ref(), name, external, str(cfg["driver"]) if cfg.get("driver") else None,
                  _labels(cfg.get("driver_opts")), _labels(cfg.get("labels")))


def _blobs(kind: str, data: Mapping[str, Any], locate: Locate) -> tuple[Blob, ...]:
    top = _At(locate, ())
    out = []
    for key, raw in sorted(top.mapping(data.get(f"{kind}s"), f"{kind}s").items()):
        cfg = top.mapping(raw, f"{kind}s", key)
        external, name = _external(cfg)
        out.append(Blob(cast(Any, kind), str(key), locate((f"{kind}s", key)), name, external,
                        None if cfg.get("file") is None else str(cfg["file"]),
                        None if cfg.get("environment") is None else str(cfg["environment"]),
                        None if "content" not in cfg else str(cfg["content"]), _labels(cfg.get("labels"))))
    return tuple(out)
