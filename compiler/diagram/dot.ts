// The architecture diagram as Graphviz DOT, for readers who lay graphs out with their own tools:
// one cluster per tower, boxes every tower holds outside the clusters, one rank per layer (so the
// towers' parts of a layer sit side by side, as in the paper's Figure 2), and cross-tower edges
// dashed red where tower-local ones are plain. Every identifier and label is a quoted string.
import type { Graph } from "../graph.ts";
import { diagramModel, type DiagramBox, type DiagramModel, type EdgeKind } from "./model.ts";
import { dotQuote as q, groupDigits, paramsText, shapeText } from "./text.ts";

const edgeAttrs: Record<EdgeKind, string> = {
  local: `color="#495057"`,
  cross: `color="#e03131", style=dashed, penwidth=2`,
  shared: `color="#adb5bd"`,
};

const fills: Record<string, string> = {
  conv: "#dbe4ff",
  dense: "#d3f9d8",
  maxpool: "#fff3bf",
  avgpool: "#fff3bf",
  lrn: "#f3d9fa",
  batchnorm: "#f3d9fa",
  input: "#ffffff",
  softmax_cross_entropy: "#ffffff",
};

function nodeLine(model: DiagramModel, box: DiagramBox, indent: string): string {
  const row = model.rows[box.row];
  const lines = [box.layer, row.detail, shapeText(box.shape)];
  if (box.params) lines.push(paramsText(box.params));
  const where = box.tower === null ? "every tower" : `tower ${box.tower}`;
  const tooltip = `${box.layer} (${where})${row.mode ? `, towers: ${row.mode}` : ""}`;
  const fill = fills[row.op] ?? "#f8f9fa";
  return `${indent}${q(box.id)} [label=${q(lines.join("\n"))}, tooltip=${q(tooltip)}, fillcolor=${q(fill)}];`;
}

export function renderDot(model: DiagramModel): string {
  const towers = Math.max(1, model.towers);
  const caption = [
    `${model.network}: ${model.towers} tower${model.towers === 1 ? "" : "s"}, ${groupDigits(model.totals.params)} parameters`,
    "each box: one tower's output shape and parameters; solid: tower-local; dashed red: cross-tower",
  ].join("\n");
  const out = [
    `digraph ${q(model.network)} {`,
    `  graph [rankdir=TB, newrank=true, nodesep=0.35, ranksep=0.3, fontname="DejaVu Sans", labelloc=t, label=${q(caption)}];`,
    `  node [shape=box, style="rounded,filled", fontname="DejaVu Sans", fontsize=10, color="#495057"];`,
    `  edge [arrowsize=0.6];`,
  ];
  for (const box of model.boxes.filter((b) => b.tower === null)) out.push(nodeLine(model, box, "  "));
  for (let t = 0; t < towers; t++) {
    const own = model.boxes.filter((b) => b.tower === t);
    out.push(
      `  subgraph ${q(`cluster_tower${t}`)} {`,
      `    graph [label=${q(`tower ${t}`)}, style="rounded,filled", fillcolor="#f1f3f5", color="#ced4da"];`,
      ...own.map((box) => nodeLine(model, box, "    ")),
      "  }",
    );
  }
  // newrank lets a rank cross cluster borders: each layer's tower parts share one rank.
  model.rows.forEach((_, r) => {
    const ids = model.boxes.filter((b) => b.row === r).map((b) => q(b.id));
    if (ids.length > 1) out.push(`  { rank=same; ${ids.join("; ")}; }`);
  });
  for (const edge of model.edges)
    out.push(`  ${q(edge.from)} -> ${q(edge.to)} [class=${q(edge.kind)}, ${edgeAttrs[edge.kind]}];`);
  out.push("}", "");
  return out.join("\n");
}

export function dotDiagram(graph: Graph): string {
  return renderDot(diagramModel(graph));
}
