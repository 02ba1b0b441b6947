"""bakery's loader against the real compose tools (testkit.oracles), on every golden convert input.

For each tests/cases/convert/<case>/, the oracle's `config` (Docker Compose v2 for Compose
Specification and 3.x files, docker-compose 1.29 for version 1 and 2.x files) and bakery's
converted stack are brought to one common form per service (images, environment, ports, mounts,
command, entrypoint, healthcheck, depends_on, resources) and compared. Where swarm and compose
legitimately differ, the difference is written out below with its reason (VERDICTS, and the
`_oracle_side` rules); anything else that differs fails.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
from pathlib import Path
from typing import Any

import pytest
from testkit import oracles

from bakery.compose import convert_files
from bakery.compose.nodes import load_nodes
from bakery.compose.values import size_bytes
from bakery.errors import ComposeError

CASES = Path(__file__).resolve().parent.parent / "cases" / "convert"
NAMES = sorted(p.name for p in CASES.iterdir() if p.is_dir())
CORPUS = Path(__file__).resolve().parent.parent / "corpus" / "compose"
CORPUS_FILES = sorted(p.name for p in CORPUS.glob("*.yml") if p.name != "nodes.yml" and not p.name.startswith("common"))
# As tests/integration/test_convert_corpus.py converts the corpus.
CORPUS_ARGS = {"env": {"TAG": "1"}, "nodes": "nodes.yml", "image_prefix": "registry.example/corpus", "profiles": ["*"]}
_CONTAINER_NAME = ("compose refuses container_name with several replicas (one container name per host); swarm "
                   "names tasks itself, so bakery drops container_name (keys.py) and keeps the replicas")
_VOLUME_DRIVER = ("docker-compose 1.27+ checks 2.x files against the merged Compose Specification schema, which "
                  "lacks volume_driver; 2.x had it, and bakery reports it as unsupported (keys.py)")

# Cases where bakery and the oracle do not give the same verdict (convert vs refuse), and why.
VERDICTS = {
    "build-without-image": "swarm cannot build: bakery refuses a build without image (or --image-prefix); "
                           "compose builds it",
    "schema-error": "bakery checks each key against the version that introduced it (scale: 2.2); "
                    "docker-compose 1.27+ checks every 2.x file against the merged Compose Specification schema",
    "unquoted-version": "docker-compose 1.29 refuses a number as version; bakery reads its literal text "
                        "and warns (compose.version.unquoted)",
    **{f"corpus/full-2.{n}.yml": _VOLUME_DRIVER for n in range(5)},
    **{f"corpus/full-3.{n}.yml": _CONTAINER_NAME for n in range(14)},
    "corpus/full-spec.yml": _CONTAINER_NAME,
    "duplicate-key": "PyYAML (docker-compose 1.29) keeps the last of two equal keys; bakery refuses them, "
                     "as Docker Compose v2 does",
}
# Values where bakery deliberately reads a case differently from its oracle:
# case -> [(service, field, key, oracle's value, bakery's value, why)].
VALUES = {
    "corpus/full-1.yml": [
        ("web", "mounts", None, [("volume", "data", "/data", False), ("volume", "html", "/html", True)],
         [("volume", "data", "/data", False), ("bind", "{case}/html", "/html", True)],
         "docker-compose 1.29 prints a version 1 file's ./html:/html bind mount as html:/html (a named "
         "volume); docker-compose 1.x always read it as a bind mount of ./html, and so does bakery"),
    ],
    "env-file-interpolation": [
        ("web", "environment", "D", "single one", "single ${A}",
         "docker-compose 1.29 (Debian's python-dotenv) expands ${VAR} inside single quotes too; bakery keeps "
         "a single-quoted value literal, as Docker Compose v2 and the shell do"),
    ],
}
HINT_KEY = re.compile(r"^(constraint|affinity|reschedule):")
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|ms|s|m|h)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def _args(case: Path) -> dict[str, Any]:
    return json.loads((case / "args.json").read_text()) if (case / "args.json").exists() else {}


def _first_version(case: Path, args: dict[str, Any]) -> str | None:
    import yaml

    first = case / args.get("files", ["docker-compose.yml"])[0]
    try:
        data = yaml.safe_load(first.read_text())
    except yaml.YAMLError:
        return None
    if not isinstance(data, dict):
        return None
    if "version" not in data:
        return "spec" if "services" in data or "include" in data else "1"
    return str(data["version"])


def _oracle_for(case: Path, args: dict[str, Any]) -> str:
    version = _first_version(case, args)
    return "v1" if version is not None and version.split(".")[0] in ("1", "2") else "v2"


def _bakery(case: Path, args: dict[str, Any]) -> tuple[bool, dict[str, Any], str]:
    files = [case / f for f in args.get("files", ["docker-compose.yml"])]
    nodes = load_nodes(case / args["nodes"]) if "nodes" in args else None
    try:
        result = convert_files(files, environ=args.get("env", {}), nodes=nodes,
                               image_prefix=args.get("image_prefix"), profiles=args.get("profiles"),
                               env_files=[case / e for e in args.get("env_files", [])])
    except ComposeError as exc:
        return False, {}, str(exc)
    return True, result.stack, ""


def _oracle(case: Path, args: dict[str, Any], tmp_path: Path) -> oracles.Verdict:
    files = [case / f for f in args.get("files", ["docker-compose.yml"])]
    env_files = [case / e for e in args.get("env_files", [])]
    if _oracle_for(case, args) == "v1":
        return oracles.config_v1(oracles.compose_v1(), files, args.get("env", {}), tmp_path, env_files=env_files)
    return oracles.config_v2(oracles.compose_v2(), files, args.get("env", {}), tmp_path, env_files=env_files,
                             profiles=args.get("profiles"))


# --- the common form --------------------------------------------------------------------------

def _seconds(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, int | float):
        return float(value) / 1e9  # the API's nanoseconds
    total = sum(float(n) * _UNITS[u] for n, u in _DURATION.findall(str(value)))
    return round(total, 6)


def _command(value: Any) -> list[str] | None:
    if value is None:
        return None
    return shlex.split(value) if isinstance(value, str) else [str(v) for v in value]


def _env(value: Any) -> dict[str, str | None]:
    if isinstance(value, list):
        out: dict[str, str | None] = {}
        for entry in value:
            k, sep, v = entry.partition("=")
            out[k] = v if sep else None
        return out
    return {str(k): None if v is None else str(v) for k, v in (value or {}).items()}


def _span(text: str) -> list[int]:
    first, _, last = text.partition("-")
    return list(range(int(first), int(last or first) + 1))


def _port(entry: Any) -> list[tuple[int | None, int, str]]:
    """(published, target, protocol) per port, ranges expanded; a host IP is not part of it
    (swarm publishes on every address: keys.py, the ports row)."""
    if isinstance(entry, dict):
        pub = entry.get("published")
        targets = _span(str(entry["target"]))
        pubs: list[int | None] = _span(str(pub)) if pub not in (None, "") else [None] * len(targets)
        return list(zip(pubs, targets, [entry.get("protocol") or "tcp"] * len(targets), strict=True))
    text, _, proto = str(entry).partition("/")
    parts = text.split(":")
    targets = _span(parts[-1])
    published = _span(parts[-2]) if len(parts) > 1 and parts[-2] else [None] * len(targets)
    return list(zip(published, targets, [proto or "tcp"] * len(targets), strict=True))


def _ports(entries: list[Any]) -> list[tuple[int | None, int, str]]:
    out = [p for entry in entries for p in _port(entry)]
    return sorted(out, key=lambda p: (p[1], p[0] or 0, p[2]))


def _mount(entry: Any, project: Path) -> tuple[str, str | None, str, bool]:
    if isinstance(entry, dict):
        kind = entry.get("type", "volume")
        src = entry.get("source")
        ro = bool(entry.get("read_only"))
        target = entry["target"]
    else:
        parts = str(entry).split(":")
        if len(parts) == 1:
            kind, src, target, ro = "volume", None, parts[0], False
        else:
            src, target = parts[0], parts[1]
            ro = len(parts) > 2 and "ro" in parts[2].split(",")
            kind = "bind" if src.startswith((".", "/", "~")) else "volume"
    if kind == "bind" and src is not None:
        src = str((project / src).resolve()) if not src.startswith("/") else src
    return kind, src, target, ro


def _mounts(svc: dict[str, Any], project: Path) -> list[tuple[str, str | None, str, bool]]:
    out = [_mount(v, project) for v in svc.get("volumes") or []]
    tmpfs = svc.get("tmpfs") or []
    for t in [tmpfs] if isinstance(tmpfs, str) else tmpfs:
        out.append(("tmpfs", None, t.split(":")[0], False))
    return sorted(out, key=lambda m: (m[2], m[0]))


def _health(value: Any) -> dict[str, Any] | None:
    if not value:
        return None
    if value.get("disable"):
        return {"disable": True}
    test = value.get("test")
    if isinstance(test, str):
        test = ["CMD-SHELL", test]
    return {"test": test, "interval": _seconds(value.get("interval")), "timeout": _seconds(value.get("timeout")),
            "retries": value.get("retries"), "start_period": _seconds(value.get("start_period"))}


def _cpus(value: Any) -> float | None:
    return None if value in (None, "", 0) else round(float(value), 6)


def _bytes(value: Any) -> int | None:
    return None if value in (None, "", 0, "0") else size_bytes(value)


def _resources(svc: dict[str, Any]) -> dict[str, Any]:
    res = (svc.get("deploy") or {}).get("resources") or {}
    limits, reservations = res.get("limits") or {}, res.get("reservations") or {}
    cpus = _cpus(svc.get("cpus")) or _cpus(limits.get("cpus"))
    if cpus is None and svc.get("cpu_quota"):
        cpus = round(int(svc["cpu_quota"]) / int(svc.get("cpu_period") or 100000), 6)
    return {"memory": _bytes(svc.get("mem_limit")) or _bytes(limits.get("memory")),
            "memory_reservation": _bytes(svc.get("mem_reservation")) or _bytes(reservations.get("memory")),
            "cpus": cpus, "pids": svc.get("pids_limit") or limits.get("pids") or None}


def common(svc: dict[str, Any], project: Path, depends: dict[str, str] | None = None) -> dict[str, Any]:
    dep = svc.get("depends_on") or {}
    if depends is None:
        depends = {k: (v or {}).get("condition", "service_started") for k, v in dep.items()} \
            if isinstance(dep, dict) else {k: "service_started" for k in dep}
    return {
        "image": svc.get("image"),
        "environment": _env(svc.get("environment")),
        "ports": _ports(svc.get("ports") or []),
        "mounts": _mounts(svc, project),
        "command": _command(svc.get("command")),
        "entrypoint": _command(svc.get("entrypoint")),
        "healthcheck": _health(svc.get("healthcheck")),
        "depends_on": depends,
        "resources": _resources(svc),
    }


def _bakery_side(stack: dict[str, Any], project: Path) -> dict[str, dict[str, Any]]:
    conditions = (stack.get("x-bakery") or {}).get("depends_on") or {}
    out = {}
    for name, svc in stack["services"].items():
        depends = dict(conditions.get(name) or {k: "service_started" for k in svc.get("depends_on") or []})
        item = common(svc, project, depends)
        # The stack file is interpolated again by `docker stack deploy`: bakery writes a literal $ as $$.
        item["environment"] = {k: v.replace("$$", "$") if v else v for k, v in item["environment"].items()}
        item["image"] = item["image"].replace("$$", "$") if item["image"] else item["image"]
        out[name] = item
    return out


def _unescape(value: Any) -> Any:
    """`config` prints a literal $ as $$ (so that its output loads again); the common form has $."""
    if isinstance(value, str):
        return value.replace("$$", "$")
    if isinstance(value, dict):
        return {k: _unescape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unescape(v) for v in value]
    return value


def _oracle_side(model: dict[str, Any], project: Path, bakery_stack: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The oracle's services in the common form, with the differences swarm makes on purpose applied."""
    model = _unescape(model)
    out = {}
    for name, svc in model.get("services", {}).items():
        item = common(svc, project)
        # Classic-Swarm hints become placement constraints; left in the environment they would be
        # literal variables named `constraint:node` (docs/ARCHITECTURE.md, compose/hints.py).
        item["environment"] = {k: v for k, v in item["environment"].items() if not HINT_KEY.match(k)}
        # Swarm publishes on every address: a port's host IP is dropped (keys.py, ports row); it is
        # already outside the common form. A lone container port gets a random published port in both.
        # An optional dependency (required: false) on a service its profiles leave out: compose keeps
        # the entry and skips it when starting; a stack cannot name a service it lacks, so bakery drops it.
        for dep, spec in (svc.get("depends_on") or {}).items():
            if isinstance(spec, dict) and spec.get("required") is False and dep not in model["services"]:
                item["depends_on"].pop(dep, None)
        b = (bakery_stack.get("services") or {}).get(name) or {}
        if svc.get("build") and not svc.get("image") and b.get("image"):
            # --image-prefix names the image compose would have built.
            item["image"] = b["image"]
        out[name] = item
    return out


def _copy(source: Path, tmp_path: Path) -> Path:
    """The case in tmp_path, with the build contexts it names (the oracles check that they exist)."""
    import yaml

    case = tmp_path / "case"
    shutil.copytree(source, case)
    for f in case.glob("*.yml"):
        try:
            data = yaml.safe_load(f.read_text())
        except yaml.YAMLError:
            continue
        services = (data.get("services") if isinstance(data, dict) and "services" in data else data) or {}
        for svc in services.values() if isinstance(services, dict) else ():
            build = svc.get("build") if isinstance(svc, dict) else None
            context = build.get("context", ".") if isinstance(build, dict) else build
            if isinstance(context, str) and "$" not in context:
                (case / context).mkdir(parents=True, exist_ok=True)
    return case


@pytest.mark.parametrize("name", NAMES + [f"corpus/{f}" for f in CORPUS_FILES])
def test_oracle_agrees(name, tmp_path):
    if name.startswith("corpus/"):
        case = _copy(CORPUS, tmp_path)
        args = {**CORPUS_ARGS, "files": [name.removeprefix("corpus/")]}
    else:
        case = _copy(CASES / name, tmp_path)
        args = _args(case)
    work = tmp_path / "work"
    work.mkdir()
    oracle = _oracle(case, args, work)
    ok, stack, error = _bakery(case, args)
    if name in VERDICTS:
        assert ok != oracle.ok, f"{name} was listed as differing ({VERDICTS[name]}); now both say {ok}"
        return
    assert ok == oracle.ok, (f"bakery {'converts' if ok else 'refuses'} ({error}), the oracle "
                             f"{'accepts' if oracle.ok else 'refuses'} ({oracle.error})")
    if not ok:
        return
    ours = _bakery_side(stack, case)
    theirs = _oracle_side(oracle.model, case, stack)
    for svc, field, key, said, ours_is, _why in VALUES.get(name, []):
        said, ours_is = _at(said, case), _at(ours_is, case)
        now = theirs[svc][field] if key is None else theirs[svc][field][key]
        assert now == said, f"the oracle no longer says {said!r} for {svc}.{field}"
        if key is None:
            theirs[svc][field] = ours_is
        else:
            theirs[svc][field][key] = ours_is
    assert sorted(ours) == sorted(theirs), "different services"
    for svc in sorted(ours):
        for key in ours[svc]:
            assert ours[svc][key] == theirs[svc][key], f"services.{svc} {key}: bakery {ours[svc][key]!r}, " \
                                                       f"oracle {theirs[svc][key]!r}"


def _at(value: Any, case: Path) -> Any:
    """`{case}` in an expected value: the copied case's folder."""
    if isinstance(value, str):
        return value.replace("{case}", str(case))
    if isinstance(value, list | tuple):
        return type(value)(_at(v, case) for v in value)
    return value
