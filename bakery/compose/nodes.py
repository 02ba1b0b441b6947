"""The node inventory file for `--nodes FILE`.

A YAML list, one entry per swarm node:

    - hostname: web1
      labels: {zone: a}                 # swarm node labels (node.labels.*)
      engine_labels: {storage: ssd}     # daemon labels (engine.labels.*)

A classic-Swarm glob or regex hint becomes a constraint on a node label named after
it; the report lists the `docker node update --label-add` commands that label the
nodes of this list it admits (for `docker stack deploy`; `bakery deploy` labels the
live nodes itself), and a hint that admits none of them is refused.
"""

from __future__ import annotations

from pathlib import Path

from .. import schema as schema_mod
from ..errors import ComposeError
from ..yamlsrc import read_text
from . import source
from .model import NodeInfo


def load_nodes(path: Path) -> list[NodeInfo]:
    text = read_text(path, ComposeError, "node inventory")
    doc = source.loads(text, str(path))
    schema_mod.validate(doc, schema_mod.load_schema("compose-nodes.json"), ComposeError)
    nodes = [NodeInfo(str(n["hostname"]), {k: str(v) for k, v in (n.get("labels") or {}).items()},
                      {k: str(v) for k, v in (n.get("engine_labels") or {}).items()}) for n in doc.data]
    seen: set[str] = set()
    for i, node in enumerate(nodes):
        if node.hostname in seen:
            raise doc.error((i, "hostname"), f"node {node.hostname!r} is listed twice", "list each node once",
                            cls=ComposeError)
        seen.add(node.hostname)
    return nodes
