// The architecture diagram's content, before any geometry: one row per layer (graph inputs first),
// one box per tower that holds a slice of the layer's output, and the edges between boxes that carry
// values. Both emitters read this; the SVG emitter reads it through compiler/diagram/layout.ts.
//
// The towers follow compiler/graph.ts: a `split` value has a box in every tower, an `on(t)` value
// one box in tower t, a `replicated` value (the network input, the loss) one box shared by every
// tower. A reader takes its own tower's slice when both ends are split and the layer is not a
// conv/dense that reads across the towers; otherwise every box of the input feeds every box of the
// reader. An edge between two different towers is a cross-tower edge: in the paper's model-parallel
// placement exactly these values travel between the GPUs (compiler/towers.ts).
import { towerShape, type Graph, type Node, type NodeAttrs, type TowerLayout } from "../graph.ts";
import { networkInfo } from "../info.ts";

/**
 * `local`: within one tower; `cross`: from one tower to another; `shared`: to or from a value
 * every tower holds whole (the input image, the loss), which moves no maps between towers.
 */
export type EdgeKind = "local" | "cross" | "shared";

export interface DiagramRow {
  /** Layer (node) or graph-input name. */
  layer: string;
  /** `input` for a graph input, else the node's op. */
  op: string;
  /** The op with its defining sizes, e.g. `conv 11×11 /4`. */
  detail: string;
  /** How the layer uses the towers, e.g. `cross`, `local`, `on(0)`; empty when not a conv/dense. */
  mode: string;
  /** Layer totals over all towers (compiler/info.ts). */
  params: number;
  macs: number;
  output: number[];
}

export interface DiagramBox {
  /** `<layer>@t<k>` for tower k's slice, `<layer>@all` for a value every tower holds. */
  id: string;
  layer: string;
  /** Index into `rows`. */
  row: number;
  /** The tower holding this box, or null when every tower holds the whole value. */
  tower: number | null;
  /** Output shape in this box (the per-tower slice when split). */
  shape: number[];
  /** Parameters and multiply-adds per example computed in this box. */
  params: number;
  macs: number;
}

export interface DiagramEdge {
  /** `<from box>-><to box>`. */
  id: string;
  from: string;
  to: string;
  kind: EdgeKind;
}

export interface DiagramModel {
  network: string;
  towers: number;
  rows: DiagramRow[];
  /** Row order, then tower order (shared boxes have one box per row). */
  boxes: DiagramBox[];
  /** In reader order, then input order, then source tower, then target tower. */
  edges: DiagramEdge[];
  totals: { params: number; macs: number };
}

export const boxId = (layer: string, tower: number | null) =>
  `${layer}@${tower === null ? "all" : `t${tower}`}`;

function towersOf(layout: TowerLayout): (number | null)[] {
  switch (layout.kind) {
    case "replicated":
      return [null];
    case "on":
      return [layout.tower];
    case "split":
      return Array.from({ length: layout.towers }, (_, k) => k);
  }
}

function sizeText(size: [number, number], stride: [number, number]): string {
  const window = size[0] === size[1] ? `${size[0]}×${size[0]}` : `${size[0]}×${size[1]}`;
  const step = stride[0] === stride[1] ? `${stride[0]}` : `${stride[0]},${stride[1]}`;
  return stride[0] === 1 && stride[1] === 1 ? window : `${window} /${step}`;
}

function detailText(attrs: NodeAttrs): string {
  switch (attrs.op) {
    case "conv":
      return `conv ${sizeText(attrs.kernel, attrs.stride)}`;
    case "maxpool":
    case "avgpool":
      return `${attrs.op} ${sizeText(attrs.window, attrs.stride)}`;
    case "lrn":
      return `lrn n=${attrs.size}`;
    case "dropout":
      return `dropout ${attrs.p}`;
    case "softmax_cross_entropy":
      return "softmax + loss";
    default:
      return attrs.op;
  }
}

function modeText(attrs: NodeAttrs): string {
  if (attrs.op !== "conv" && attrs.op !== "dense") return "";
  return attrs.towers.kind === "on" ? `on(${attrs.towers.tower})` : attrs.towers.kind;
}

/** Whether tower k of `node` reads only tower k of its split input (see the file comment). */
function readsOwnTower(node: Node, input: TowerLayout): boolean {
  if (node.layout.kind !== "split" || input.kind !== "split") return false;
  const { attrs } = node;
  return (attrs.op !== "conv" && attrs.op !== "dense") || attrs.towers.kind === "local";
}

export function diagramModel(graph: Graph): DiagramModel {
  const info = networkInfo(graph);
  const rows: DiagramRow[] = [];
  const boxes: DiagramBox[] = [];
  const edges: DiagramEdge[] = [];
  const layouts = new Map<string, TowerLayout>();
  const boxesOf = new Map<string, DiagramBox[]>();

  const addRow = (row: DiagramRow, layout: TowerLayout, shape: number[]) => {
    const index = rows.push(row) - 1;
    const towers = towersOf(layout);
    const perTower = towerShape(shape, layout);
    const own = towers.map((tower) => ({
      id: boxId(row.layer, tower),
      layer: row.layer,
      row: index,
      tower,
      shape: perTower,
      // A split layer's parameters are row slices of equal size (compiler/towers.ts), so each tower
      // holds an equal share; a whole layer holds all of them.
      params: row.params / towers.length,
      macs: row.macs / towers.length,
    }));
    boxes.push(...own);
    boxesOf.set(row.layer, own);
    layouts.set(row.layer, layout);
  };

  for (const input of graph.inputs) {
    const row = { layer: input.name, op: "input", detail: "input", mode: "", params: 0, macs: 0 };
    addRow({ ...row, output: input.shape }, { kind: "replicated" }, input.shape);
  }
  graph.nodes.forEach((node, i) => {
    const layer = info.layers[i];
    addRow(
      {
        layer: node.name,
        op: node.attrs.op,
        detail: detailText(node.attrs),
        mode: modeText(node.attrs),
        params: layer.params,
        macs: layer.macs,
        output: node.shape,
      },
      node.layout,
      node.shape,
    );
    const targets = boxesOf.get(node.name)!;
    const seen = new Set<string>();
    for (const input of node.inputs) {
      const sources = boxesOf.get(input);
      const inputLayout = layouts.get(input);
      if (!sources || !inputLayout) continue; // the checker guarantees inputs come first
      const own = readsOwnTower(node, inputLayout);
      for (const from of sources)
        for (const to of targets) {
          if (own && from.tower !== to.tower) continue;
          const id = `${from.id}->${to.id}`;
          if (seen.has(id)) continue; // concat(a, a) reads one value twice: one edge shows it
          seen.add(id);
          const kind: EdgeKind =
            from.tower === null || to.tower === null ? "shared" : from.tower === to.tower ? "local" : "cross";
          edges.push({ id, from: from.id, to: to.id, kind });
        }
    }
  });
  return {
    network: graph.name,
    towers: graph.towers,
    rows,
    boxes,
    edges,
    totals: { params: info.totals.params, macs: info.totals.macs },
  };
}
