// lower-hybrid: the hybrid placement of Krizhevsky 2014 ("One weird trick"), as compiler/place.ts
// states it: every layer before the first dense layer (the "trunk") is data-parallel, each device
// running it on its half of the batch with its own replica of the parameters; from the first dense
// layer on (the "head") the layers are model-parallel over the whole batch and follow the tower
// annotation exactly as in model placement (fc6/fc7 split by output units, fc8 whole on device 0).
//
// The plan is stitched from two ordinary lowerings:
//  - the trunk's kernels from a one-device training plan of the whole graph at half the batch (its
//    head kernels dropped), once per device as in lowerTrainingData (device 1's tensors `X@dev1`);
//  - the head: the graph from the first dense layer on, its input the boundary value X (pool5), sliced
//    into towers and lowered at the whole batch with model placement (lower-placed.ts), every tower
//    node that reads X reading its own device's copy `X@bD` so that each device's partial input
//    gradient `grad:X@bD` stays on its device.
// At the boundary (lower-hybrid-boundary.ts) X goes from trunk to head and its gradient back, half
// a batch each way. The conv parameter gradients (each a device's examples' share of the
// whole-batch-mean gradient) are exchanged and summed, y = a + b, which is commutative, so both
// replicas apply bitwise the same update. Kernels are prefixed `d` (trunk) and `m` (head).
import { type Graph, elementCount } from "./graph.ts";
import { boundarySteps } from "./lower-hybrid-boundary.ts";
import { copyKernel, internal, onDevice, planEmitter } from "./lower-hybrid-emit.ts";
import { place } from "./lower-placed.ts";
import { microBatchFor } from "./weight-split.ts";
import { type TrainLowerOptions, lowerTrainingSteps, withOptimizerFusion } from "./lower-train.ts";
import { type CompiledPlan, type PlanTensor, type ScheduleStep, planSchema } from "./plan.ts";
import { dropoutSources, sliceTowers } from "./towers.ts";
import { hashesDropout, withExampleBase, withSplitExamples } from "./wgsl/backward/elementwise.ts";

const DEVICES = 2;

/**
 * Training plan of `graph` in hybrid placement over two devices (see the file comment). The plan's
 * `batch` is the whole (even) batch; images are written half per device (device 0 the first half),
 * labels, loss and logits are whole on device 0. A micro-batched plan (`microBatch` M per device)
 * runs K = batch / 2M times per step, run j on chunk j of each device's half: its labels, loss and
 * logits are device 0's chunk j followed by device 1's.
 */
export function lowerTrainingHybrid(graph: Graph, opts: TrainLowerOptions): CompiledPlan {
  if (opts.batch % DEVICES !== 0) throw internal(`hybrid placement needs an even batch, got ${opts.batch}`);
  if (opts.inputGradients) throw internal("hybrid placement does not compute input gradients");
  if (graph.towers !== DEVICES)
    throw internal(`hybrid placement needs ${DEVICES} towers, got ${graph.towers}`);
  const cut = graph.nodes.findIndex((n) => n.attrs.op === "dense");
  if (cut <= 0) throw internal("hybrid placement needs convolutional layers before a dense layer");
  const trunkNodes = new Set(graph.nodes.slice(0, cut).map((n) => n.name));
  const boundary = graph.nodes[cut].inputs[0];
  const boundaryNode = graph.nodes[cut - 1];
  if (boundary !== boundaryNode.name)
    throw internal(`hybrid placement: the first dense layer must read the layer before it`);
  for (const n of graph.nodes.slice(cut))
    for (const x of n.inputs)
      if (trunkNodes.has(x) && x !== boundary)
        throw internal(`hybrid placement: \`${n.name}\` reads \`${x}\` across the boundary`);
  // A batch whose per-device activations exceed a binding runs as K micro-steps: each a hybrid run
  // of `half` = M examples per device (chunk j of each device's share), loss and gradients scaled to
  // the whole batch, updates accumulated over the micro-steps (wgsl/backward/update.ts).
  const share = opts.batch / DEVICES; // examples per device per step
  const half = microBatchFor(graph, share, opts.maxBindingBytes); // … per run of the schedule
  const micro = half !== share;
  const runBatch = DEVICES * half;

  // ---- the trunk: a one-device plan at half the batch, head kernels dropped ----
  const base = lowerTrainingSteps(graph, {
    ...opts,
    keepGradients: [boundary],
    batch: half,
    winograd: false, // as lower-placed.ts: Winograd's scratch is not placed yet
    ...(micro ? { lossBatch: opts.batch } : {}),
  });
  const bk = new Map(base.plan.kernels.map((k) => [k.name, k]));
  const btensors = new Map(base.plan.tensors.map((t) => [t.name, t]));
  const broot = (name: string) => btensors.get(name)?.aliasOf ?? name;
  const isTrunk = (kernel: string) => trunkNodes.has(bk.get(kernel)!.layer);
  const bsched = base.plan.schedule.map((s) => s.kernel!);
  const firstHead = bsched.findIndex((k) => !isTrunk(k));
  const trunkVelocities = new Set(
    Object.entries(base.plan.training!.velocities)
      .filter(([p]) => trunkNodes.has(graph.params.find((q) => q.name === p)!.layer))
      .map(([, v]) => v),
  );
  const velocityOf = (t: string) => btensors.get(t)?.partOf?.tensor ?? t;
  const isUpdate = (k: string) =>
    bk.get(k)!.bindings.some((b) => b.access === "read_write" && trunkVelocities.has(velocityOf(b.tensor)));
  const trunkForward = bsched.slice(0, firstHead).filter(isTrunk);
  const trunkBackward = bsched.slice(firstHead).filter((k) => isTrunk(k) && !isUpdate(k));
  const trunkUpdates = bsched.filter((k) => isTrunk(k) && isUpdate(k));
  const trunkEval = base.plan.training!.evalSchedule.map((s) => s.kernel!).filter(isTrunk);

  const emit = planEmitter();
  const { kernels, wgsl, tensors, declare, dispatch, glue } = emit;
  const trunkTensor = (name: string, d: number): string => {
    const t = btensors.get(name);
    if (!t) throw internal(`the trunk plan has no tensor \`${name}\``);
    if (t.aliasOf) trunkTensor(t.aliasOf, d);
    const shared = t.role === "param" || t.role === "velocity" || t.role === "uniform";
    const copy: PlanTensor = {
      ...t,
      name: onDevice(t.name, d),
      device: d,
      ...(t.aliasOf ? { aliasOf: onDevice(t.aliasOf, d) } : {}),
      ...(d > 0 && shared ? { replicaOf: t.name } : {}),
    };
    if (d > 0 || !copy.partOf) delete copy.partOf;
    declare(copy);
    return copy.name;
  };
  const trunkKernel = (name: string, d: number): string => {
    const k = bk.get(name)!;
    const kname = `d${name}${d > 0 ? `_d${d}` : ""}`;
    if (!wgsl[kname]) {
      kernels.push({
        ...k,
        name: kname,
        file: `kernels/${kname}.wgsl`,
        device: d,
        bindings: k.bindings.map((b) => ({ ...b, tensor: trunkTensor(b.tensor, d) })),
      });
      // device d's trunk runs examples [d·share, (d+1)·share): its dropout masks are those examples'
      wgsl[kname] = hashesDropout(base.wgsl[name])
        ? withExampleBase(base.wgsl[name], d * share)
        : base.wgsl[name];
    }
    return kname;
  };

  // ---- the head: model placement over the whole batch, each device reading its own copy of X ----
  const headGraph: Graph = {
    ...graph,
    inputs: [{ name: boundary, dtype: "f32", shape: boundaryNode.shape, span: boundaryNode.span }],
    nodes: graph.nodes.slice(cut),
    params: graph.params.filter((p) => !trunkNodes.has(p.layer)),
  };
  const towers = sliceTowers(headGraph);
  const headInput = (d: number) => `${boundary}@b${d}`;
  const readers = new Set<number>();
  towers.graph = {
    ...towers.graph,
    nodes: towers.graph.nodes.map((n) => {
      if (!n.inputs.includes(boundary)) return n;
      const d = towers.nodes[n.name].device;
      readers.add(d);
      return { ...n, inputs: n.inputs.map((x) => (x === boundary ? headInput(d) : x)) };
    }),
  };
  if (readers.size !== DEVICES)
    throw internal(`hybrid placement: the first dense layer must be split over the towers`);
  towers.graph.inputs = [0, 1].map((d) => ({ ...headGraph.inputs[0], name: headInput(d) }));
  const activeDropout = opts.activeDropout?.flatMap((x) => towers.slices[x] ?? [x]);
  // the head's dropout hashes as the source graph's layers (head slices of `graph`)
  const dropoutSource = dropoutSources(towers, graph);
  const head = place(
    lowerTrainingSteps(towers.graph, {
      ...opts,
      ...{ activeDropout, dropoutSource, inputGradients: true, batch: runBatch, winograd: false },
      ...(micro ? { lossBatch: opts.batch } : {}),
    }),
    towers,
  );
  const hp = head.plan;
  const htraining = hp.training!;
  // The head's inputs on device d: `X@bD` as place() named it there; they are activations here.
  const headIn = (prefix: string, d: number) => onDevice(`${prefix}${headInput(d)}`, d);
  const dropped = new Set([`${headInput(1)}`, `eval:${headInput(1)}`]);
  const renamed = new Map<string, string>();
  for (const k of hp.kernels) renamed.set(k.name, `m${k.name}`);
  for (const t of hp.tensors) {
    if (dropped.has(t.name)) continue;
    const copy = { ...t };
    if ([0, 1].some((d) => copy.name === headIn("", d) || copy.name === headIn("eval:", d))) {
      copy.role = "activation";
      delete copy.replicaOf;
    }
    declare(copy);
  }
  for (const k of hp.kernels) {
    for (const b of k.bindings)
      if (dropped.has(b.tensor))
        throw internal(`head kernel \`${k.name}\` reads \`${b.tensor}\` on device 0`);
    kernels.push({ ...k, name: renamed.get(k.name)!, file: `kernels/${renamed.get(k.name)}.wgsl` });
    // a head run holds device 0's chunk, then device 1's: their masks are those examples'
    wgsl[renamed.get(k.name)!] = hashesDropout(head.wgsl[k.name])
      ? withSplitExamples(head.wgsl[k.name], half, share)
      : head.wgsl[k.name];
  }
  const headSteps = (steps: ScheduleStep[]) =>
    steps.map((s) => (s.kind === "dispatch" ? dispatch(renamed.get(s.kernel)!) : s));

  // ---- the boundary ----
  const { gather, scatter } = boundarySteps(emit, {
    boundary,
    boundaryNode,
    half,
    broot,
    trunkTensor,
    headInput,
    headIn,
  });

  // ---- the schedule ----
  const schedule: ScheduleStep[] = [];
  for (const d of [0, 1]) for (const k of trunkForward) schedule.push(dispatch(trunkKernel(k, d)));
  schedule.push(...gather(""));
  // the head's updates last: its input gradients go back to the trunk as soon as they are computed
  const headOp = new Map(hp.kernels.map((k) => [k.name, k.op]));
  const isHeadUpdate = (s: ScheduleStep) => s.kind === "dispatch" && headOp.get(s.kernel) === "sgd.update";
  schedule.push(...headSteps(hp.schedule.filter((s) => !isHeadUpdate(s))));
  schedule.push(...scatter());
  // conv gradient exchange: g = g₀ + g₁ on both devices, then the update; each gradient is sent as
  // soon as the backward pass has written it on both devices, so the transfers overlap the rest of
  // the backward pass (the runtime submits the sender's work at each transfer and waits only at the
  // first reader, the sums after the backward pass)
  const sends = new Map<string, ScheduleStep[]>();
  const exchange: ScheduleStep[] = [];
  const gradients: Record<string, string> = { ...htraining.gradients };
  for (const k of trunkUpdates) {
    const u = bk.get(k)!;
    const g = u.bindings.find(
      (b) => b.access === "read" && btensors.get(b.tensor)?.role === "gradient",
    )!.tensor;
    const t = btensors.get(g)!;
    const total = elementCount(t.shape);
    for (const d of [0, 1]) {
      const mine = trunkTensor(g, d);
      const peer = onDevice(`${g}@from${1 - d}`, d);
      const sum = onDevice(`${g}:sum`, d);
      declare({ name: peer, shape: t.shape, dtype: "f32", role: "gradient", bytes: t.bytes, device: d });
      const part = d === 0 && t.partOf ? { partOf: { ...t.partOf, tensor: `${t.partOf.tensor}:sum` } } : {};
      declare({
        name: sum,
        shape: t.shape,
        dtype: "f32",
        role: "gradient",
        bytes: t.bytes,
        device: d,
        ...part,
      });
      sends.set(g, [
        ...(sends.get(g) ?? []),
        {
          kind: "transfer",
          tensor: onDevice(g, 1 - d),
          peer,
          from: 1 - d,
          to: d,
          bytes: t.bytes,
        },
      ]);
      exchange.push(
        glue(
          `d${k}_sum${d > 0 ? `_d${d}` : ""}`,
          u.layer,
          "gradient.sum",
          d,
          [mine, peer],
          sum,
          copyKernel("gradient sum of two devices", ["a", "b"], total, "  y[i] = a[i] + b[i];"),
          total,
        ),
      );
      const update = trunkKernel(k, d);
      const uk = kernels.find((x) => x.name === update)!;
      uk.bindings = uk.bindings.map((b) => (b.tensor === mine ? { ...b, tensor: sum } : b));
      exchange.push(dispatch(update));
    }
  }
  const lastWriter = new Map<string, number>();
  trunkBackward.forEach((k, i) => {
    for (const b of bk.get(k)!.bindings)
      if (b.access === "read_write" && sends.has(broot(b.tensor))) lastWriter.set(broot(b.tensor), i);
  });
  trunkBackward.forEach((k, i) => {
    for (const d of [0, 1]) schedule.push(dispatch(trunkKernel(k, d)));
    for (const [g, steps] of sends) if (lastWriter.get(g) === i) schedule.push(...steps);
  });
  for (const [g, steps] of sends) if (!lastWriter.has(g)) schedule.push(...steps);
  schedule.push(...exchange);
  schedule.push(...headSteps(hp.schedule.filter(isHeadUpdate)));
  for (const [p, g] of Object.entries(base.plan.training!.gradients))
    if (trunkNodes.has(graph.params.find((q) => q.name === p)!.layer)) gradients[p] = `${g}:sum`;
  const velocities: Record<string, string> = { ...htraining.velocities };
  for (const [p, v] of Object.entries(base.plan.training!.velocities))
    if (trunkNodes.has(graph.params.find((q) => q.name === p)!.layer)) velocities[p] = v;

  const evalSchedule: ScheduleStep[] = [];
  for (const d of [0, 1]) for (const k of trunkEval) evalSchedule.push(dispatch(trunkKernel(k, d)));
  evalSchedule.push(...gather("eval:"));
  evalSchedule.push(...headSteps(htraining.evalSchedule));

  const input = graph.inputs[0].name;
  const evalInput = base.plan.training!.evalInputs[input];
  const plan = {
    ...hp,
    network: graph.name,
    batch: opts.batch,
    ...(micro ? { microBatch: half } : {}),
    towers: graph.towers,
    tensors: [...tensors.values()],
    params: graph.params.map((p) => ({
      name: p.name,
      shape: p.shape,
      init: p.init,
      trainable: p.trainable,
      layer: p.layer,
    })),
    kernels,
    schedule,
    inputs: graph.inputs.map((i) => i.name),
    training: {
      ...htraining,
      evalSchedule,
      evalInputs: { [input]: evalInput },
      gradients,
      velocities,
      valueGradients: { ...base.plan.training!.valueGradients, ...htraining.valueGradients },
      saved: [...base.plan.training!.saved.filter((s) => tensors.has(s)), ...htraining.saved],
      layers: [...base.plan.training!.layers.filter((l) => trunkNodes.has(l.layer)), ...htraining.layers],
    },
    placement: {
      strategy: "hybrid" as const,
      nodes: {
        ...Object.fromEntries([...trunkNodes].map((n) => [n, { layer: n, device: 0 }])),
        ...towers.nodes,
      },
    },
  };
  // every binding on its kernel's device, every tensor's alias declared
  for (const k of kernels)
    for (const b of k.bindings) {
      const t = tensors.get(b.tensor);
      const root = t?.aliasOf ? tensors.get(t.aliasOf) : t;
      if (!root || root.device !== k.device)
        throw internal(
          `hybrid kernel \`${k.name}\` (device ${k.device}) binds \`${b.tensor}\` of another device`,
        );
    }
  const checked = planSchema.safeParse(plan);
  if (!checked.success) throw internal(`hybrid placement produced an invalid plan: ${checked.error.message}`);
  return withOptimizerFusion({ plan: checked.data, wgsl }, opts);
}
