"""``lineage``: the graph around some assets, with freshness marks, as text, Mermaid, DOT or JSON.

Edges point the way data flows (upstream -> downstream); an order-only dependency
(``deps=``) is an edge of kind ``order``.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping
from typing import Any

from assetflow.select import SelectableGraph

FORMATS = ("text", "mermaid", "dot", "json")
_MERMAID_STYLE = {"fresh": "fill:#d3f9d8,stroke:#2b8a3e", "stale": "fill:#fff3bf,stroke:#e67700",
                  "missing": "fill:#f3d9fa,stroke:#862e9c", "failed": "fill:#ffe3e3,stroke:#c92a2a",
                  "overdue": "fill:#ffe8cc,stroke:#d9480f", "observed": "fill:#e3fafc,stroke:#0b7285"}
_DOT_COLOR = {"fresh": "darkgreen", "stale": "orange3", "missing": "purple", "failed": "red3",
              "overdue": "darkorange", "observed": "cyan4"}


_MERMAID_RESERVED = frozenset({"end", "graph", "subgraph", "flowchart", "style", "class", "classdef", "click",
                               "linkstyle", "direction", "default"})


def _mermaid_id(name: str) -> str:
    return f"{name}_" if name in _MERMAID_RESERVED else name


@dataclasses.dataclass(frozen=True)
class LineageNode:
    name: str
    kind: str  # "asset" | "source"
    state: str | None  # None when states were not computed
    group: str | None


@dataclasses.dataclass(frozen=True)
class LineageEdge:
    upstream: str
    downstream: str
    kind: str  # "data" | "order"


@dataclasses.dataclass(frozen=True)
class Lineage:
    """A subgraph: ``roots`` (what was asked about) and everything reached from them."""

    roots: tuple[str, ...]
    nodes: dict[str, LineageNode]  # in topological order
    edges: tuple[LineageEdge, ...]
    upstream: bool
    downstream: bool

    def ups(self, name: str) -> list[str]:
        return [e.upstream for e in self.edges if e.downstream == name]

    def downs(self, name: str) -> list[str]:
        return [e.downstream for e in self.edges if e.upstream == name]

    def render(self, fmt: str) -> str:
        return {"text": self.to_text, "mermaid": self.to_mermaid, "dot": self.to_dot,
                "json": lambda: json.dumps(self.to_json(), indent=2)}[fmt]()

    def to_json(self) -> dict[str, Any]:
        return {"roots": list(self.roots),
                "nodes": [dataclasses.asdict(n) for n in self.nodes.values()],
                "edges": [dataclasses.asdict(e) for e in self.edges]}

    def _label(self, name: str) -> str:
        node = self.nodes[name]
        mark = node.state or node.kind
        return f"{name} [{mark}]" if node.kind == "asset" else f"{name} (source{', ' + mark if node.state and node.state != 'observed' else ''})"

    def to_text(self) -> str:
        out: list[str] = []
        for root in self.roots:
            out.append(self._label(root))
            if self.upstream:
                self._tree(root, self.ups, "upstream", out)
            if self.downstream:
                self._tree(root, self.downs, "downstream", out)
        return "\n".join(out) + "\n"

    def _tree(self, root: str, children_of: Any, title: str, out: list[str]) -> None:
        children = children_of(root)
        if not children:
            return
        out.append(f"  {title}:")
        seen: set[str] = set()
        stack: list[tuple[str, str, bool]] = [(c, "  ", i == len(children) - 1) for i, c in enumerate(children)][::-1]
        while stack:
            name, prefix, last = stack.pop()
            repeat = name in seen
            out.append(f"{prefix}{'└── ' if last else '├── '}{self._label(name)}{' (see above)' if repeat else ''}")
            if repeat:
                continue
            seen.add(name)
            below = children_of(name)
            inner = prefix + ("    " if last else "│   ")
            stack.extend([(c, inner, i == len(below) - 1) for i, c in enumerate(below)][::-1])

    def to_mermaid(self) -> str:
        lines = ["flowchart LR"]
        for node in self.nodes.values():
            text = node.name + (f"<br/>{node.state}" if node.state else "")
            shape = f'[("{text}")]' if node.kind == "source" else f'["{text}"]'
            lines.append(f"    {_mermaid_id(node.name)}{shape}" + (f":::{node.state}" if node.state else ""))
        for edge in self.edges:
            arrow = "-.->" if edge.kind == "order" else "-->"
            lines.append(f"    {_mermaid_id(edge.upstream)} {arrow} {_mermaid_id(edge.downstream)}")
        used = sorted({n.state for n in self.nodes.values() if n.state})
        lines += [f"    classDef {state} {_MERMAID_STYLE[state]}" for state in used if state in _MERMAID_STYLE]
        return "\n".join(lines) + "\n"

    def to_dot(self) -> str:
        lines = ["digraph lineage {", "    rankdir=LR;", '    node [shape=box, fontname="Helvetica"];']
        for node in self.nodes.values():
            attrs = [f'label="{node.name}' + (f'\\n{node.state}"' if node.state else '"')]
            if node.kind == "source":
                attrs.append("shape=cylinder")
            if node.state in _DOT_COLOR:
                attrs.append(f"color={_DOT_COLOR[node.state]}")
            if node.name in self.roots:
                attrs.append("penwidth=2")
            lines.append(f'    "{node.name}" [{", ".join(attrs)}];')
        for edge in self.edges:
            style = " [style=dashed]" if edge.kind == "order" else ""
            lines.append(f'    "{edge.upstream}" -> "{edge.downstream}"{style};')
        lines.append("}")
        return "\n".join(lines) + "\n"


def build_lineage(
    graph: SelectableGraph,
    roots: Iterable[str],
    *,
    upstream: bool = True,
    downstream: bool = True,
    depth: int | None = None,
    states: Mapping[str, str] | None = None,
) -> Lineage:
    """The roots with their upstream and/or downstream, ``depth`` levels deep (None: all)."""
    roots = tuple(roots)
    reached = set(roots)
    if upstream:
        reached |= graph.ancestors(roots, depth)
    if downstream:
        reached |= graph.descendants(roots, depth)
    order = [n for n in graph.order if n in reached]
    nodes = {n: LineageNode(n, graph.specs[n].kind, (states or {}).get(n), graph.specs[n].group) for n in order}
    edges = []
    for name in order:
        spec: Any = graph.specs[name]
        data = set(getattr(spec, "upstreams", ()))
        for up in spec.inputs:
            if up in reached:
                edges.append(LineageEdge(up, name, "data" if up in data else "order"))
    return Lineage(roots, nodes, tuple(edges), upstream, downstream)

