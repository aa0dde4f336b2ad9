// towers: Graph → tower-level Graph for the paper's model-parallel placement.
//
// "Towers are placement, not graph surgery by hand": the source graph says, per layer, how its output
// is laid out over the towers (`layout`) and whether a conv/dense reads only its own tower's maps
// (`local`) or every tower's (`cross`, `on(t)`). This pass does the surgery, so that the result is an
// ordinary Graph that autodiff and lowering handle unchanged:
//  - a node whose output is split over T towers becomes T nodes `X@t0 … X@t{T-1}`, node `X@tk`
//    computing tower k's channels (units) with groups = 1 on its own tower's slice of the input;
//  - a `cross` / `on(t)` layer reading a split value reads a gather (channel concat) of every tower's
//    slice, `V@gather@tk`, built on the reader's tower; an `on(t)` layer stays one node on tower t;
//  - LRN, pooling, activations, dropout and batch norm run per tower on their slice;
//  - the parameters of a split layer become row slices `X@tk.weight` (output channels / units
//    [k·C/T, (k+1)·C/T) of `X.weight`, PyTorch layout), recorded in `params` so that weights still
//    load and save as the source graph's `<layer>.weight`;
//  - every node gets the device of its tower (tower k on device k); graph inputs are replicated.
// A value produced on one tower and read on another is exactly a cross-tower edge of the source
// graph; compiler/lower-placed.ts turns each such read into a transfer.
import { DiagnosticError, diag } from "./diagnostics.ts";
import { type Graph, type Node, type Param, elementCount } from "./graph.ts";

/** A tower-graph parameter that is a row slice of a source-graph parameter. */
export interface ParamSlice {
  /** The tower graph's parameter, e.g. `conv2@t1.weight`. */
  name: string;
  /** The source graph's parameter, e.g. `conv2.weight`. */
  param: string;
  /** First row (output channel / unit) of the slice, and its row count. */
  rowOffset: number;
  rows: number;
  /** Elements per row: the slice starts at element rowOffset · rowElements of the source tensor. */
  rowElements: number;
}

export interface TowerGraph {
  /** The source graph. */
  source: Graph;
  /** The tower-level graph (towers: 1 per node; ordinary conv/dense with groups 1 or the source's). */
  graph: Graph;
  /** Number of towers = devices. */
  devices: number;
  /** Tower-graph node → the source layer it computes (a slice of), and its device. */
  nodes: Record<string, { layer: string; device: number }>;
  /** Tower-graph parameter → its place in the source parameter (only the sliced ones). */
  params: Record<string, ParamSlice>;
  /** Source node → its tower-graph nodes (one per tower when split, else one). */
  slices: Record<string, string[]>;
}

function unsupported(node: Node, why: string): DiagnosticError {
  return new DiagnosticError(
    diag("AX9001", { message: `model placement: \`${node.name}\` (${node.attrs.op}) ${why}` }, node.span),
  );
}

/** `X@tk`: tower k's slice of source node X. */
export const towerName = (node: string, tower: number) => `${node}@t${tower}`;

/** Slices `graph` into its tower-level graph (see the file comment). */
export function sliceTowers(graph: Graph): TowerGraph {
  const T = graph.towers;
  const nodes: Node[] = [];
  const params: Param[] = [];
  const info: TowerGraph["nodes"] = {};
  const slices: TowerGraph["params"] = {};
  const bySource: TowerGraph["slices"] = {};
  /** Value → its per-tower names (split), or one name and its device (whole; device −1 = replicated). */
  const split = new Map<string, string[]>();
  const whole = new Map<string, { name: string; device: number }>();
  for (const input of graph.inputs) whole.set(input.name, { name: input.name, device: -1 });
  const shapes = new Map<string, number[]>(graph.inputs.map((i) => [i.name, i.shape]));

  const add = (node: Node, layer: string, device: number) => {
    nodes.push(node);
    info[node.name] = { layer, device };
    shapes.set(node.name, node.shape);
  };

  /** The whole value `value` as read on `device`: itself, or a gather of its tower slices there. */
  const gathered = (value: string, device: number, reader: Node): string => {
    const w = whole.get(value);
    if (w) return w.name;
    const parts = split.get(value);
    if (!parts) throw unsupported(reader, `reads \`${value}\`, which is not computed before it`);
    const name = `${value}@gather@t${device}`;
    if (!info[name]) {
      const source = graph.nodes.find((n) => n.name === value)!;
      add(
        {
          name,
          attrs: { op: "concat" },
          inputs: parts,
          shape: source.shape,
          layout: { kind: "on", tower: device },
          params: [],
          macs: 0,
          span: source.span,
        },
        value,
        device,
      );
    }
    return name;
  };

  /** Tower k's slice of split value `value`. */
  const slice = (value: string, k: number, reader: Node): string => {
    const parts = split.get(value);
    if (!parts)
      throw unsupported(reader, `reads \`${value}\` per tower, but it is not split over the towers`);
    return parts[k];
  };

  for (const node of graph.nodes) {
    const { attrs, layout } = node;
    const own = (suffixOf: (p: string) => string) =>
      node.params.map((p) => {
        const param = graph.params.find((q) => q.name === p);
        if (!param) throw unsupported(node, `owns an unknown parameter \`${p}\``);
        return { param, suffix: suffixOf(p) };
      });

    if (layout.kind === "split") {
      if (layout.towers !== T) throw unsupported(node, `is split over ${layout.towers} towers, not ${T}`);
      const rows = node.shape[0];
      if (rows % T !== 0) throw unsupported(node, `has ${rows} channels, not divisible by ${T} towers`);
      const names: string[] = [];
      for (let k = 0; k < T; k++) {
        const name = towerName(node.name, k);
        let inputs: string[];
        let towerAttrs = attrs;
        switch (attrs.op) {
          case "conv":
          case "dense": {
            const local = attrs.towers.kind === "local";
            const x = node.inputs[0];
            inputs = [local ? slice(x, k, node) : gathered(x, k, node)];
            towerAttrs =
              attrs.op === "conv"
                ? { ...attrs, filters: rows / T, groups: 1, towers: { kind: "on", tower: k } }
                : { ...attrs, units: rows / T, groups: 1, towers: { kind: "on", tower: k } };
            break;
          }
          case "lrn":
            if (attrs.groups % T !== 0)
              throw unsupported(node, `has ${attrs.groups} groups over ${T} towers`);
            inputs = [slice(node.inputs[0], k, node)];
            towerAttrs = { ...attrs, groups: attrs.groups / T };
            break;
          case "relu":
          case "tanh":
          case "sigmoid":
          case "maxpool":
          case "avgpool":
          case "dropout":
          case "batchnorm":
            inputs = [slice(node.inputs[0], k, node)];
            break;
          default:
            throw unsupported(node, "cannot be split over towers");
        }
        const towerParams = own((p) => p.slice(node.name.length + 1)).map(({ param, suffix }) => {
          const pname = `${name}.${suffix}`;
          const prow = param.shape[0] / T;
          const rowElements = elementCount(param.shape.slice(1));
          params.push({ ...param, name: pname, shape: [prow, ...param.shape.slice(1)], layer: name });
          slices[pname] = { name: pname, param: param.name, rowOffset: k * prow, rows: prow, rowElements };
          return pname;
        });
        add(
          {
            ...node,
            name,
            attrs: towerAttrs,
            inputs,
            shape: [rows / T, ...node.shape.slice(1)],
            layout: { kind: "on", tower: k },
            params: towerParams,
            macs: node.macs / T,
          },
          node.name,
          k,
        );
        names.push(name);
      }
      split.set(node.name, names);
      bySource[node.name] = names;
      continue;
    }

    // A whole output: on its tower, or (the loss) wherever its input is; the network input stays replicated.
    let device: number;
    if (layout.kind === "on") device = layout.tower;
    else {
      const first = node.inputs[0];
      const w = whole.get(first);
      device = w && w.device >= 0 ? w.device : 0;
      if (node.attrs.op !== "softmax_cross_entropy" && !(w && w.device >= 0))
        throw unsupported(node, "is replicated over the towers; only the loss may be");
    }
    const inputs = node.inputs.map((x) => gathered(x, device, node));
    for (const { param } of own((p) => p)) params.push(param);
    add({ ...node, inputs, layout: { kind: "on", tower: device } }, node.name, device);
    whole.set(node.name, { name: node.name, device });
    bySource[node.name] = [node.name];
  }

  // The logits must be one tensor: gather them onto the loss's device when their layer is split.
  let logits = graph.logits;
  if (split.has(logits)) {
    const loss = nodes.find((n) => n.name === graph.loss);
    logits = loss
      ? loss.inputs[0]
      : gathered(
          logits,
          0,
          graph.nodes.find((n) => n.name === graph.logits)!,
        );
  }
  return {
    source: graph,
    graph: { ...graph, towers: 1, nodes, params, logits },
    devices: T,
    nodes: info,
    params: slices,
    slices: bySource,
  };
}

/**
 * The mask-hash words (lower-train.ts `DropoutSource`) of every dropout node of `towers.graph`: its
 * source layer's index in `original` (default the source graph; hybrid placement slices a part of
 * it), the source's per-example size, and the slice: tower k of T holds the contiguous per-example
 * elements [k·S/T, (k+1)·S/T) (channels / units split along the first per-example axis).
 */
export function dropoutSources(
  towers: TowerGraph,
  original: Graph = towers.source,
): Record<string, { layer: number; perExample: number; offset: number; stride: number }> {
  const out: Record<string, { layer: number; perExample: number; offset: number; stride: number }> = {};
  for (const node of towers.graph.nodes) {
    if (node.attrs.op !== "dropout") continue;
    const source = towers.nodes[node.name].layer;
    const layer = original.nodes.findIndex((n) => n.name === source);
    if (layer < 0) throw new Error(`dropout \`${node.name}\`: no source layer \`${source}\``);
    const k = towers.slices[source].indexOf(node.name);
    const local = elementCount(node.shape);
    out[node.name] = {
      layer,
      perExample: elementCount(original.nodes[layer].shape),
      offset: k * local,
      stride: 1,
    };
  }
  return out;
}
