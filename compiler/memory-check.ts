// memory-check: an independent check of a MemoryPlan against its Plan, for the tests and for any
// consumer that loads a memory plan from disk. It recomputes every root tensor's lifetime from the
// plan's steps itself (not from memory.ts) and reports:
//  - `overlap`: two tensors of one arena whose byte ranges and lifetimes overlap, unless they are a
//    legal in-place pair (below);
//  - `alignment`, `bounds`, `binding`: an offset off the alignment, a tensor outside its arena or an
//    arena over maxBufferBytes, a tensor over maxBindingBytes;
//  - `missing`: a root tensor without exactly one placement, or a placement of no root tensor;
//  - `in-place`: a declared in-place pair that is not element-wise, not the input's last use and the
//    output's first, of different sizes or offsets, or that involves a pinned tensor;
//  - `stats`: a peak that is not the sum of the arenas, or below the lower bound.
// Lifetimes here: a tensor that the host writes or reads (by role, by name, as a replica, as a part
// of such a tensor) or whose first access in a schedule is a read is live at every position;
// otherwise from its first to its last use over [schedule, evalSchedule].
import type { MemoryPlan } from "./memory.ts";
import type { Plan, PlanTensor } from "./plan.ts";

export interface MemoryProblem {
  kind: "overlap" | "alignment" | "bounds" | "binding" | "missing" | "in-place" | "stats";
  tensors: string[];
  message: string;
}

/** Ops whose WGSL writes y[i] from inputs read at i only (memory-pack.ts ELEMENTWISE quotes the WGSL). */
const ELEMENTWISE_OPS = new Set([
  "relu",
  "tanh",
  "sigmoid",
  "relu.grad",
  "tanh.grad",
  "sigmoid.grad",
  "dropout.train",
  "dropout.grad",
  "grad.accumulate",
  "gradient.mean",
  "gradient.sum",
]);

const HOST_ROLES = new Set<PlanTensor["role"]>([
  "param",
  "velocity",
  "input",
  "labels",
  "uniform",
  "logits",
  "loss",
]);

interface Lifetime {
  start: number;
  end: number;
  always: boolean;
}

function rootIn(byName: ReadonlyMap<string, PlanTensor>) {
  return (name: string): string => {
    let at = name;
    for (let hops = 0; byName.get(at)?.aliasOf !== undefined && hops <= byName.size; hops++)
      at = byName.get(at)!.aliasOf!;
    return at;
  };
}

function lifetimes(plan: Plan): { life: Map<string, Lifetime>; positionOf: Map<string, number> } {
  const byName = new Map(plan.tensors.map((t) => [t.name, t]));
  const root = rootIn(byName);
  const kernels = new Map(plan.kernels.map((k) => [k.name, k]));
  const train = plan.schedule;
  const evalSteps = plan.training?.evalSchedule ?? [];
  const steps = [...train, ...evalSteps];
  const first = new Map<string, number>();
  const last = new Map<string, number>();
  const carried = new Set<string>();
  const positionOf = new Map<string, number>();
  // each schedule on its own: a read before any write in it carries a value in from outside the run
  for (const [begin, end] of [
    [0, train.length],
    [train.length, steps.length],
  ]) {
    const written = new Set<string>();
    for (let p = begin; p < end; p++) {
      const s = steps[p];
      const reads: string[] = [];
      const writes: string[] = [];
      if (s.kind === "transfer") {
        reads.push(root(s.tensor));
        writes.push(root(s.peer));
      } else {
        positionOf.set(s.kernel, p);
        for (const b of kernels.get(s.kernel)!.bindings)
          (b.access === "read_write" ? writes : reads).push(root(b.tensor));
      }
      for (const r of reads) if (!written.has(r) && !writes.includes(r)) carried.add(r);
      for (const r of [...reads, ...writes]) {
        if (!first.has(r)) first.set(r, p);
        last.set(r, p);
      }
      for (const r of writes) written.add(r);
    }
  }
  const t = plan.training;
  const io = [
    ...plan.inputs,
    plan.logits,
    ...(t ? [t.labels, t.loss, t.uniform, t.evalLogits, ...Object.values(t.evalInputs)] : []),
  ];
  const hostNames = new Set([
    ...io,
    ...(t ? [...Object.values(t.gradients), ...Object.values(t.velocities)] : []),
  ]);
  const isHost = (x: PlanTensor) =>
    HOST_ROLES.has(x.role) ||
    x.replicaOf !== undefined ||
    hostNames.has(x.name) ||
    (x.partOf !== undefined && hostNames.has(x.partOf.tensor)) ||
    io.some((n) => x.name.startsWith(`${n}@dev`));
  const life = new Map<string, Lifetime>();
  for (const x of plan.tensors) {
    const r = root(x.name);
    const always = isHost(x) || carried.has(r) || (life.get(r)?.always ?? false);
    if (!first.has(r) && !always) continue;
    life.set(r, { start: first.get(r) ?? 0, end: last.get(r) ?? steps.length, always });
  }
  return { life, positionOf };
}

/** Every problem of `memory` as a plan for `plan` (empty when it is sound). */
export function memoryConflicts(plan: Plan, memory: MemoryPlan): MemoryProblem[] {
  const problems: MemoryProblem[] = [];
  const report = (kind: MemoryProblem["kind"], tensors: string[], message: string) =>
    problems.push({ kind, tensors, message });
  const { life, positionOf } = lifetimes(plan);
  const byName = new Map(plan.tensors.map((t) => [t.name, t]));
  const kernels = new Map(plan.kernels.map((k) => [k.name, k]));
  const root = rootIn(byName);

  for (const { index: device } of plan.devices) {
    const mem = memory.devices.find((d) => d.device === device);
    if (!mem) {
      report("missing", [], `device ${device} has no memory plan`);
      continue;
    }
    const roots = plan.tensors.filter((t) => t.device === device && t.aliasOf === undefined);
    const counts = new Map<string, number>();
    for (const p of mem.placements) counts.set(p.tensor, (counts.get(p.tensor) ?? 0) + 1);
    for (const t of roots)
      if (counts.get(t.name) !== 1)
        report("missing", [t.name], `\`${t.name}\` has ${counts.get(t.name) ?? 0} placements`);
    for (const p of mem.placements) {
      const t = byName.get(p.tensor);
      if (!t || t.aliasOf !== undefined || t.device !== device)
        report("missing", [p.tensor], `placement of \`${p.tensor}\`, not a root tensor of device ${device}`);
    }

    const arenas = new Map(mem.arenas.map((a) => [a.index, a]));
    for (const a of mem.arenas)
      if (a.bytes > memory.maxBufferBytes)
        report(
          "bounds",
          [],
          `arena ${a.index} of device ${device} has ${a.bytes} bytes, over ${memory.maxBufferBytes}`,
        );
    for (const p of mem.placements) {
      const t = byName.get(p.tensor);
      const arena = arenas.get(p.arena);
      if (p.offset % memory.alignment !== 0)
        report(
          "alignment",
          [p.tensor],
          `\`${p.tensor}\` at offset ${p.offset}, not a multiple of ${memory.alignment}`,
        );
      if (!arena || p.offset + p.bytes > arena.bytes)
        report(
          "bounds",
          [p.tensor],
          `\`${p.tensor}\` [${p.offset}, ${p.offset + p.bytes}) is not inside arena ${p.arena}`,
        );
      if (t && p.bytes !== t.bytes)
        report("bounds", [p.tensor], `\`${p.tensor}\` placed with ${p.bytes} bytes, has ${t.bytes}`);
      if (p.bytes > memory.maxBindingBytes)
        report(
          "binding",
          [p.tensor],
          `\`${p.tensor}\` has ${p.bytes} bytes, over the binding limit ${memory.maxBindingBytes}`,
        );
    }

    // legal in-place pairs: x (input) and y (output) of an element-wise kernel at x's last use and y's first
    const legal = new Set<string>();
    for (const ip of mem.stats.inPlace) {
      const bad = (why: string) =>
        report("in-place", [ip.tensor, ip.sharesWith], `\`${ip.tensor}\` over \`${ip.sharesWith}\`: ${why}`);
      const k = kernels.get(ip.kernel);
      const [x, y] = [life.get(ip.sharesWith), life.get(ip.tensor)];
      const [px, py] = [ip.sharesWith, ip.tensor].map((n) => mem.placements.find((q) => q.tensor === n));
      const at = positionOf.get(ip.kernel);
      if (!k || !ELEMENTWISE_OPS.has(k.op)) bad(`kernel \`${ip.kernel}\` is not element-wise`);
      else if (!k.bindings.some((b) => root(b.tensor) === ip.sharesWith && b.access === "read"))
        bad(`\`${ip.kernel}\` does not read it`);
      else if (!k.bindings.some((b) => root(b.tensor) === ip.tensor && b.access === "read_write"))
        bad(`\`${ip.kernel}\` does not write it`);
      else if (!x || !y || x.always || y.always) bad("a pinned tensor is never shared");
      else if (x.end !== at || y.start !== at) bad(`not the input's last use and the output's first`);
      else if (byName.get(ip.tensor)!.bytes !== byName.get(ip.sharesWith)!.bytes) bad("sizes differ");
      else if (!px || !py || px.arena !== py.arena || px.offset !== py.offset) bad("not at one offset");
      else legal.add(`${ip.sharesWith}\u0000${ip.tensor}`);
    }

    // every pair of one arena, exhaustively
    const byArena = new Map<number, typeof mem.placements>();
    for (const p of mem.placements) byArena.set(p.arena, [...(byArena.get(p.arena) ?? []), p]);
    for (const list of byArena.values()) {
      for (let i = 0; i < list.length; i++) {
        for (let j = i + 1; j < list.length; j++) {
          const [a, b] = [list[i], list[j]];
          if (!(a.offset < b.offset + b.bytes && b.offset < a.offset + a.bytes)) continue;
          const [la, lb] = [life.get(a.tensor), life.get(b.tensor)];
          if (!la || !lb) continue; // never used: holds nothing
          const timeOverlap = la.always || lb.always || (la.start <= lb.end && lb.start <= la.end);
          if (!timeOverlap) continue;
          if (legal.has(`${a.tensor}\u0000${b.tensor}`) || legal.has(`${b.tensor}\u0000${a.tensor}`))
            continue;
          report(
            "overlap",
            [a.tensor, b.tensor],
            `\`${a.tensor}\` and \`${b.tensor}\` share bytes of arena ${a.arena} of device ${device} while both are live`,
          );
        }
      }
    }

    const sum = mem.arenas.reduce((s, a) => s + a.bytes, 0);
    if (mem.stats.peakBytes !== sum)
      report("stats", [], `device ${device}: peak ${mem.stats.peakBytes} ≠ arenas ${sum}`);
    if (mem.stats.peakBytes < mem.stats.lowerBoundBytes)
      report(
        "stats",
        [],
        `device ${device}: peak ${mem.stats.peakBytes} below the lower bound ${mem.stats.lowerBoundBytes}`,
      );
  }
  return problems;
}
