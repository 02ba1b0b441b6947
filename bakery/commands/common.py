"""The options every command shares, and how each resolves: one set of habits across the CLI.

  --config/-c FILE   --config, then $BAKERY_CONFIG, then ./bakery.yml, then the embedded defaults
  --cluster NAME     the cluster: default the config's `cluster.name`
  --state-dir DIR    $BAKERY_STATE_DIR, else ~/.local/state/bakery
  --output text|json what goes to stdout; with json, errors are JSON too (see cli.py)
  -o/--out FILE      write the result to FILE (never a format name: that is --output)
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import UserError

if TYPE_CHECKING:
    from ..config import ClusterConfig

CONFIG_HELP = "cluster definition (default: $BAKERY_CONFIG, else ./bakery.yml, else the built-in defaults)"
STATE_HELP = "bakery's state: CAs, certificates, cluster records (default: $BAKERY_STATE_DIR or ~/.local/state/bakery)"
FORMATS = ("text", "json")
# A cluster name is a directory under the state dir and a tag in the cloud: DNS-label-like.
CLUSTER_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,62}\Z", re.ASCII)  # as cluster.json says


def given(value: str) -> str:
    """An option's value that must say something: an empty one is a mistake, never "unset"."""
    if not value.strip():
        raise argparse.ArgumentTypeError("an empty value (leave the option out for its default)")
    return value


def _dir(value: str) -> Path:
    return Path(given(value))


def add_config(p: argparse.ArgumentParser | argparse._ArgumentGroup, help: str = CONFIG_HELP) -> None:
    p.add_argument("--config", "-c", type=given, metavar="FILE", help=help)


def add_state_dir(p: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    p.add_argument("--state-dir", type=_dir, metavar="DIR", help=STATE_HELP)


def add_cluster(p: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    p.add_argument("--cluster", type=given, metavar="NAME",
                   help="the cluster (default: cluster.name of the config, 'default')")


def add_output(p: argparse.ArgumentParser, aliases: dict[str, str] | None = None, text: str = "the result",
               json: str = "the same as data, for scripts") -> None:
    """`--output text|json`; `aliases` keeps older spellings working (render's userdata, nodes' table)."""
    known = dict(aliases or {})

    def fmt(value: str) -> str:
        value = known.get(value, value)
        if value not in FORMATS:
            raise argparse.ArgumentTypeError(f"invalid choice: {value!r} (choose from text, json)")
        return value

    p.add_argument("--output", type=fmt, default="text", metavar="text|json",
                   help=f"text (default): {text}; json: {json} (errors too)")


def _out_file(value: str) -> Path:
    if value in (*FORMATS, "yaml", "userdata", "table"):
        raise argparse.ArgumentTypeError(
            f"-o/--out writes a file, and {value!r} looks like a format: for the format use --output {value} "
            f"(to write a file named {value}, say ./{value})")
    return Path(value)


def add_out_file(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("-o", "--out", type=_out_file, metavar="FILE", help=f"write {what} to FILE instead of stdout")


def config_path(args: argparse.Namespace) -> str | None:
    from ..config import find_config

    return find_config(getattr(args, "config", None))


def load_config(args: argparse.Namespace) -> ClusterConfig:
    """The cluster definition, found and validated once per command."""
    cached = getattr(args, "_config", None)
    if cached is None:
        from ..config import load

        cached = load(config_path(args))
        args._config = cached
    return cached


def cluster_name(args: argparse.Namespace) -> str:
    """--cluster, else the config's cluster.name (the defaults say 'default')."""
    explicit = getattr(args, "cluster", None)
    if explicit is None:
        return load_config(args).name
    if not CLUSTER_NAME.match(explicit):
        raise UserError(f"--cluster {explicit!r} is not a valid cluster name",
                        fix="lower-case letters, digits and '-', at most 63, starting with a letter or digit")
    return str(explicit)


def seconds(text: str) -> float:
    """An argparse type: a finite, non-negative number of seconds (nan would never time out)."""
    import math

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: seconds must be a finite number, 0 or more")
    return value


def refuse_local_for_openstack(args: argparse.Namespace, command: str) -> None:
    """`--provider` left at its default (local) for a cluster this state dir knows only from OpenStack: said,
    instead of acting on a local cluster of that name (`down` found nothing, `up` booted a local one)."""
    from ..providers.local.state import record_path
    from ..providers.openstack.daytwo import RECORD
    from ..state import default_root

    state_dir = args.state_dir or default_root()
    name = cluster_name(args)
    if (state_dir / name / RECORD).exists() and not record_path(state_dir, name).exists():
        raise UserError(f"cluster {name!r} was made by `bakery up --provider openstack` (its record: "
                        f"{state_dir / name / RECORD}), and --provider is local by default",
                        fix=f"bakery {command} --provider openstack --cluster {name} ...")
