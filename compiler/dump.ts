// The Graph as text: one SSA binding per line with its shape and tower layout, e.g.
//   %conv2: f32[256,27,27] @split(2) = conv(%pool1) {filters=256, kernel=5x5, stride=1x1, pad=2,2,2,2, groups=2, towers=local}
import { towerShape, type Graph, type NodeAttrs, type TowerLayout } from "./graph.ts";

export function layoutText(layout: TowerLayout): string {
  switch (layout.kind) {
    case "replicated":
      return "@all";
    case "split":
      return `@split(${layout.towers})`;
    case "on":
      return `@tower${layout.tower}`;
  }
}

function attrText(attrs: NodeAttrs): string {
  const parts: string[] = [];
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "op") continue;
    let text: string;
    if (Array.isArray(value)) text = value.join("x");
    else if (typeof value === "object" && value !== null) {
      text =
        "kind" in value
          ? value.kind === "on"
            ? `on(${(value as { tower: number }).tower})`
            : String(value.kind)
          : Object.values(value).join(",");
    } else text = String(value);
    parts.push(`${key}=${text}`);
  }
  return parts.length ? ` {${parts.join(", ")}}` : "";
}

export function dumpGraph(graph: Graph): string {
  const lines = [`network ${graph.name} (towers=${graph.towers}, classes=${graph.classes})`];
  for (const input of graph.inputs)
    lines.push(`%${input.name}: ${input.dtype}[${input.shape.join(",")}] @all = input`);
  for (const p of graph.params)
    lines.push(
      `%${p.name}: f32[${p.shape.join(",")}] = param ${p.init.kind === "normal" ? `normal(${p.init.mean}, ${p.init.std})` : `constant(${p.init.value})`}`,
    );
  for (const node of graph.nodes) {
    const perTower =
      node.layout.kind === "split" ? ` (per tower [${towerShape(node.shape, node.layout).join(",")}])` : "";
    const args = [...node.inputs, ...node.params].map((n) => `%${n}`).join(", ");
    lines.push(
      `%${node.name}: f32[${node.shape.join(",")}] ${layoutText(node.layout)} = ${node.attrs.op}(${args})${attrText(node.attrs)}${perTower}`,
    );
  }
  lines.push(`logits = %${graph.logits}; loss = %${graph.loss}`);
  return lines.join("\n");
}
