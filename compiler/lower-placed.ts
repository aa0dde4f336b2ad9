// lower-placed: Graph → CompiledPlan over several devices, with explicit cross-device transfers.
//
// Model placement (the paper's): compiler/towers.ts slices the graph into its tower-level graph, the
// ordinary lowerings (lower.ts, lower-train.ts: autodiff included) lower that graph as if it were one
// device, and `place` then makes the plan device-aware:
//  - each kernel runs on its node's device (backward kernels on the node's, accumulations on the
//    value's, updates on the parameter's: every kernel's `layer` is a tower-graph node);
//  - each tensor lives on the device that writes it (parameters and their gradient / velocity on
//    their layer's); host-written tensors (inputs, labels, the uniform) get one replica per device;
//  - wherever a kernel reads a tensor of another device, a `transfer` step is inserted before it that
//    copies the tensor (its latest version in schedule order) into a peer `X@devD` on the reader's
//    device, and the kernel reads the peer. Writes across devices are refused.
// The parameter slices are mapped back through `partOf`, so the plan's `params` are the source
// graph's, in PyTorch layout: `uploadParams` / `readParams` see `<layer>.weight` whole.
import { DiagnosticError, diag } from "./diagnostics.ts";
import { type Graph, elementCount } from "./graph.ts";
import { type LowerOptions, lower } from "./lower.ts";
import { type TrainLowerOptions, lowerTrainingSteps, withOptimizerFusion } from "./lower-train.ts";
import { type CompiledPlan, type Plan, type PlanTensor, type ScheduleStep, planSchema } from "./plan.ts";
import { type TowerGraph, dropoutSources, sliceTowers } from "./towers.ts";
import { hashesDropout, withExampleBase } from "./wgsl/backward/elementwise.ts";
import { elementwiseMain } from "./wgsl/common.ts";

function internal(message: string): DiagnosticError {
  return new DiagnosticError(diag("AX9001", { message }, undefined));
}

/** Forward plan of `graph` placed over its towers, one device per tower. */
export function lowerPlaced(graph: Graph, opts: LowerOptions): CompiledPlan {
  const towers = sliceTowers(graph);
  // place() moves scheduled kernels between devices; prepare kernels (Winograd) are not placed yet
  return place(lower(towers.graph, { ...opts, winograd: false }), towers);
}

/** Training plan of `graph` placed over its towers, one device per tower. */
export function lowerTrainingPlaced(graph: Graph, opts: TrainLowerOptions): CompiledPlan {
  if (opts.inputGradients) throw internal("model placement does not compute input gradients");
  const towers = sliceTowers(graph);
  // Dropout layers are named by the source graph: each stands for all of its tower slices.
  const activeDropout = opts.activeDropout?.flatMap((d) => towers.slices[d] ?? [d]);
  const dropoutSource = dropoutSources(towers);
  // place() maps a tower graph's kernels to devices; Winograd's scratch is not placed yet
  const steps = lowerTrainingSteps(towers.graph, { ...opts, activeDropout, dropoutSource, winograd: false });
  const placed = place(steps, towers);
  return withOptimizerFusion(placed, opts);
}

const HOST_WRITTEN = new Set<PlanTensor["role"]>(["input", "labels", "uniform"]);

/** Makes a one-device plan of a tower graph device-aware (see the file comment). */
export function place(compiled: CompiledPlan, towers: TowerGraph): CompiledPlan {
  const plan = structuredClone(compiled.plan);
  const tensors = new Map(plan.tensors.map((t) => [t.name, t]));
  const kernels = new Map(plan.kernels.map((k) => [k.name, k]));
  const rootOf = (name: string) => tensors.get(name)?.aliasOf ?? name;
  const deviceOfNode = (layer: string) => {
    const n = towers.nodes[layer];
    if (!n) throw internal(`kernel layer \`${layer}\` is not a node of the tower graph`);
    return n.device;
  };
  for (const k of plan.kernels) k.device = deviceOfNode(k.layer);

  // A parameter-like tensor (`P`, `grad:P`, `velocity:P`, or a part of one) → P.
  const paramNames = new Set(towers.graph.params.map((p) => p.name));
  const layerOfParam = new Map(towers.graph.params.map((p) => [p.name, p.layer]));
  const paramOf = (t: PlanTensor): string | undefined => {
    const base = t.partOf?.tensor ?? t.name;
    const p = base.replace(/^(grad|velocity):/, "");
    return paramNames.has(p) && (base === p || t.role !== "activation") ? p : undefined;
  };

  // Home devices: parameter-like tensors on their layer's device; others on their first writer's.
  const home = new Map<string, number>();
  for (const t of plan.tensors) {
    if (t.aliasOf || HOST_WRITTEN.has(t.role)) continue;
    const p = t.role === "param" || t.role === "gradient" || t.role === "velocity" ? paramOf(t) : undefined;
    if (p) home.set(t.name, deviceOfNode(layerOfParam.get(p)!));
  }
  const steps = [...plan.schedule, ...(plan.training?.evalSchedule ?? [])];
  for (const s of steps) {
    if (s.kind !== "dispatch") continue;
    const k = kernels.get(s.kernel)!;
    for (const b of k.bindings) {
      const r = rootOf(b.tensor);
      if (b.access === "read_write" && !home.has(r)) home.set(r, k.device);
    }
  }
  for (const s of steps) {
    if (s.kind !== "dispatch") continue;
    const k = kernels.get(s.kernel)!;
    for (const b of k.bindings) {
      const r = rootOf(b.tensor);
      if (!HOST_WRITTEN.has(tensors.get(r)!.role) && !home.has(r)) home.set(r, k.device);
    }
  }
  for (const t of plan.tensors) t.device = HOST_WRITTEN.has(t.role) ? 0 : (home.get(rootOf(t.name)) ?? 0);

  const added: PlanTensor[] = [];
  const copyOn = (r: string, device: number, extra: Partial<PlanTensor>): string => {
    const name = `${r}@dev${device}`;
    if (!tensors.has(name)) {
      const { aliasOf: _a, partOf: _p, ...src } = tensors.get(r)!;
      const t: PlanTensor = { ...src, name, device, ...extra };
      tensors.set(name, t);
      added.push(t);
    }
    return name;
  };

  /** Walks one schedule, rebinding remote reads to peers and inserting the transfers they need. */
  const walk = (schedule: ScheduleStep[]): ScheduleStep[] => {
    const out: ScheduleStep[] = [];
    const version = new Map<string, number>();
    const fresh = new Map<string, number>(); // peer → version of its source it holds
    for (const s of schedule) {
      if (s.kind !== "dispatch") {
        out.push(s);
        continue;
      }
      const k = kernels.get(s.kernel)!;
      const d = k.device;
      for (const b of k.bindings) {
        const r = rootOf(b.tensor);
        const t = tensors.get(r)!;
        if (HOST_WRITTEN.has(t.role)) {
          if (b.access === "read_write") throw internal(`kernel \`${k.name}\` writes host tensor \`${r}\``);
          if (d !== 0) b.tensor = copyOn(r, d, { replicaOf: r });
          continue;
        }
        if (t.device === d) continue;
        if (b.access === "read_write")
          throw internal(`kernel \`${k.name}\` on device ${d} writes \`${r}\` of device ${t.device}`);
        const peer = copyOn(r, d, {});
        const v = version.get(r) ?? 0;
        if (fresh.get(peer) !== v) {
          out.push({ kind: "transfer", tensor: r, peer, from: t.device, to: d, bytes: t.bytes });
          fresh.set(peer, v);
        }
        b.tensor = peer;
      }
      for (const b of k.bindings) {
        if (b.access === "read_write")
          version.set(rootOf(b.tensor), (version.get(rootOf(b.tensor)) ?? 0) + 1);
      }
      out.push(s);
    }
    return out;
  };
  plan.schedule = walk(plan.schedule);
  if (plan.training) plan.training.evalSchedule = walk(plan.training.evalSchedule);
  plan.tensors.push(...added);

  // Parameter slices → parts of the source parameters (and of their gradients and velocities).
  for (const t of plan.tensors) {
    if (t.role !== "param" && t.role !== "gradient" && t.role !== "velocity") continue;
    const p = paramOf(t);
    const slice = p ? towers.params[p] : undefined;
    if (!p || !slice) continue;
    const base = t.partOf?.tensor ?? t.name;
    const prefix = base.slice(0, base.length - p.length);
    t.partOf = {
      tensor: `${prefix}${slice.param}`,
      offset: slice.rowOffset * slice.rowElements + (t.partOf?.offset ?? 0),
    };
  }

  const source = towers.source;
  plan.towers = source.towers;
  plan.devices = Array.from({ length: towers.devices }, (_, index) => ({ index, label: `device ${index}` }));
  plan.params = source.params.map((p) => ({
    name: p.name,
    shape: p.shape,
    init: p.init,
    trainable: p.trainable,
    layer: p.layer,
  }));
  if (plan.training) {
    const byParam = (prefix: string) =>
      Object.fromEntries(source.params.filter((p) => p.trainable).map((p) => [p.name, `${prefix}${p.name}`]));
    // A whole (unsliced) parameter keeps its name; a sliced one is the union of its slices' parts.
    plan.training.gradients = byParam("grad:");
    plan.training.velocities = byParam("velocity:");
  }
  plan.placement = { strategy: "model", nodes: towers.nodes };

  // Every tensor a kernel binds must be on the kernel's device; every transfer must cross devices.
  for (const k of plan.kernels) {
    for (const b of k.bindings) {
      const t = tensors.get(rootOf(b.tensor));
      if (!t || t.device !== k.device)
        throw internal(`kernel \`${k.name}\` (device ${k.device}) binds \`${b.tensor}\` of another device`);
    }
  }
  const checked = planSchema.safeParse(plan satisfies Plan);
  if (!checked.success) throw internal(`place produced an invalid plan: ${checked.error.message}`);
  return { plan: checked.data, wgsl: compiled.wgsl };
}

/** Bytes moved by the transfer steps of `steps` (a schedule of a placed plan). */
export function transferBytes(steps: readonly ScheduleStep[]): number {
  return steps.reduce((a, s) => a + (s.kind === "transfer" ? s.bytes : 0), 0);
}

// ---- data placement ----

/** `X@devD`: device D's copy of tensor X in a data-parallel plan (device 0 keeps the plain names). */
const onDevice = (name: string, device: number) => (device === 0 ? name : `${name}@dev${device}`);

/** y = (a + b) · ½: the batch-mean gradient from two half-batch means (a + b = b + a exactly, so both devices agree bitwise). */
function meanKernelWgsl(total: number): { wgsl: string; dispatch: [number, number, number] } {
  const { code, dispatch } = elementwiseMain(total, "  y[i] = (a[i] + b[i]) * 0.5;");
  const wgsl = `// alexc kernel (gradient mean of two devices)
@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

${code}
`;
  return { wgsl, dispatch };
}

/**
 * Training plan of `graph` placed data-parallel over `devices` = 2 devices: each device runs the whole
 * network on its half of the batch (device 0 the first half) with its own replica of the parameters;
 * after the backward pass every parameter gradient goes to the other device through a transfer, and
 * both devices apply the same update with g = (g₀ + g₁) / 2, the mean over the whole batch. The plan's
 * `batch` is the whole batch; tensors of device 1 are named `X@dev1`.
 */
export function lowerTrainingData(graph: Graph, opts: TrainLowerOptions): CompiledPlan {
  const devices = 2;
  if (opts.batch % devices !== 0) throw internal(`data placement needs an even batch, got ${opts.batch}`);
  if (opts.inputGradients) throw internal("data placement does not compute input gradients");
  const base = lowerTrainingSteps(graph, { ...opts, batch: opts.batch / devices, winograd: false });
  const plan = structuredClone(base.plan);
  const wgsl: Record<string, string> = { ...base.wgsl };
  const training = plan.training!;
  const perDevice =
    (d: number) =>
    (t: PlanTensor): PlanTensor => {
      const shared = t.role === "param" || t.role === "velocity" || t.role === "uniform";
      return {
        ...t,
        name: onDevice(t.name, d),
        device: d,
        ...(t.aliasOf ? { aliasOf: onDevice(t.aliasOf, d) } : {}),
        ...(t.partOf && d > 0 ? { partOf: undefined } : {}),
        // host-written state that both devices hold identically is written to each replica
        ...(d > 0 && shared ? { replicaOf: t.name } : {}),
      };
    };
  const tensors: PlanTensor[] = [];
  for (let d = 0; d < devices; d++) tensors.push(...base.plan.tensors.map(perDevice(d)));
  for (const t of tensors) if (t.partOf === undefined) delete t.partOf;

  const kernels = new Map(base.plan.kernels.map((k) => [k.name, k]));
  const kernelOn = (name: string, d: number): string => {
    if (d === 0) return name;
    const k = kernels.get(name)!;
    const copy = {
      ...k,
      name: `${name}_d${d}`,
      file: `kernels/${name}_d${d}.wgsl`,
      device: d,
      bindings: k.bindings.map((b) => ({ ...b, tensor: onDevice(b.tensor, d) })),
    };
    plan.kernels.push(copy);
    // device d runs examples [d·half, (d+1)·half): its dropout masks are those of its examples
    wgsl[copy.name] = hashesDropout(base.wgsl[name])
      ? withExampleBase(base.wgsl[name], d * (opts.batch / devices))
      : base.wgsl[name];
    return copy.name;
  };
  const isUpdate = (name: string) => {
    const velocity = new Set(Object.values(base.plan.training!.velocities));
    return kernels
      .get(name)!
      .bindings.some(
        (b) => b.access === "read_write" && (velocity.has(b.tensor) || velocity.has(partBase(b.tensor))),
      );
  };
  const partBase = (name: string) => base.plan.tensors.find((t) => t.name === name)?.partOf?.tensor ?? name;

  const schedule: ScheduleStep[] = [];
  const dispatch = (kernel: string): ScheduleStep => ({ kind: "dispatch", kernel });
  const work = base.plan.schedule.filter((s) => s.kind === "dispatch" && !isUpdate(s.kernel));
  const updates = base.plan.schedule.filter((s) => s.kind === "dispatch" && isUpdate(s.kernel));
  // forward + backward on each device
  for (let d = 0; d < devices; d++) for (const s of work) schedule.push(dispatch(kernelOn(s.kernel!, d)));
  // the gradient exchange: each gradient (part) to the other device, then the mean on both
  for (const s of updates) {
    const k = kernels.get(s.kernel!)!;
    const g = k.bindings.find(
      (b) => b.access === "read" && tensors.find((t) => t.name === b.tensor)?.role === "gradient",
    )!;
    const t = base.plan.tensors.find((x) => x.name === g.tensor)!;
    for (let d = 0; d < devices; d++) {
      const other = 1 - d;
      const peer = onDevice(`${g.tensor}@from${other}`, d);
      const mean = onDevice(`${g.tensor}:mean`, d);
      // device 0's mean is the step's gradient (`training.gradients`), split like the parameter
      const meanPart =
        d === 0 && t.partOf ? { partOf: { ...t.partOf, tensor: `${t.partOf.tensor}:mean` } } : {};
      tensors.push(
        { name: peer, shape: t.shape, dtype: "f32", role: "gradient", bytes: t.bytes, device: d },
        {
          name: mean,
          shape: t.shape,
          dtype: "f32",
          role: "gradient",
          bytes: t.bytes,
          device: d,
          ...meanPart,
        },
      );
      schedule.push({
        kind: "transfer",
        tensor: onDevice(g.tensor, other),
        peer,
        from: other,
        to: d,
        bytes: t.bytes,
      });
      const total = elementCount(t.shape);
      const { wgsl: code, dispatch: grid } = meanKernelWgsl(total);
      const name = `${k.name}_mean${d > 0 ? `_d${d}` : ""}`;
      plan.kernels.push({
        ...k,
        name,
        file: `kernels/${name}.wgsl`,
        op: "gradient.mean",
        device: d,
        entryPoint: "main",
        bindings: [
          { binding: 0, tensor: onDevice(g.tensor, d), access: "read" },
          { binding: 1, tensor: peer, access: "read" },
          { binding: 2, tensor: mean, access: "read_write" },
        ],
        workgroupSize: [64, 1, 1],
        dispatch: grid,
        flops: 2 * total,
      });
      wgsl[name] = code;
      schedule.push(dispatch(name));
      const update = kernelOn(s.kernel!, d);
      const u = plan.kernels.find((x) => x.name === update)!;
      u.bindings = u.bindings.map((b) => (b.tensor === onDevice(g.tensor, d) ? { ...b, tensor: mean } : b));
      schedule.push(dispatch(update));
    }
  }
  const evalSchedule: ScheduleStep[] = [];
  for (let d = 0; d < devices; d++)
    for (const s of training.evalSchedule) evalSchedule.push(dispatch(kernelOn(s.kernel!, d)));

  plan.tensors = tensors;
  plan.schedule = schedule;
  plan.batch = opts.batch;
  plan.devices = Array.from({ length: devices }, (_, index) => ({ index, label: `device ${index}` }));
  training.evalSchedule = evalSchedule;
  training.gradients = Object.fromEntries(
    Object.entries(training.gradients).map(([p, g]) => [p, `${g}:mean`]),
  );
  plan.placement = {
    strategy: "data",
    nodes: Object.fromEntries(graph.nodes.map((n) => [n.name, { layer: n.name, device: 0 }])),
  };
  const names = new Set<string>();
  for (const t of tensors) {
    if (names.has(t.name)) throw internal(`data placement declared tensor \`${t.name}\` twice`);
    names.add(t.name);
  }
  const checked = planSchema.safeParse(plan);
  if (!checked.success) throw internal(`data placement produced an invalid plan: ${checked.error.message}`);
  return withOptimizerFusion({ plan: checked.data, wgsl }, opts);
}
