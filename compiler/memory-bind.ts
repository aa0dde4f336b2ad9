// Attaches a memory plan (memory.ts) to a compiled plan: the runtime then allocates the plan's arenas
// and binds each tensor as a range of one (runtime/arenas.ts).
//
// WebGPU rejects a dispatch that binds one buffer both as read-only and as writable storage, even at
// disjoint ranges (measured with Dawn), and with arenas a kernel's inputs and outputs are ranges of the
// same buffer. So every storage binding is declared `read_write` here; the plan's bindings keep their
// real access (read / read_write), which is what liveness and placement reason about. In-place sharing
// is off: an in-place kernel would bind overlapping writable ranges, which WebGPU also rejects.
import { type MemoryLimits, planMemory } from "./memory.ts";
import type { CompiledPlan } from "./plan.ts";

export function withMemoryPlan(compiled: CompiledPlan, limits: MemoryLimits): CompiledPlan {
  const memory = planMemory(compiled.plan, limits, { inPlace: false });
  const wgsl = Object.fromEntries(
    Object.entries(compiled.wgsl).map(([kernel, source]) => [
      kernel,
      source.replace(/var<storage, read>/g, "var<storage, read_write>"),
    ]),
  );
  return { plan: { ...compiled.plan, memory }, wgsl };
}
