// memory-liveness: the lifetimes compiler/memory.ts plans by. The unit is one run of the sequence
// [schedule, training.evalSchedule]: position p is the p-th step of that sequence (the eval steps
// follow the training steps, so the temporaries of both share memory: the two never run
// concurrently). A tensor's uses are the steps that bind it (an alias's uses are its root's) or move
// it (a transfer reads `tensor` on `from` and writes `peer` on `to`); its lifetime is [first use, last
// use]. Each device runs only its own steps, in sequence order, so global positions order every
// device's steps correctly. A `read_write` binding may be a read-modify-write (`dx += …`): it is a use
// like any other, and counts as the tensor's definition only when it is its first access in a run.
//
// Pinned tensors are live at every position and share memory with nothing: parameters (batch-norm
// running statistics included) and velocities, everything the host writes before a run or reads
// after one (inputs, labels, the uniform, logits, losses, the eval inputs and logits, the gradients
// readGradients returns, replicas, and the `name@devD` copies the placed runtime reads per device),
// and every tensor that carries state into a run: one whose first access in the schedule (or in the
// eval schedule) is a read, e.g. something accumulated across the micro-steps of a micro-batched plan.
import { DiagnosticError, diag } from "./diagnostics.ts";
import type { Plan, PlanKernel, PlanTensor, ScheduleStep } from "./plan.ts";

export function internal(message: string): DiagnosticError {
  return new DiagnosticError(diag("AX9001", { message }, undefined));
}

/** A root tensor's uses over the sequence. */
export interface Uses {
  first: number;
  last: number;
  /** Its first access in the schedule or in the eval schedule is a read: it carries state in. */
  carried: boolean;
}

export interface Liveness {
  /** [schedule, evalSchedule]: position p is steps[p]. */
  steps: ScheduleStep[];
  scheduleSteps: number;
  uses: Map<string, Uses>;
}

/** The root of `name`: the tensor whose buffer it is (aliases are views). */
export function rootOf(tensors: ReadonlyMap<string, PlanTensor>, name: string): string {
  let at = name;
  for (let hops = 0; hops <= tensors.size; hops++) {
    const next = tensors.get(at)?.aliasOf;
    if (next === undefined) return at;
    at = next;
  }
  throw internal(`tensor \`${name}\` is an alias of itself`);
}

/** Root tensor → whether the step writes it (any read_write binding or a transfer's peer). */
function accesses(step: ScheduleStep, kernels: ReadonlyMap<string, PlanKernel>, root: (t: string) => string) {
  const out = new Map<string, boolean>();
  if (step.kind === "transfer") {
    out.set(root(step.tensor), false);
    out.set(root(step.peer), true);
    return out;
  }
  const k = kernels.get(step.kernel);
  if (!k) throw internal(`the schedule names an unknown kernel \`${step.kernel}\``);
  for (const b of k.bindings) {
    const r = root(b.tensor);
    out.set(r, (out.get(r) ?? false) || b.access === "read_write");
  }
  return out;
}

export function liveness(plan: Plan): Liveness {
  const tensors = new Map(plan.tensors.map((t) => [t.name, t]));
  const kernels = new Map(plan.kernels.map((k) => [k.name, k]));
  const steps = [...plan.schedule, ...(plan.training?.evalSchedule ?? [])];
  const uses = new Map<string, Uses>();
  const seenIn = [new Set<string>(), new Set<string>()]; // per phase: roots accessed so far
  steps.forEach((step, p) => {
    const phase = p < plan.schedule.length ? 0 : 1;
    for (const [r, writes] of accesses(step, kernels, (t) => rootOf(tensors, t))) {
      if (!tensors.has(r)) throw internal(`step ${p} uses the unknown tensor \`${r}\``);
      const u = uses.get(r) ?? { first: p, last: p, carried: false };
      u.last = p;
      if (!seenIn[phase].has(r) && !writes) u.carried = true;
      seenIn[phase].add(r);
      uses.set(r, u);
    }
  });
  return { steps, scheduleSteps: plan.schedule.length, uses };
}

const PERSISTENT_ROLES = new Set<PlanTensor["role"]>([
  "param",
  "derived",
  "velocity",
  "input",
  "labels",
  "uniform",
  "logits",
  "loss",
]);

/** Roots that must keep their bytes for the whole program (see the file comment). */
export function pinnedRoots(plan: Plan, live: Liveness, pin: readonly string[] = []): Set<string> {
  const t = plan.training;
  // read by the host per device as `name@devD` (runtime/placed.ts) as well as by name
  const perDevice = new Set([
    ...plan.inputs,
    plan.logits,
    ...(t ? [t.labels, t.loss, t.uniform, t.evalLogits, ...Object.values(t.evalInputs)] : []),
  ]);
  const named = new Set([
    ...perDevice,
    ...(t ? [...Object.values(t.gradients), ...Object.values(t.velocities)] : []),
    ...pin,
  ]);
  const visible = (name: string) => named.has(name) || perDevice.has(name.replace(/@dev\d+$/, ""));
  const byName = new Map(plan.tensors.map((x) => [x.name, x]));
  const pinned = new Set<string>();
  for (const x of plan.tensors) {
    const hostVisible =
      PERSISTENT_ROLES.has(x.role) ||
      x.replicaOf !== undefined ||
      visible(x.name) ||
      (x.partOf !== undefined && visible(x.partOf.tensor));
    if (hostVisible || live.uses.get(x.name)?.carried) pinned.add(rootOf(byName, x.name));
  }
  return pinned;
}
