"""Deploy a compose or stack file onto a swarm over the Docker API.

Compose v1/v2 and v3 stack files alike go through the converter into one typed
stack (bakery.stack), so a file and its converted stack file deploy the same
specs. The files are read, converted and checked before bakery connects:
a mistake in them is exit 2 with its file:line, whatever the engine. Then
networks, volumes, secrets and configs are created, then the services in
`depends_on` order (independent ones together), and bakery waits until
every service has converged. If one does not (image missing, task rejected,
health never reached), every service this deploy touched is rolled back and
the ones it created are removed; volumes are never removed; then bakery
waits for the restored services to run again. Ctrl-C rolls back the same
way and exits 130. --detach submits everything and returns without waiting.
A second deploy of the same file changes nothing.

The engine, first match wins:
  -H ADDR          that address; mutual TLS with --tls*, --cluster NAME's client
                   certificates, or DOCKER_TLS_VERIFY/DOCKER_CERT_PATH
  --cluster NAME   NAME's client certificates (`bakery certs`), at the seed's API
                   of the cluster definition if the one found is NAME's, else at
                   $DOCKER_HOST (neither: exit 2)
  $DOCKER_HOST     with DOCKER_TLS_VERIFY/DOCKER_CERT_PATH
  a cluster definition that is actually found (--config, $BAKERY_CONFIG,
                   ./bakery.yml): its seed's API (tcp://SEED:API_PORT, as `bakery
                   certs` prints) with that cluster's client certificates
  the local socket unix:///var/run/docker.sock
An engine that cannot be reached is exit 4, one line naming the address,
where it came from and what to do.

--dry-run prints the plan. With a reachable engine it is the diff against
the swarm; with none (nothing listens, no socket, TLS refused, not a
manager), it is the plan for an empty swarm, every object a `create`, with
a note on stderr, and exit 0: placement constraints and external objects
are then not checked. A wrong engine setting (--cluster without its
certificates, a TLS file missing) stays exit 2.

A classic-Swarm hint with a pattern (`constraint:node==web*`, `/regex/`, `!=`) is
a constraint on a node label named after it (`node.labels.bakery.hint.<hash>==true`;
the stack file keeps the hint in x-bakery): the plan labels the live nodes the
hint admits, by hostname or engine label, and takes the label off those that no
longer match, before any service is created or updated (`update node NAME` lines);
a rollback puts the old labels back. A node that joins later gets no task until the
next deploy labels it. A hint no live node matches is refused (exit 2, located at
the hint): its tasks would pend forever.

With --output json, stdout is one JSON document whatever happens: the plan
(and the result) with "ok" and "exit_code", or the error (see `bakery --help`).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    BakeryError,
    EnvironmentMissing,
    StrictError,
)
from ..report import Report
from ..swarm.model import Plan, Progress, Result
from .common import add_config, add_output, add_state_dir, cluster_name, config_path, given, load_config

if TYPE_CHECKING:
    from ..stack import Stack
    from ..swarm import ClusterAddress, Endpoint, Engine

def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", metavar="FILE", help="compose or stack file(s); later ones override")
    parser.add_argument("-n", "--name", type=given, help="stack name (default: the first file's directory name)")
    parser.add_argument("--env-file", action="append", default=[], metavar="FILE", help="variables for ${VAR}")
    parser.add_argument("--strict", action="store_true", help="fail (exit 3) on conversion warnings")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="list the conversion's rewrites, notes and what was kept exactly too")
    parser.add_argument("--publish-mode", choices=("ingress", "host"), default="ingress",
                        help="for compose v1/v2 input: publish ports through the routing mesh (default) or "
                             "in host mode")
    parser.add_argument("--image-prefix", help="registry prefix for images (passed to the converter)")
    parser.add_argument(
        "--prune",
        action="store_true",
        help="remove the stack's services, networks, secrets and configs that are no longer "
        "in the file (never volumes)",
    )
    parser.add_argument("--dry-run", action="store_true", help="print the plan and change nothing")
    parser.add_argument("--no-rollback", action="store_true", help="leave a failed deploy as it is")
    parser.add_argument(
        "--detach",
        action="store_true",
        help="create and update in dependency order, then return without waiting for convergence",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=300.0,
        metavar="SECONDS",
        help="give up waiting for convergence (and, after a rollback, for the restored services) "
        "after this long (default 300)",
    )
    parser.add_argument(
        "--stable-for",
        type=float,
        default=2.0,
        metavar="SECONDS",
        help="a service counts as converged after running this long (default 2)",
    )
    parser.add_argument(
        "--max-failures",
        type=int,
        default=3,
        metavar="N",
        help="failed or rejected tasks of one service before the deploy fails (default 3)",
    )
    add_output(parser, text="the plan or the result (progress on stderr)")
    conn = parser.add_argument_group("connection")
    conn.add_argument("-H", "--host", type=given, help="engine address (default: --cluster, $DOCKER_HOST, the cluster "
                      "definition found, the local socket; see above)")
    conn.add_argument("--tlsverify", action="store_true", help="use mutual TLS and verify the engine")
    conn.add_argument("--tlscacert", type=given, metavar="FILE",
                      help="CA certificate (default $DOCKER_CERT_PATH/ca.pem)")
    conn.add_argument("--tlscert", type=given, metavar="FILE", help="client certificate")
    conn.add_argument("--tlskey", type=given, metavar="FILE", help="client key")
    conn.add_argument("--cluster", type=given, metavar="NAME",
                      help="use the client certificates bakery issued for NAME")
    add_config(conn, help="cluster definition: its seed and client certificates are the engine when no -H, "
               "--cluster or $DOCKER_HOST says (default: $BAKERY_CONFIG, else ./bakery.yml if there is one)")
    add_state_dir(conn)


def _stack_name(args: argparse.Namespace) -> str:
    if args.name:
        return str(args.name)
    directory = Path(args.files[0]).resolve().parent.name
    return re.sub(r"[^a-zA-Z0-9_.-]", "", directory).lstrip("_.-").lower() or "stack"


class Interrupted(BakeryError):
    """Ctrl-C before anything was changed: an error like the others, so --output json reports it."""

    exit_code = EXIT_INTERRUPTED


class Target:
    """The engine: chosen by the rule above and reached once, when something first needs it.
    With --dry-run an engine that cannot be reached is not an error: `engine()` is None and
    `problem` says why."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.endpoint: Endpoint | None = None
        self.problem: str | None = None
        self._engine: Engine | None = None
        self._tried = False

    def engine(self) -> Engine | None:
        if self._tried:
            return self._engine
        from .. import swarm

        args = self.args
        self._tried = True
        self.endpoint = swarm.endpoint(
            host=args.host,
            tls_verify=args.tlsverify,
            ca=args.tlscacert,
            cert=args.tlscert,
            key=args.tlskey,
            cluster=cluster_name(args) if args.cluster else None,
            state_dir=args.state_dir,
            config=lambda: _cluster_address(args),
        )
        try:
            self._engine = swarm.connect(self.endpoint)
        except EnvironmentMissing as exc:
            if not args.dry_run:
                raise
            self.problem = str(exc)
        return self._engine

    def to_json(self) -> dict[str, Any]:
        ep = self.endpoint
        return {"host": ep.host if ep else None, "origin": ep.origin if ep else None,
                "reachable": self._engine is not None, "problem": self.problem}


def _cluster_address(args: argparse.Namespace) -> ClusterAddress | None:
    """The seed's API of the cluster definition, when one is actually found (not the defaults)."""
    from ..swarm import ClusterAddress

    path = config_path(args)
    if path is None:
        return None
    cfg = load_config(args)
    seed = f"[{cfg.swarm.seed}]" if ":" in cfg.swarm.seed else cfg.swarm.seed
    return ClusterAddress(cfg.name, f"tcp://{seed}:{cfg.docker.api_port}", path)


def load(args: argparse.Namespace) -> tuple[Stack, Report]:
    """The typed stack (compose and stack files alike go through the converter) and its report.
    What a `docker stack deploy` user would label by hand for a pattern hint, deploy labels itself:
    that finding is left out."""
    from ..compose import convert_files

    result = convert_files(
        [Path(f) for f in args.files],
        env_files=[Path(f) for f in args.env_file],
        strict=False,
        image_prefix=args.image_prefix,
        publish_mode=getattr(args, "publish_mode", "ingress"),
    )
    report = Report([f for f in result.report.findings if f.code != "compose.hint.label_nodes"])
    return result.model, report


class ProgressView:
    """Live per-service lines on stderr: redrawn in place on a terminal, appended otherwise."""

    def __init__(self, stream: Any = None) -> None:
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.lines: dict[str, str] = {}
        self.drawn = 0
        self.start = time.monotonic()

    def __call__(self, p: Progress) -> None:
        counts = "" if p.state in ("unchanged", "removed", "rolled back", "labelled") else f"{p.running}/{p.desired}"
        text = f"{p.name:<32} {p.state:<11} {counts:<5}" + (f"  {p.message}" if p.message else "")
        self.lines[p.name] = text
        if not self.tty:
            print(f"[{time.monotonic() - self.start:6.1f}s] {text}", file=self.stream, flush=True)
            return
        out = f"\x1b[{self.drawn}F" if self.drawn else ""
        out += "".join(f"\x1b[2K{line[:200]}\n" for line in self.lines.values())
        self.drawn = len(self.lines)
        self.stream.write(out)
        self.stream.flush()


def _print_findings(args: argparse.Namespace, report: Report) -> None:
    from ..report import render

    for line in render(report.findings, verbose=args.verbose):
        print(line, file=sys.stderr)


def _strict(args: argparse.Namespace, report: Report) -> None:
    if args.strict and report.warnings:
        _print_findings(args, report)
        raise StrictError(f"{len(report.warnings)} warning(s) and --strict")


def run(args: argparse.Namespace) -> int:
    try:
        target, plan, out = _plan(args)
    except KeyboardInterrupt:
        raise Interrupted("interrupted before anything was changed") from None
    engine = target.engine()
    if args.dry_run:
        if engine is None:
            print(f"bakery deploy: no engine reachable, so the plan assumes an empty swarm: {target.problem}",
                  file=sys.stderr)
        if args.output == "json":
            print(json.dumps(out, indent=2, sort_keys=True))
        else:
            print("\n".join(plan.lines()))
        return EXIT_OK
    assert engine is not None  # without --dry-run, Target raised instead
    from .. import swarm

    progress = ProgressView()  # stderr, so `--output json` stays parseable
    result = swarm.apply(
        engine,
        plan,
        progress=progress,
        timeout=args.timeout,
        rollback=not args.no_rollback,
        stable_for=args.stable_for,
        max_failures=args.max_failures,
        detach=args.detach,
    )
    code = EXIT_INTERRUPTED if result.interrupted else EXIT_OK if result.ok else EXIT_FAILED
    out.update(ok=result.ok, exit_code=code, result=result.to_json())
    if args.output == "json":
        print(json.dumps(out, indent=2, sort_keys=True))
    else:
        _summary(out["stack"], plan, result)
    return code


def _plan(args: argparse.Namespace) -> tuple[Target, Plan, dict[str, Any]]:
    """Read and check the files, then reach the engine (or not, with --dry-run) and diff.
    Nothing is printed on stdout before the one document at the end."""
    from .. import swarm

    stack = _stack_name(args)
    target = Target(args)
    model, report = load(args)
    wanted = swarm.build(stack, model, base_dir=Path(args.files[0]).resolve().parent)
    _strict(args, report)
    plan, found = swarm.plan(target.engine(), wanted, prune=args.prune)
    report.extend(found)
    _strict(args, report)
    if args.output == "text":
        _print_findings(args, report)
    out: dict[str, Any] = {"ok": True, "exit_code": EXIT_OK, "stack": stack, "engine": target.to_json(),
                           "plan": plan.to_json()["changes"], "findings": report.to_json()}
    return target, plan, out


def _summary(stack: str, plan: Plan, result: Result) -> None:
    counts: dict[str, int] = {}
    for c in plan.changes:
        counts[c.action] = counts.get(c.action, 0) + 1
    done = ", ".join(f"{n} {a}" for a, n in sorted(counts.items())) or "nothing to do"
    if result.ok:
        waited = "submitted, not waited for" if any(s.state == "submitted" for s in result.services) else ""
        print(f"stack {stack}: {done} ({result.elapsed:.1f}s{', ' + waited if waited else ''})")
        return
    what = "rolled back" if result.rolled_back else "left as it is (--no-rollback)"
    if result.rollback_converged is True:
        what += "; the restored services run again"
    elif result.rollback_converged is False:
        what += "; some restored services do not run again (see below)"
    why = "was interrupted" if result.interrupted else "failed"
    print(f"stack {stack}: deploy {why} and was {what} ({result.elapsed:.1f}s)")
    for error in result.errors:
        print(f"  {error}")
