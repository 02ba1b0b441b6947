"""The disposition of every compose service key: what swarm mode keeps.

One row per key. The converter looks every key of every service up here and
the report is generated from the row, so no key can vanish silently
(tests/unit/test_compose_keys.py checks that every key the schemas allow has
a row, and that the converter handles every row).

Dispositions:
- exact: carried over with the same meaning (possibly renamed or moved
  under `deploy:`).
- approximated: carried over, but something is lost; `note` says what
  (and `fix`, when there is one, what to do about it).
- unsupported: dropped; `note` says why and `fix` what to do instead.
- resolved: consumed while loading (extends, env_file); nothing is lost.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Disposition = Literal["exact", "approximated", "unsupported", "resolved"]
Level = Literal["info", "warning"]

# Input format versions, in order. "1" has no `version:` key.
V2 = ("2.0", "2.1", "2.2", "2.3", "2.4")
V3 = ("3.0", "3.1", "3.2", "3.3", "3.4", "3.5", "3.6", "3.7", "3.8", "3.9", "3.10", "3.11", "3.12", "3.13")
# The Compose Specification (Docker Compose v2): no version, every 2.x and 3.x key, and its own.
SPEC = "spec"
ALL_VERSIONS = ("1", *V2, *V3, SPEC)


@dataclass(frozen=True)
class KeySpec:
    name: str
    kind: str  # schema type name in bakery/compose/schemagen.py
    disposition: Disposition
    note: str
    v1: bool = True  # allowed in version 1 files
    since2: str | None = "2.0"  # first 2.x version with the key; None: not in 2.x
    since3: str | None = None  # first 3.x version with the key; None: not in 3.x
    spec: bool | None = None  # in the Compose Specification; None: if in any 2.x or 3.x version
    fix: str | None = None  # what to do instead, for what is approximated or unsupported

    @property
    def level(self) -> Level:
        return "info" if self.disposition in ("exact", "resolved") else "warning"

    def allowed_in(self, version: str) -> bool:
        if version == "1":
            return self.v1
        if version == SPEC:
            return self.spec if self.spec is not None else (self.since2 is not None or self.since3 is not None)
        since = self.since2 if version.startswith("2") else self.since3
        return since is not None and _minor(version) >= _minor(since)


def _minor(version: str) -> int:
    return int(version.split(".")[1])


def _k(
    name: str,
    kind: str,
    disposition: Disposition,
    note: str,
    *,
    v1: bool = True,
    since2: str | None = "2.0",
    since3: str | None = "3.0",
    spec: bool | None = None,
    fix: str | None = None,
) -> KeySpec:
    return KeySpec(name, kind, disposition, note, v1, since2, since3, spec, fix)


SERVICE_KEYS: dict[str, KeySpec] = {
    k.name: k
    for k in (
        _k("image", "string", "exact", "kept"),
        _k("build", "build", "approximated",
           "swarm does not build images; the image name is kept", fix="build and push the image before deploying"),
        _k("dockerfile", "string", "approximated",
           "swarm does not build images", fix="build and push the image before deploying", since2=None, since3=None),
        _k("command", "command", "exact", "kept"),
        _k("entrypoint", "command", "exact", "kept"),
        _k("environment", "list_or_dict", "exact",
           "kept as a sorted mapping; classic-Swarm hints are removed and become placement constraints"),
        _k("env_file", "string_or_list", "resolved", "read at conversion time and merged into environment"),
        _k("extends", "extends", "resolved", "resolved at load time", since3=None),
        _k("labels", "list_or_dict", "exact",
           "kept as container labels; com.docker.swarm.* hints become placement constraints"),
        _k("hostname", "string", "exact", "kept"),
        _k("user", "string", "exact", "kept"),
        _k("working_dir", "string", "exact", "kept"),
        _k("stdin_open", "bool", "exact", "kept"),
        _k("tty", "bool", "exact", "kept"),
        _k("read_only", "bool", "exact", "kept"),
        _k("stop_signal", "string", "exact", "kept"),
        _k("stop_grace_period", "duration", "exact", "kept", v1=False),
        _k("dns", "string_or_list", "exact", "kept"),
        _k("dns_search", "string_or_list", "exact", "kept"),
        _k("dns_opt", "list_of_strings", "unsupported",
           "the stack format has no resolver options",
           fix="set options in the image's resolv.conf or the daemon's dns-opts",
           v1=False, since3="3.0"),
        _k("extra_hosts", "list_or_dict", "exact", "kept as host:ip entries"),
        _k("cap_add", "list_of_strings", "exact", "kept (needs Docker 20.10+ on the nodes)"),
        _k("cap_drop", "list_of_strings", "exact", "kept (needs Docker 20.10+ on the nodes)"),
        _k("logging", "logging", "exact", "kept", v1=False),
        _k("log_driver", "string", "exact", "moved to logging.driver", since2=None, since3=None),
        _k("log_opt", "dict", "exact", "moved to logging.options", since2=None, since3=None),
        _k("ulimits", "ulimits", "exact", "kept"),
        _k("sysctls", "list_or_dict", "exact", "kept", v1=False, since2="2.1"),
        _k("init", "bool_or_string", "exact", "kept (stack version 3.7)", v1=False, since2="2.2", since3="3.7"),
        _k("isolation", "string", "exact", "kept (stack version 3.5)", v1=False, since2="2.1", since3="3.5"),
        _k("healthcheck", "healthcheck", "exact", "kept", v1=False, since2="2.1"),
        _k("restart", "string", "exact",
           "becomes deploy.restart_policy (no: none, always/unless-stopped: any, on-failure[:N]: on-failure)"),
        _k("scale", "int", "exact", "becomes deploy.replicas", v1=False, since2="2.2", since3=None),
        _k("mem_limit", "size", "exact", "becomes deploy.resources.limits.memory", since3=None),
        _k("mem_reservation", "size", "exact", "becomes deploy.resources.reservations.memory",
           v1=False, since3=None),
        _k("cpus", "number", "exact", "becomes deploy.resources.limits.cpus", v1=False, since2="2.2", since3=None),
        _k("cpu_quota", "number_or_string", "approximated",
           "becomes deploy.resources.limits.cpus = cpu_quota / cpu_period (CFS period itself is lost)",
           since3=None),
        _k("cpu_period", "number_or_string", "approximated",
           "only used to compute deploy.resources.limits.cpus from cpu_quota", v1=False, since2="2.1",
           since3=None),
        _k("pids_limit", "int", "exact", "becomes deploy.resources.limits.pids (stack version 3.9)",
           v1=False, since2="2.1", since3=None),
        _k("cpu_shares", "number_or_string", "unsupported",
           "swarm has no relative CPU weight", fix="set deploy.resources.reservations.cpus", since3=None),
        _k("cpuset", "string", "unsupported", "swarm cannot pin CPUs", fix="use node labels and constraints",
           since3=None),
        _k("cpu_count", "int", "unsupported", "a Windows-only CPU setting swarm does not carry",
           fix="set deploy.resources.limits.cpus",
           v1=False, since2="2.2", since3=None),
        _k("cpu_percent", "int", "unsupported", "a Windows-only CPU setting swarm does not carry",
           fix="set deploy.resources.limits.cpus",
           v1=False, since2="2.2", since3=None),
        _k("cpu_rt_period", "number_or_string", "unsupported", "swarm has no real-time scheduler settings",
           v1=False, since2="2.2", since3=None),
        _k("cpu_rt_runtime", "number_or_string", "unsupported", "swarm has no real-time scheduler settings",
           v1=False, since2="2.2", since3=None),
        _k("memswap_limit", "size", "unsupported", "swarm sets no swap limit", fix="size memory limits instead",
           since3=None),
        _k("mem_swappiness", "int", "unsupported", "swarm has no swappiness setting",
           fix="set vm.swappiness on the nodes",
           since3=None),
        _k("oom_kill_disable", "bool", "unsupported", "swarm cannot disable the OOM killer",
           fix="raise the memory limit",
           v1=False, since2="2.1", since3=None),
        _k("oom_score_adj", "int", "unsupported", "swarm cannot adjust the OOM score of tasks", v1=False,
           since3=None),
        _k("shm_size", "size", "unsupported",
           "swarm cannot size /dev/shm",
           fix="mount a tmpfs at /dev/shm: a long-syntax volume of type tmpfs", since3=None),
        _k("blkio_config", "dict", "unsupported", "swarm has no block-IO weights or limits", v1=False,
           since3=None),
        _k("storage_opt", "dict", "unsupported", "swarm has no per-container storage options",
           v1=False, since2="2.1", since3=None),
        _k("ports", "ports", "exact",
           "kept; a host IP is dropped (swarm publishes on every address) and a lone container port "
           "gets a random published port"),
        _k("expose", "list_of_ports", "approximated",
           "not written: on an overlay network every port of a service is reachable (expose only documented it)"),
        _k("networks", "service_networks", "exact",
           "kept with aliases; static ipv4/ipv6 addresses and link-local IPs are dropped", v1=False),
        _k("network_mode", "string", "approximated",
           "host and none become the swarm networks of that name; bridge becomes the stack network; "
           "service:/container: sharing is not possible", v1=False, since3="3.0"),
        _k("net", "string", "approximated", "treated as network_mode", since2=None, since3=None),
        _k("links", "list_of_strings", "approximated",
           "not written: services reach each other by service name on a shared network; a link alias "
           "(db:database) becomes a network alias of the linked service, seen by every service on that network"),
        _k("external_links", "list_of_strings", "unsupported",
           "swarm services cannot link to containers", fix="attach the service to an external overlay network"),
        _k("depends_on", "depends_on", "approximated",
           "swarm ignores start order; kept as a list, conditions in x-bakery.depends_on for `bakery deploy`",
           v1=False),
        _k("volumes", "service_volumes", "exact",
           "kept; bind mounts need the path on every node and local volumes are per node"),
        _k("volume_driver", "string", "unsupported",
           "the stack format has no per-service volume driver",
           fix="set driver on the top-level volume declaration instead", since3=None, spec=False),
        _k("volumes_from", "list_of_strings", "unsupported",
           "swarm cannot share another container's volumes", fix="declare a named volume for both services",
           since3=None),
        _k("tmpfs", "string_or_list", "approximated",
           "becomes a tmpfs mount (long-syntax volume); mount options other than size are lost", v1=False),
        _k("container_name", "string", "unsupported", "swarm names tasks itself", fix="address the service by name"),
        _k("domainname", "string", "unsupported", "swarm cannot set a domain name", fix="set it in the image"),
        _k("mac_address", "string", "unsupported", "swarm cannot set a MAC address"),
        _k("privileged", "bool", "unsupported",
           "swarm services cannot be privileged", fix="grant the capabilities needed with cap_add"),
        _k("security_opt", "list_of_strings", "unsupported",
           "swarm stacks have no security options (seccomp, AppArmor, SELinux labels)"),
        _k("devices", "list_of_strings", "unsupported",
           "swarm services cannot map devices", fix="run this part with docker run on the node"),
        _k("device_cgroup_rules", "list_of_strings", "unsupported", "swarm cannot set device cgroup rules",
           v1=False, since2="2.3", since3=None),
        _k("cgroup_parent", "string", "unsupported", "swarm places tasks under the daemon's cgroup parent"),
        _k("group_add", "list_of_strings", "unsupported", "swarm stacks ignore supplementary groups",
           fix="use user: uid:gid",
           v1=False, since3=None),
        _k("ipc", "string", "unsupported", "swarm cannot share IPC namespaces"),
        _k("pid", "string", "unsupported", "swarm cannot share PID namespaces"),
        _k("userns_mode", "string", "unsupported", "swarm uses the daemon's user namespace setting",
           v1=False, since2="2.1"),
        _k("runtime", "string", "unsupported", "swarm uses the nodes' default runtime",
           fix="set default-runtime in the nodes' daemon.json",
           v1=False, since2="2.3", since3=None),
        _k("platform", "string", "approximated",
           "becomes node.platform.os/arch placement constraints (the variant is lost)",
           v1=False, since2="2.4", since3=None),
        _k("deploy", "deploy", "exact", "kept", v1=False, since2=None),
        _k("secrets", "list", "exact", "kept", v1=False, since2=None, since3="3.1"),
        _k("configs", "list", "exact", "kept", v1=False, since2=None, since3="3.3"),
        _k("credential_spec", "dict", "exact", "kept", v1=False, since2=None, since3="3.3"),
        # Compose Specification only (files read as Docker Compose v2 reads them).
        _k("profiles", "list_of_strings", "resolved",
           "services outside the active profiles (--profile) are left out; the rest are converted",
           v1=False, since2=None, since3=None, spec=True),
        _k("develop", "dict", "unsupported",
           "swarm has no watch mode (compose watch)", fix="rebuild and redeploy the image instead",
           v1=False, since2=None, since3=None, spec=True),
        _k("pull_policy", "string", "unsupported",
           "swarm resolves and pulls the image at deploy", fix="pin a tag or digest to control what runs",
           v1=False, since2=None, since3=None, spec=True),
        _k("attach", "bool", "unsupported", "swarm has no attached logs", fix="read them with docker service logs",
           v1=False, since2=None, since3=None, spec=True),
        _k("annotations", "list_or_dict", "unsupported",
           "swarm services carry no OCI annotations", fix="use labels", v1=False, since2=None, since3=None, spec=True),
        _k("gpus", "list_or_string", "unsupported",
           "swarm has no GPU requests",
           fix="advertise the GPUs as generic resources on the nodes and reserve them with "
           "deploy.resources.reservations.generic_resources", v1=False, since2=None, since3=None, spec=True),
        _k("uts", "string", "unsupported", "swarm cannot share the host's UTS namespace",
           v1=False, since2=None, since3=None, spec=True),
        _k("cgroup", "string", "unsupported", "swarm uses the daemon's cgroup namespace mode",
           v1=False, since2=None, since3=None, spec=True),
        _k("post_start", "list", "unsupported", "swarm has no lifecycle hooks", fix="run the step in the entrypoint",
           v1=False, since2=None, since3=None, spec=True),
        _k("pre_stop", "list", "unsupported", "swarm has no lifecycle hooks", fix="handle the stop signal instead",
           v1=False, since2=None, since3=None, spec=True),
    )
}

# Top-level network and volume keys and what happens to them.
NETWORK_KEYS: dict[str, KeySpec] = {
    k.name: k
    for k in (
        _k("driver", "string", "exact", "bridge becomes overlay; other drivers are kept"),
        _k("driver_opts", "dict", "exact", "kept"),
        _k("ipam", "ipam", "approximated", "subnets kept; gateway, ip_range and aux_addresses are dropped"),
        _k("external", "external", "exact", "kept"),
        _k("internal", "bool", "exact", "kept"),
        _k("labels", "list_or_dict", "exact", "kept", since2="2.1"),
        _k("name", "string", "exact", "kept (stack version 3.5)", since2="2.1", since3="3.5"),
        _k("enable_ipv6", "bool", "unsupported", "swarm overlay networks here are IPv4", since2="2.1",
           since3=None),
        _k("attachable", "bool", "exact", "kept", since2=None, since3="3.2"),
    )
}

VOLUME_KEYS: dict[str, KeySpec] = {
    k.name: k
    for k in (
        _k("driver", "string", "exact", "kept; a local volume exists per node"),
        _k("driver_opts", "dict", "exact", "kept"),
        _k("external", "external", "exact", "kept"),
        _k("labels", "list_or_dict", "exact", "kept", since2="2.1"),
        _k("name", "string", "exact", "kept (stack version 3.4)", since2="2.1", since3="3.4"),
    )
}


def service_keys_for(version: str) -> list[str]:
    return sorted(k for k, spec in SERVICE_KEYS.items() if spec.allowed_in(version))
