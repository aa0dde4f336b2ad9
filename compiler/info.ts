// `alexc info`: the per-layer table (per-tower output shape, parameters, multiply-adds) and totals.
import { elementCount, towerShape, type Graph } from "./graph.ts";
import { layoutText } from "./dump.ts";

export interface LayerInfo {
  layer: string;
  op: string;
  towers: string;
  /** Output shape held by each tower (the full shape when not split). */
  outputPerTower: number[];
  output: number[];
  params: number;
  macs: number;
}

export interface NetworkInfo {
  network: string;
  towers: number;
  classes: number;
  input: { name: string; shape: number[] }[];
  layers: LayerInfo[];
  totals: { params: number; macs: number; layers: number };
}

export function networkInfo(graph: Graph): NetworkInfo {
  const paramSize = new Map(graph.params.map((p) => [p.name, elementCount(p.shape)]));
  const layers = graph.nodes.map((node) => ({
    layer: node.name,
    op: node.attrs.op,
    towers: layoutText(node.layout).slice(1),
    outputPerTower: towerShape(node.shape, node.layout),
    output: node.shape,
    params: node.params.reduce((sum, p) => sum + (paramSize.get(p) ?? 0), 0),
    macs: node.macs,
  }));
  return {
    network: graph.name,
    towers: graph.towers,
    classes: graph.classes,
    input: graph.inputs.map((i) => ({ name: i.name, shape: i.shape })),
    layers,
    totals: {
      params: layers.reduce((s, l) => s + l.params, 0),
      macs: layers.reduce((s, l) => s + l.macs, 0),
      layers: layers.length,
    },
  };
}

const num = (n: number) => n.toLocaleString("en-US");

export function formatInfo(info: NetworkInfo): string {
  const header = ["layer", "op", "towers", "output per tower", "params", "mult-adds"];
  const rows = info.layers.map((l) => [
    l.layer,
    l.op,
    l.towers,
    l.outputPerTower.length ? l.outputPerTower.join("×") : "scalar",
    l.params ? num(l.params) : "",
    l.macs ? num(l.macs) : "",
  ]);
  rows.push(["total", "", "", "", num(info.totals.params), num(info.totals.macs)]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const right = new Set([4, 5]);
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (right.has(i) ? c.padStart(widths[i]) : c.padEnd(widths[i])))
      .join("  ")
      .trimEnd();
  const inputs = info.input.map((i) => `${i.name} [${i.shape.join("×")}]`).join(", ");
  return [
    `network ${info.network}: ${info.towers} tower(s), ${info.classes} classes, input ${inputs}`,
    "",
    line(header),
    line(widths.map((w) => "-".repeat(w))),
    ...rows.slice(0, -1).map(line),
    line(widths.map((w) => "-".repeat(w))),
    line(rows.at(-1)!),
    "",
    `${num(info.totals.params)} parameters, ${num(info.totals.macs)} multiply-adds per image (forward)`,
  ].join("\n");
}
