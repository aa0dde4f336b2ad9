// The optimizer fusion (compiler/fuse-optimizer.ts): every device's SGD updates become one kernel per
// flat parameter arena segment, each parameter, momentum and gradient a view into its arena at an
// aligned offset; the arenas respect the binding limit and the fused update runs where the device's
// last update ran. The numbers are checked on a real adapter in test/gpu/fusion.test.ts (fused vs
// unfused) and test/gpu/placement.test.ts (placed vs one device).
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { compileSource } from "../../compiler/frontend.ts";
import type { Graph } from "../../compiler/graph.ts";
import { parameterArenas } from "../../compiler/fuse-optimizer.ts";
import { lowerTrainingHybrid } from "../../compiler/lower-hybrid.ts";
import { lowerTrainingData, lowerTrainingPlaced } from "../../compiler/lower-placed.ts";
import { lowerTraining, lowerTrainingSteps } from "../../compiler/lower-train.ts";
import { type Plan, planSchema } from "../../compiler/plan.ts";

const LIMIT = 134_217_728;
const model = (file: string): Graph => {
  const r = compileSource(readFileSync(new URL(`../../models/${file}`, import.meta.url), "utf8"));
  if (!r.graph) throw new Error(r.diagnostics.map((d) => d.message).join("; "));
  return r.graph;
};
const opts = (batch: number, fuse?: boolean) => ({
  batch,
  maxBindingBytes: LIMIT,
  source: "test.net",
  compilerVersion: "alexc test",
  momentum: 0.9,
  weightDecay: 5e-4,
  ...(fuse === undefined ? {} : { fuse }),
});
const updates = (plan: Plan) => plan.kernels.filter((k) => k.op.startsWith("sgd.update"));

/** Every view lies inside its arena, aligned, and no two views of one arena overlap. */
function expectSoundViews(plan: Plan) {
  const byName = new Map(plan.tensors.map((t) => [t.name, t]));
  const views = plan.tensors.filter((t) => t.aliasOffset !== undefined);
  expect(views.length).toBeGreaterThan(0);
  for (const v of views) {
    const root = byName.get(v.aliasOf!)!;
    expect(root.role, v.name).toBe("arena");
    expect(root.device).toBe(v.device);
    expect(v.aliasOffset! % 256, v.name).toBe(0);
    expect(v.aliasOffset! + v.bytes, v.name).toBeLessThanOrEqual(root.bytes);
    expect(root.bytes).toBeLessThanOrEqual(LIMIT);
  }
  const byArena = new Map<string, typeof views>();
  for (const v of views) byArena.set(v.aliasOf!, [...(byArena.get(v.aliasOf!) ?? []), v]);
  for (const [, vs] of byArena) {
    const sorted = [...vs].sort((a, b) => a.aliasOffset! - b.aliasOffset!);
    for (let i = 1; i < sorted.length; i++)
      expect(sorted[i].aliasOffset!).toBeGreaterThanOrEqual(sorted[i - 1].aliasOffset! + sorted[i - 1].bytes);
  }
}

describe("optimizer fusion", () => {
  it("one device, alexnet.net at batch 128: 17 updates become one kernel per 128 MiB arena segment", () => {
    const graph = model("alexnet.net");
    const unfused = lowerTrainingSteps(graph, opts(128)).plan;
    const fused = lowerTraining(graph, opts(128)).plan;
    expect(planSchema.safeParse(fused).success).toBe(true);
    const before = updates(unfused).length;
    const arenas = parameterArenas(unfused, { maxBindingBytes: LIMIT });
    // 61.0 M parameters (244 MB) do not fit one binding: fc6's two parts and fc7 need their own segments
    const bytes = unfused.tensors
      .filter((t) => t.role === "param" && !t.aliasOf)
      .reduce((a, t) => a + t.bytes, 0);
    expect(arenas.length).toBe(Math.ceil(bytes / LIMIT) + 1);
    expect(before).toBe(17);
    expect(updates(fused).map((k) => k.name)).toEqual(arenas.map((a) => a.kernel));
    expect(fused.kernels.length).toBe(unfused.kernels.length - before + arenas.length);
    expect(arenas.flatMap((a) => a.members).length).toBe(before);
    expectSoundViews(fused);
    // the fused updates run together, last, where the last per-parameter update ran
    const tail = fused.schedule.slice(-arenas.length).map((s) => s.kernel);
    expect(tail).toEqual(arenas.map((a) => a.kernel));
  });

  it("gives each device of every placement one update kernel when its parameters fit a binding", () => {
    const graph = model("alexnet-small.net");
    for (const lowering of [lowerTrainingPlaced, lowerTrainingData, lowerTrainingHybrid]) {
      const plan = lowering(graph, opts(8)).plan;
      expect(planSchema.safeParse(plan).success).toBe(true);
      expect(updates(plan).map((k) => k.device)).toEqual([0, 1]);
      expectSoundViews(plan);
      // the training section's names still resolve: every gradient and velocity is a view, or is split
      // into parts (model placement's tower slices) that are
      const isView = (name: string) => plan.tensors.find((t) => t.name === name)?.aliasOffset !== undefined;
      for (const name of [
        ...Object.values(plan.training!.gradients),
        ...Object.values(plan.training!.velocities),
      ]) {
        const parts = plan.tensors.filter((t) => t.partOf?.tensor === name).map((t) => t.name);
        expect(isView(name) || (parts.length > 0 && parts.every(isView)), name).toBe(true);
      }
    }
  });

  it("is off with fusion off: one update per parameter (part), no arenas", () => {
    const plan = lowerTraining(model("alexnet-small.net"), opts(8, false)).plan;
    expect(updates(plan).length).toBe(plan.params.filter((p) => p.trainable).length);
    expect(plan.tensors.some((t) => t.role === "arena" || t.aliasOffset !== undefined)).toBe(false);
  });

  it("writes a readable kernel: a header naming every parameter and where it starts in the arena", () => {
    const { plan, wgsl } = lowerTraining(model("alexnet-small.net"), opts(8));
    const [k] = updates(plan);
    expect(wgsl[k.name]).toContain("one kernel for every parameter of the device");
    for (const p of plan.params.filter((x) => x.trainable))
      expect(wgsl[k.name]).toContain(`${p.name} at element`);
  });
});
