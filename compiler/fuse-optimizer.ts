// fuse-optimizer: the training plan's SGD updates become one kernel per device over a flat parameter
// arena. A lowering emits one `sgd.update` per parameter (part): alexnet.net has 16 parameters, so
// 16+ dispatches per step that each read three small tensors. Here every parameter of a device, its
// momentum buffer and its gradient become views into three flat arena tensors (`aliasOf` the arena
// at `aliasOffset`), laid out in the same order, so one element-wise kernel updates them all.
//
// - An arena is at most maxStorageBufferBindingSize (a binding), so a device whose parameters exceed
//   it (one device holding all of alexnet.net: 244 MB) gets one arena segment, and one kernel, per
//   binding's worth; a device whose parameters fit (every two-device placement of alexnet.net but
//   data's replicas) gets exactly one.
// - Views start at multiples of the storage offset alignment (256 B), so every kernel that reads a
//   weight or writes a gradient binds its range directly. The gaps stay zero: WebGPU zero-fills new
//   buffers, nothing writes there, and the update keeps 0 at 0 (v = μ·0 − λε·0 − ε·0).
// - The fused kernel runs where the device's last update ran. That is safe because an update is the
//   last reader of its parameter, momentum and gradient in a step (the backward pass reads weights
//   before the update; the next step's forward reads them after), so moving it later changes no
//   value: the numbers are those of the per-parameter updates, bit for bit (same expression, same f32
//   operands; tested in test/gpu/fusion.test.ts).
// A plan → plan pass, run by the training lowerings last (after placement), so it sees each device's
// final updates whatever the strategy.
import { WORKGROUP } from "./wgsl/common.ts";
import type { CompiledPlan, Plan, PlanKernel, PlanTensor, ScheduleStep } from "./plan.ts";
import { updateKernel } from "./wgsl/backward/update.ts";
import { internal } from "./memory-liveness.ts";

const UPDATE_OPS = new Set(["sgd.update", "sgd.update.micro"]);

/** One parameter (part) in an arena: its tensors and where they start, in bytes. */
export interface ArenaMember {
  param: string;
  velocity: string;
  gradient: string;
  offset: number;
  bytes: number;
}

/** One arena segment of a device: three flat tensors and the parameters they hold. */
export interface ParameterArena {
  device: number;
  params: string;
  velocities: string;
  gradients: string;
  bytes: number;
  members: ArenaMember[];
  /** The update kernel replacing the members' own. */
  kernel: string;
}

export interface FlatParameterOptions {
  maxBindingBytes: number;
  /** minStorageBufferOffsetAlignment; default 256. */
  alignment?: number;
}

const alignUp = (n: number, a: number) => Math.ceil(n / a) * a;

/** The arenas `withFlatParameters` would build for `plan` (also what --explain-fusion prints). */
export function parameterArenas(plan: Plan, opts: FlatParameterOptions): ParameterArena[] {
  const alignment = opts.alignment ?? 256;
  const tensors = new Map(plan.tensors.map((t) => [t.name, t]));
  const order = new Map(plan.schedule.map((s, i) => [s.kernel, i]));
  const updates = plan.kernels
    .filter((k) => UPDATE_OPS.has(k.op) && order.has(k.name))
    .sort((a, b) => order.get(a.name)! - order.get(b.name)!);
  const arenas: ParameterArena[] = [];
  for (const device of [...new Set(updates.map((k) => k.device))].sort((a, b) => a - b)) {
    let current: ParameterArena | undefined;
    const segments: ParameterArena[] = [];
    for (const k of updates.filter((x) => x.device === device)) {
      const [w, v, g] = [0, 1, 2].map((i) => tensors.get(k.bindings[i]?.tensor ?? ""));
      if (!w || !v || !g || w.aliasOf || v.aliasOf || g.aliasOf || w.bytes !== v.bytes || w.bytes !== g.bytes)
        throw internal(`update kernel \`${k.name}\` does not bind (parameter, velocity, gradient) roots`);
      if (w.bytes > opts.maxBindingBytes) throw internal(`parameter \`${w.name}\` exceeds a binding`);
      if (!current || alignUp(current.bytes, alignment) + w.bytes > opts.maxBindingBytes) {
        const s = segments.length;
        const suffix = `dev${device}${s ? `:${s}` : ""}`;
        current = {
          device,
          params: `arena:params:${suffix}`,
          velocities: `arena:velocity:${suffix}`,
          gradients: `arena:grad:${suffix}`,
          bytes: 0,
          members: [],
          kernel: `sgd_update_dev${device}${s ? `_${s}` : ""}`,
        };
        segments.push(current);
      }
      const offset = alignUp(current.bytes, alignment);
      current.members.push({ param: w.name, velocity: v.name, gradient: g.name, offset, bytes: w.bytes });
      current.bytes = offset + w.bytes;
    }
    arenas.push(...segments);
  }
  return arenas;
}

/**
 * `compiled` with each device's updates fused over flat parameter arenas (see the file comment).
 * Plans without updates come back unchanged.
 */
export function withFlatParameters(compiled: CompiledPlan, opts: FlatParameterOptions): CompiledPlan {
  const source = compiled.plan;
  const t = source.training;
  if (!t) return compiled;
  const arenas = parameterArenas(source, opts);
  if (arenas.length === 0) return compiled;
  const plan: Plan = structuredClone(source);
  const wgsl = { ...compiled.wgsl };
  const byName = new Map(plan.tensors.map((x) => [x.name, x]));
  const replaced = new Set<string>();
  const fused = new Map<string, PlanKernel>();
  const lastUpdate = new Map<number, string>();
  const oldKernels = new Map(source.kernels.map((k) => [k.name, k]));
  for (const s of source.schedule)
    if (s.kind === "dispatch" && UPDATE_OPS.has(oldKernels.get(s.kernel)!.op))
      lastUpdate.set(oldKernels.get(s.kernel)!.device, s.kernel);

  for (const a of arenas) {
    const floats = a.bytes / 4;
    const arenaTensor = (name: string, role: PlanTensor["role"]): PlanTensor => ({
      name,
      shape: [floats],
      dtype: "f32",
      role,
      bytes: a.bytes,
      device: a.device,
    });
    plan.tensors.push(
      arenaTensor(a.params, "arena"),
      arenaTensor(a.velocities, "arena"),
      arenaTensor(a.gradients, "arena"),
    );
    for (const m of a.members) {
      for (const [name, arena] of [
        [m.param, a.params],
        [m.velocity, a.velocities],
        [m.gradient, a.gradients],
      ] as const) {
        // anything that aliased the member now aliases the arena, at the same bytes
        for (const x of plan.tensors)
          if (x.aliasOf === name)
            Object.assign(x, { aliasOf: arena, aliasOffset: m.offset + (x.aliasOffset ?? 0) });
        Object.assign(byName.get(name)!, { aliasOf: arena, aliasOffset: m.offset });
      }
    }
    // (the member's update kernel: other kernels bind the parameter first too, e.g. a Winograd weight transform)
    const first = source.kernels.find(
      (k) => UPDATE_OPS.has(k.op) && k.bindings[0]?.tensor === a.members[0].param,
    )!;
    const micro = first.op === "sgd.update.micro";
    const group = a.members.map((m) => m.param);
    const src = updateKernel(
      { name: a.kernel, layer: "(optimizer)", group },
      {
        shape: [floats],
        momentum: t.momentum,
        weightDecay: t.weightDecay,
        tensors: { w: a.params, v: a.velocities, g: a.gradients, step: first.bindings[3].tensor },
        micro,
        covers: a.members.map((m) => `${m.param} at element ${m.offset / 4} (${m.bytes / 4} elements)`),
      },
    );
    for (const k of source.kernels)
      if (UPDATE_OPS.has(k.op) && a.members.some((m) => m.param === k.bindings[0]?.tensor))
        replaced.add(k.name);
    const kernel: PlanKernel = {
      name: a.kernel,
      file: `kernels/${a.kernel}.wgsl`,
      layer: "(optimizer)",
      op: src.op,
      group,
      device: a.device,
      entryPoint: src.entryPoint,
      bindings: src.bindings.map((b, i) => ({ binding: i, tensor: b.tensor, access: b.access })),
      workgroupSize: [WORKGROUP, 1, 1],
      dispatch: src.dispatch,
      flops: src.flops,
    };
    fused.set(a.kernel, kernel);
    wgsl[a.kernel] = src.wgsl;
  }

  for (const name of replaced) delete wgsl[name];
  plan.kernels = [...plan.kernels.filter((k) => !replaced.has(k.name)), ...fused.values()];
  for (const k of plan.kernels) wgsl[k.name] = writableWhereShared(k, byName, wgsl[k.name]);
  const schedule: ScheduleStep[] = [];
  for (const s of source.schedule) {
    if (s.kind !== "dispatch" || !replaced.has(s.kernel)) {
      schedule.push(s);
      continue;
    }
    const device = oldKernels.get(s.kernel)!.device;
    if (lastUpdate.get(device) !== s.kernel) continue;
    for (const a of arenas) if (a.device === device) schedule.push({ kind: "dispatch", kernel: a.kernel });
  }
  plan.schedule = schedule;
  return { plan, wgsl };
}

/**
 * WebGPU rejects a dispatch that binds one buffer as read-only and as writable storage, even at
 * disjoint ranges (measured with Dawn). A kernel that writes one view of an arena and reads another
 * gets its read-only declarations of that arena widened to read_write; the plan's binding keeps its
 * real access, which is what liveness reasons about.
 */
function writableWhereShared(k: PlanKernel, byName: ReadonlyMap<string, PlanTensor>, code: string): string {
  const rootOf = (name: string) => byName.get(name)?.aliasOf ?? name;
  const written = new Set(k.bindings.filter((b) => b.access === "read_write").map((b) => rootOf(b.tensor)));
  let out = code;
  for (const b of k.bindings)
    if (b.access === "read" && written.has(rootOf(b.tensor)))
      out = out.replace(new RegExp(`(@binding\\(${b.binding}\\) var<storage, )read>`), "$1read_write>");
  return out;
}

/** `--explain-fusion`'s optimizer section, from a training plan the pass has run on. */
export function explainOptimizer(plan: Plan): string {
  const fused = plan.kernels.filter((k) => UPDATE_OPS.has(k.op) && k.layer === "(optimizer)");
  const params = fused.reduce((a, k) => a + k.group.length, 0);
  if (fused.length === 0) return "optimizer: one update kernel per parameter (fusion off)";
  const bytes = (k: PlanKernel) => plan.tensors.find((t) => t.name === k.bindings[0].tensor)?.bytes ?? 0;
  return [
    `optimizer: ${params} parameter update(s) in ${fused.length} kernel(s), one per device and flat arena segment (≤ one binding)`,
    ...fused.map((k) => {
      const mine = fused.filter((x) => x.device === k.device);
      const ends =
        k === mine[mine.length - 1]
          ? "the device's last parameter"
          : "the next parameter would take the arena past maxStorageBufferBindingSize";
      return `${k.name} on device ${k.device}: ${k.group.length} parameter(s), ${(bytes(k) / 2 ** 20).toFixed(1)} MiB arena; ends: ${ends}`;
    }),
  ].join("\n");
}
