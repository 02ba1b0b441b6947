"""Convert docker-compose v1/v2.x/v3 and Compose Specification files into a swarm-mode v3 stack file.

The stack YAML goes to stdout (or -o FILE); the report goes to stderr, one
heading per service (network, volume; `file:` for the file as a whole). It is
short: what was dropped or approximated, and warnings. -v adds what was
rewritten into another form (a classic-Swarm hint into a placement constraint,
restart: unless-stopped into condition any), notes, and the keys kept exactly.

With --output json the report is JSON on stdout, every finding whatever -v:
  {"version": "3.7", "source_version": "2.0", "ok": true,
   "findings": [{"severity": "warning", "kind": "lost", "subject": "service web",
                 "code": "compose.key.unsupported", "message": "...", "fix": "...",
                 "source": "docker-compose.yml", "line": 6, "column": 17,
                 "path": "services.web.privileged"}, ...],
   "stack": {...}}
severity: error, warning, info. kind: lost (dropped), approximated (kept with a
loss), rewritten (the same meaning in another form), kept (kept exactly),
warning, note. subject: "service NAME", "network NAME", "volume NAME" or null.
fix: what to do instead, or null when there is nothing to do. "stack" is there
unless -o is given or --strict failed.
Relative host paths (bind sources like ./html, secret and config files) are
written relative to the stack file: docker resolves them against the stack
file's folder, so with -o elsewhere they are rewritten to name the same place
(stdout: relative to the first compose file's folder).

Several -f files are merged with docker-compose's override rules. Variables
come from the environment and from the .env file beside the first file (or
--env-file, which replaces it).

A classic-Swarm hint with a pattern (constraint:node==web*, /regex/, or != with a
pattern, on node or an engine label) becomes a constraint on a node label named
after the hint, node.labels.bakery.hint.<hash>==true (the same label at every
conversion), and the hint is kept in the file's x-bakery.node_labels. `bakery
deploy` labels the live nodes the hint admits and unlabels the others at every
deploy, so a node added later gets tasks only once a deploy has matched it; the
label of a hint no service names any more is taken off the nodes. For
`docker stack deploy`, the nodes must carry the label first: the report (a
warning) gives the `docker node update --label-add LABEL=true NODE` commands,
one per node of --nodes FILE the hint admits. Without --nodes it still
converts, and the report says which nodes to label. --nodes FILE is a YAML list
of the swarm's nodes:

  - hostname: web1
    labels: {zone: a}               # swarm node labels
    engine_labels: {storage: ssd}   # daemon labels

A pattern that admits none of them is refused (its tasks would pend forever).

Exit codes: 0 converted, 2 bad input, 3 warnings with --strict (nothing written).
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..stack.model import Stack

from ..errors import EXIT_OK, EXIT_STRICT, UserError
from ..report import Report, counts, render
from .common import add_out_file, add_output


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", type=Path, help="compose file (docker-compose.yml)")
    parser.add_argument("-f", "--file", dest="more", type=Path, action="append", default=[],
                        metavar="FILE", help="another compose file merged over the first (repeatable)")
    add_out_file(parser, "the stack")
    add_output(parser, text="the stack on stdout, the report on stderr", json="the report (and the stack unless -o)")
    parser.add_argument("--strict", action="store_true",
                        help="fail (exit 3) on any warning, the labelling step of a pattern hint included "
                        "(the file alone does not place its tasks under docker stack deploy)")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="the report lists rewrites, notes and what was kept exactly too")
    parser.add_argument("--env-file", type=Path, action="append", default=[], metavar="F",
                        help="variables for interpolation (replaces the .env beside the file; repeatable)")
    parser.add_argument("--publish-mode", choices=("ingress", "host"), default="ingress",
                        help="ingress: swarm's routing mesh (default); host: publish every port on the node "
                             "running the task (needs no IPVS; one task per node per port)")
    parser.add_argument("--image-prefix", metavar="P",
                        help="for services with build but no image: use P/SERVICE as the image")
    parser.add_argument("--nodes", type=Path, metavar="F", help="node inventory (YAML list, see above)")
    parser.add_argument("--profile", dest="profiles", action="append", default=[], metavar="NAME",
                        help="Compose Specification profile to activate (repeatable; '*' for all; default: "
                             "$COMPOSE_PROFILES); services without profiles are always converted")


def _print_report(report: Report, summary: str, verbose: bool) -> None:
    for line in render(report.findings, verbose=verbose):
        print(line, file=sys.stderr)
    hidden = counts(f for f in report.findings if f.severity == "info")
    if hidden and not verbose:
        words = (("rewritten", "rewrite(s)"), ("note", "note(s)"))
        parts = [f"{hidden[k]} {word}" for k, word in words if hidden.get(k)]
        summary += f"; -v lists {' and '.join(parts) + ' and ' if parts else ''}what was kept exactly"
    print(summary, file=sys.stderr)


def _refuse_what_a_stack_file_cannot_hold(model: Stack) -> None:
    """A secret from a variable or a config with inline content (the Compose Specification's) has no
    place in a v3 stack file: `docker stack deploy` refuses the file. `bakery deploy` of the compose
    file creates them, so that is the way, not a file that fails later."""
    for blob in (*model.secrets, *model.configs):
        key = "environment" if blob.environment is not None else "content" if blob.content is not None else None
        if key is not None:
            raise blob.ref.error(
                f"a {blob.kind} {'from a variable' if key == 'environment' else 'with inline content'} has no place "
                "in a v3 stack file (docker stack deploy refuses the file)",
                f"deploy the compose file itself with bakery deploy (it creates the {blob.kind}), or give the "
                f"{blob.kind} a file: instead", key)


def run(args: argparse.Namespace) -> int:
    from ..compose import convert_files, dumps
    from ..compose.emit import rebase
    from ..compose.nodes import load_nodes

    if args.out is not None and args.out.is_dir():
        raise UserError(f"-o {args.out} is a directory", fix="give a file name such as stack.yml")
    nodes = load_nodes(args.nodes) if args.nodes else None
    result = convert_files([args.file, *args.more], env_files=args.env_file, strict=False,
                           image_prefix=args.image_prefix, nodes=nodes, publish_mode=args.publish_mode,
                           profiles=args.profiles)
    # What was built lives until the process ends and holds no cycles: out of the cyclic GC's passes,
    # which would otherwise walk all of it while the report and the file are written (measured: the
    # report of 1,000 services 30 ms with them, 5 ms without).
    gc.freeze()
    _refuse_what_a_stack_file_cannot_hold(result.model)
    report = result.report
    failed = args.strict and bool(report.warnings)
    services = len(result.stack.get("services", {}))
    summary = (f"converted {services} service(s) from compose {result.source_version} to stack "
               f"{result.version}: {len(report.warnings)} warning(s)")
    if failed:
        summary += "; --strict: nothing written"
    stack = result.stack
    if args.out is not None:  # relative paths keep naming the same folder from where the file goes
        stack = rebase(stack, Path(args.file).parent, args.out.parent)
    text = dumps(stack)
    if args.out is not None and not failed:  # written before the report: a failure is the one thing said
        try:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise UserError(f"cannot write {args.out}: {exc.strerror}",
                            fix="give -o a file in a folder you can write") from None
    if args.output == "json":
        doc = {"version": result.version, "source_version": result.source_version, "ok": not failed,
               "findings": report.to_json()}
        if failed:
            doc |= {"exit_code": EXIT_STRICT,
                    "error": f"--strict: {len(report.warnings)} warning(s), nothing written"}
        if args.out is None and not failed:
            doc["stack"] = result.stack
        json.dump(doc, sys.stdout, indent=1, sort_keys=True)
        sys.stdout.write("\n")
    else:
        _print_report(report, summary, args.verbose)
    if failed:
        return EXIT_STRICT
    if args.out is None and args.output == "text":
        sys.stdout.write(text)
    return EXIT_OK
