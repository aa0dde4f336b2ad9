// Placement analysis: where each layer of a training step runs on two devices, what each device
// computes, stores and sends, for three strategies. Plain data, no GPU; `alexc info --placement`
// prints it; the per-device programs (DeviceProgram, not yet built) are meant to follow the same
// node assignment (`nodes`) and transfer list (`transfers`).
//
// Strategies (two devices, batch B; device 0 takes ⌈B/2⌉ examples where the batch is split):
//  - `model` — the paper (2012): tower t's slice of every split tensor lives on device t, an `on(t)`
//    layer runs whole on device t, and every device sees all B examples. A layer that reads all towers'
//    maps (`towers: cross` / `on(t)`) first receives the other device's slice: for AlexNet pool2 → conv3,
//    pool5 → fc6, drop6 → fc7 and drop7 → fc8 (to device 0 only). Tower-local layers never transfer.
//  - `data` — each device runs the whole network on its half of the batch; after the backward pass
//    each device sends all its parameter gradients to the other (naive exchange, both directions
//    counted, no ring/tree all-reduce) and both apply the same summed update to identical replicas.
//  - `hybrid` — Krizhevsky 2014, "One weird trick": every layer before the first dense layer is
//    data-parallel (half batch each, replicated parameters, gradients exchanged as in `data`); from the
//    first dense layer on the layers are model-parallel over all B examples and follow the network's
//    tower annotation, exactly as in `model`: a split dense layer is divided by output units (fc6, fc7),
//    an `on(t)` layer runs whole on device t (fc8 on device 0, as in the paper's towers). At the
//    boundary each device gathers the other's conv output (pool5) for the other half batch — the
//    paper's scheme (a), without its pipelining of scheme (b), which moves the same bytes.
//
// Transfers: the backward pass mirrors every forward transfer of a tensor that needs a gradient: the
// consumer's device sends back the partial gradient of the received part (same bytes), and the owner
// adds it to its own partial when it ran the same consumer (one FLOP per element). Graph inputs (the
// image batch) are loaded from the host by every device that needs them and never transferred.
//
// FLOPs per training step: place-flops.ts.
// Bytes (f32): parameters held (replicas count on each device; momentum buffers, another as much,
// are not included); activations = every forward output a device computes for its examples + the
// graph input it loads + the foreign slices it receives (kept for the weight gradient), each counted
// once, without buffer reuse or fusion — an upper bound that compiler/memory refines; the scalar loss
// and dropout masks are not counted; bytes sent and received per step, by phase.
import { diag, DiagnosticError } from "./diagnostics.ts";
import { elementCount, type Graph, type Node } from "./graph.ts";
import { UPDATE_FLOPS, backwardFlops, forwardFlops } from "./place-flops.ts";

export const STRATEGIES = ["model", "data", "hybrid"] as const;
export type Strategy = (typeof STRATEGIES)[number];

export type TransferPhase = "forward" | "backward" | "gradient-sum";

export interface TransferOp {
  /** The tensor moved: a layer output (forward), `<tensor>.grad` (backward), `<param>.grad` (gradient-sum). */
  tensor: string;
  from: number;
  to: number;
  bytes: number;
  phase: TransferPhase;
}

export interface Flops {
  forward: number;
  backward: number;
  update: number;
  total: number;
}

export interface ByPhase {
  forward: number;
  backward: number;
  gradientSum: number;
  total: number;
}

export interface DeviceLoad {
  device: number;
  flops: Flops;
  paramBytes: number;
  activationBytes: number;
  sent: ByPhase;
  received: ByPhase;
}

/** How one node is spread over the devices. */
export interface NodePlacement {
  node: string;
  parallel: "model" | "data";
  /** Fraction of the node's channels (and work, and parameters) on each device. */
  share: number[];
  /** Examples of the batch each device runs the node on. */
  examples: number[];
}

export interface Placement {
  network: string;
  strategy: Strategy;
  batch: number;
  devices: DeviceLoad[];
  nodes: NodePlacement[];
  transfers: TransferOp[];
  totals: { flops: Flops; paramBytes: number; activationBytes: number; transferBytes: number };
}

export interface PlaceOptions {
  batch: number;
  /** Only two devices are modelled (the paper's two GPUs). */
  devices?: 2;
}

const F32 = 4;

export function placeNetwork(graph: Graph, strategy: Strategy, opts: PlaceOptions): Placement {
  const n = opts.devices ?? 2;
  if (n !== 2) throw new RangeError(`placement models two devices, got ${n}`);
  if (!Number.isInteger(opts.batch) || opts.batch < 1)
    throw new RangeError(`batch must be a positive integer, got ${opts.batch}`);
  if (strategy !== "data" && graph.towers !== n)
    throw new DiagnosticError(
      diag("AX3003", { strategy, devices: n, network: graph.name, towers: graph.towers }, undefined, {
        help: "use `--placement data`, which needs no towers",
      }),
    );
  const B = opts.batch;
  const devs = [0, 1];
  const byName = new Map(graph.nodes.map((node) => [node.name, node]));
  const inputNames = new Set(graph.inputs.map((i) => i.name));
  const paramSize = new Map(graph.params.map((p) => [p.name, elementCount(p.shape)]));
  const trainable = new Map(graph.params.map((p) => [p.name, p.trainable]));

  const placed = assignNodes(graph, strategy, B);

  // A tensor needs a gradient when some trainable parameter lies upstream of it.
  const needsGrad = new Set<string>();
  for (const node of graph.nodes) {
    const own = node.params.some((p) => trainable.get(p));
    if (own || node.inputs.some((x) => needsGrad.has(x))) needsGrad.add(node.name);
  }

  const loads: DeviceLoad[] = devs.map((device) => ({
    device,
    flops: { forward: 0, backward: 0, update: 0, total: 0 },
    paramBytes: 0,
    activationBytes: 0,
    sent: { forward: 0, backward: 0, gradientSum: 0, total: 0 },
    received: { forward: 0, backward: 0, gradientSum: 0, total: 0 },
  }));

  // Compute, parameters and activations.
  const inputExamples = new Map<string, number[]>();
  for (const node of graph.nodes) {
    const p = placed.get(node.name)!;
    const fwd = forwardFlops(node, byName);
    const bwd = backwardFlops(node, byName, needsGrad);
    const params = node.params.map((name) => ({
      elements: paramSize.get(name) ?? 0,
      trainable: trainable.get(name) ?? false,
    }));
    const perExample = node.shape.length === 0 ? 0 : elementCount(node.shape);
    for (const d of devs) {
      const work = p.share[d] * p.examples[d];
      if (p.share[d] === 0) continue;
      loads[d].flops.forward += fwd * work;
      loads[d].flops.backward += bwd * work;
      loads[d].activationBytes += perExample * work * F32;
      for (const param of params) {
        const held = param.elements * p.share[d];
        loads[d].paramBytes += held * F32;
        if (param.trainable) loads[d].flops.update += held * (UPDATE_FLOPS + (p.parallel === "data" ? 1 : 0));
      }
    }
    for (const x of node.inputs.filter((x) => inputNames.has(x))) {
      const seen = inputExamples.get(x) ?? [0, 0];
      inputExamples.set(
        x,
        seen.map((e, d) => Math.max(e, p.share[d] > 0 ? p.examples[d] : 0)),
      );
    }
  }
  for (const input of graph.inputs) {
    const examples = inputExamples.get(input.name) ?? [0, 0];
    for (const d of devs) loads[d].activationBytes += elementCount(input.shape) * examples[d] * F32;
  }

  const moves = forwardMoves(graph, placed, byName);
  const transfers: TransferOp[] = [];
  for (const m of moves.values()) {
    const bytes = m.elements * F32;
    transfers.push({ tensor: m.tensor, from: m.from, to: m.to, bytes, phase: "forward" });
    loads[m.to].activationBytes += bytes;
  }
  for (const m of moves.values()) {
    if (!needsGrad.has(m.tensor)) continue;
    transfers.push({
      tensor: `${m.tensor}.grad`,
      from: m.to,
      to: m.from,
      bytes: m.elements * F32,
      phase: "backward",
    });
    if (m.add) loads[m.from].flops.backward += m.elements;
  }
  // Gradient sums for data-parallel parameters: each device sends its gradients to the other.
  for (const node of graph.nodes) {
    if (placed.get(node.name)!.parallel !== "data") continue;
    for (const name of node.params.filter((p) => trainable.get(p))) {
      const bytes = (paramSize.get(name) ?? 0) * F32;
      for (const from of devs)
        for (const to of devs)
          if (from !== to) transfers.push({ tensor: `${name}.grad`, from, to, bytes, phase: "gradient-sum" });
    }
  }

  const phaseKey = { forward: "forward", backward: "backward", "gradient-sum": "gradientSum" } as const;
  for (const t of transfers) {
    const key = phaseKey[t.phase];
    loads[t.from].sent[key] += t.bytes;
    loads[t.from].sent.total += t.bytes;
    loads[t.to].received[key] += t.bytes;
    loads[t.to].received.total += t.bytes;
  }
  for (const l of loads) l.flops.total = l.flops.forward + l.flops.backward + l.flops.update;

  const sum = (f: (l: DeviceLoad) => number) => loads.reduce((s, l) => s + f(l), 0);
  return {
    network: graph.name,
    strategy,
    batch: B,
    devices: loads,
    nodes: [...placed.values()],
    transfers,
    totals: {
      flops: Object.fromEntries(
        (["forward", "backward", "update", "total"] as const).map((k) => [k, sum((l) => l.flops[k])]),
      ) as unknown as Flops,
      paramBytes: sum((l) => l.paramBytes),
      activationBytes: sum((l) => l.activationBytes),
      transferBytes: transfers.reduce((s, t) => s + t.bytes, 0),
    },
  };
}

/** All three strategies, or those the network allows (model and hybrid need two towers). */
export function placeAll(
  graph: Graph,
  opts: PlaceOptions,
): { placements: Placement[]; skipped: { strategy: Strategy; reason: string }[] } {
  const placements: Placement[] = [];
  const skipped: { strategy: Strategy; reason: string }[] = [];
  for (const strategy of STRATEGIES) {
    try {
      placements.push(placeNetwork(graph, strategy, opts));
    } catch (e) {
      if (!(e instanceof DiagnosticError)) throw e;
      skipped.push({ strategy, reason: e.diagnostics[0].message });
    }
  }
  return { placements, skipped };
}

/** Which nodes run data-parallel (all for data, none for model, those before the first dense for hybrid). */
function assignNodes(graph: Graph, strategy: Strategy, B: number): Map<string, NodePlacement> {
  const byName = new Map(graph.nodes.map((node) => [node.name, node]));
  const halves = [Math.ceil(B / 2), Math.floor(B / 2)];
  const firstDense = graph.nodes.findIndex((node) => node.attrs.op === "dense");
  const cut =
    strategy === "data" || (strategy === "hybrid" && firstDense < 0)
      ? graph.nodes.length
      : strategy === "model"
        ? 0
        : firstDense;
  const placed = new Map<string, NodePlacement>();
  for (const [i, node] of graph.nodes.entries()) {
    const p: NodePlacement =
      i < cut
        ? { node: node.name, parallel: "data", share: [1, 1], examples: [...halves] }
        : { node: node.name, parallel: "model", share: modelShare(node, byName, placed), examples: [B, B] };
    placed.set(node.name, p);
  }
  return placed;
}

interface Move {
  tensor: string;
  from: number;
  to: number;
  elements: number;
  /** The sender ran the consumer too, so it adds the returned partial gradient to its own. */
  add: boolean;
}

/** Forward transfers, one per (tensor, from, to) however many consumers read the tensor there. */
function forwardMoves(
  graph: Graph,
  placed: Map<string, NodePlacement>,
  byName: Map<string, Node>,
): Map<string, Move> {
  const moves = new Map<string, Move>();
  for (const node of graph.nodes) {
    const pN = placed.get(node.name)!;
    for (const x of node.inputs) {
      const producer = byName.get(x);
      if (!producer) continue; // a graph input: loaded from the host
      const pX = placed.get(x)!;
      const perExample = elementCount(producer.shape);
      for (const d of [0, 1]) {
        if (pN.share[d] === 0) continue;
        for (const { from, elements } of lacking(node, pN, pX, d, perExample)) {
          const key = `${x}|${from}|${d}`;
          const prev = moves.get(key);
          const add = pN.share[from] > 0;
          if (!prev) moves.set(key, { tensor: x, from, to: d, elements, add });
          else {
            prev.elements = Math.max(prev.elements, elements);
            prev.add ||= add;
          }
        }
      }
    }
  }
  return moves;
}

/** The device share of a model-parallel node, from its tower layout (towers = devices). */
function modelShare(node: Node, byName: Map<string, Node>, placed: Map<string, NodePlacement>): number[] {
  const layout = node.layout;
  if (layout.kind === "split") return [0.5, 0.5];
  if (layout.kind === "on") return [0, 1].map((d) => (d === layout.tower ? 1 : 0));
  // Replicated output (the loss, a softmax or concat over towers): where all its inputs live whole on
  // one device it runs only there (the loss after fc8 on device 0); otherwise every device computes it.
  const homes = node.inputs.map((x) => (byName.has(x) ? placed.get(x)!.share : [1, 1]));
  const single = [0, 1].find((d) => homes.every((s) => s[d] === 1 && s[1 - d] === 0));
  return single === undefined ? [1, 1] : [0, 1].map((d) => (d === single ? 1 : 0));
}

/** True when the node on device d reads only device d's slice of its (split) input. */
function readsSlice(node: Node): boolean {
  const a = node.attrs;
  const cross = (a.op === "conv" || a.op === "dense") && a.towers.kind !== "local";
  return node.layout.kind === "split" && !cross;
}

/** What `node` on device d must receive of its input (produced with placement pX), per sender. */
function lacking(
  node: Node,
  pN: NodePlacement,
  pX: NodePlacement,
  d: number,
  perExample: number,
): { from: number; elements: number }[] {
  const others = [0, 1].filter((u) => u !== d);
  if (pN.parallel === "data") {
    if (pX.parallel === "data") return []; // same examples, whole tensor computed here
    throw new Error(`internal: data-parallel \`${pN.node}\` reads model-parallel \`${pX.node}\``);
  }
  if (pX.parallel === "data") {
    // Hybrid boundary: device u holds its own examples, all channels; take the part this node reads.
    const channels = readsSlice(node) ? pN.share[d] : 1;
    return others
      .filter((u) => pX.examples[u] > 0)
      .map((u) => ({ from: u, elements: channels * perExample * pX.examples[u] }));
  }
  if (pX.share[d] === 1 || readsSlice(node)) return [];
  return others
    .filter((u) => pX.share[u] > 0)
    .map((u) => ({ from: u, elements: pX.share[u] * perExample * pN.examples[d] }));
}
