// The TrainingGraph's structure (no GPU): a rule per op, summed multi-consumer gradients, no input
// gradient, one update per trainable parameter, and training plans that validate.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import {
  type BackwardStep,
  type TrainingStep,
  differentiate,
  gradientRules,
} from "../../compiler/autodiff.ts";
import { DiagnosticError } from "../../compiler/diagnostics.ts";
import { compileSource } from "../../compiler/frontend.ts";
import type { Graph, NodeAttrs, OpKind } from "../../compiler/graph.ts";
import { lowerTraining } from "../../compiler/lower-train.ts";
import { planSchema } from "../../compiler/plan.ts";
import { dropoutHash, dropoutIndex, dropoutKeep } from "../../compiler/wgsl/backward/util.ts";
import { alexnetGraph, buildGraph, pad } from "../gpu/one-node.ts";

function model(name: string): Graph {
  const r = compileSource(readFileSync(new URL(`../../models/${name}`, import.meta.url), "utf8"));
  if (!r.graph) throw new Error(r.diagnostics.map((d) => d.message).join("; "));
  return r.graph;
}

const conv = (filters: number, groups = 1): NodeAttrs => ({
  op: "conv",
  filters,
  kernel: [3, 3],
  stride: [1, 1],
  pad: pad(1),
  round: "floor",
  towers: { kind: "cross" },
  groups,
  bias: true,
});

/** A graph with every op and a value read by two consumers (and one consumer reading it twice). */
function everyOpGraph(): Graph {
  return buildGraph({ x: [4, 8, 8] }, [
    ["c1", conv(4, 2), ["x"]],
    ["bn", { op: "batchnorm", eps: 1e-5, momentum: 0.1 }, ["c1"]],
    ["t", { op: "tanh" }, ["bn"]],
    ["ap", { op: "avgpool", window: [2, 2], stride: [1, 1], pad: pad(0), round: "floor" }, ["t"]],
    ["n", { op: "lrn", size: 3, k: 2, alpha: 1e-4, beta: 0.75, alphaOf: "sum", groups: 2 }, ["ap"]],
    ["mp", { op: "maxpool", window: [3, 3], stride: [2, 2], pad: pad(0), round: "floor" }, ["n"]],
    ["sg", { op: "sigmoid" }, ["mp"]],
    ["r", { op: "relu" }, ["mp"]],
    ["cat", { op: "concat" }, ["sg", "r", "sg"]],
    ["fl", { op: "flatten" }, ["cat"]],
    ["d1", { op: "dense", units: 8, towers: { kind: "cross" }, groups: 1, bias: true }, ["fl"]],
    ["dr", { op: "dropout", p: 0.5 }, ["d1"]],
    ["sm", { op: "softmax" }, ["dr"]],
    ["d2", { op: "dense", units: 5, towers: { kind: "cross" }, groups: 1, bias: true }, ["sm"]],
    ["loss", { op: "softmax_cross_entropy" }, ["d2"]],
  ]);
}

const backward = (steps: TrainingStep[]) => steps.filter((s): s is BackwardStep => s.kind === "backward");
const kinds = (steps: TrainingStep[]) => steps.map((s) => s.kind);

describe("differentiate", () => {
  it("has a gradient rule for every op of the graph IR", () => {
    const ops: OpKind[] = [
      "conv",
      "dense",
      "maxpool",
      "avgpool",
      "lrn",
      "dropout",
      "batchnorm",
      "relu",
      "tanh",
      "sigmoid",
      "flatten",
      "concat",
      "softmax",
      "softmax_cross_entropy",
    ];
    expect(Object.keys(gradientRules).sort()).toEqual([...ops].sort());
    const graph = everyOpGraph();
    expect(new Set(graph.nodes.map((n) => n.attrs.op))).toEqual(new Set(ops));
    // Every node of a graph using every op gets a backward step.
    expect(backward(differentiate(graph).steps).map((s) => s.node)).toEqual(
      [...graph.nodes].reverse().map((n) => n.name),
    );
  });

  it("orders forward, loss, backward (reverse), then updates", () => {
    const tg = differentiate(model("alexnet-small.net"));
    const order = kinds(tg.steps);
    const phase = { forward: 0, loss: 1, backward: 2, accumulate: 2, update: 3 };
    expect(order.map((k) => phase[k])).toEqual([...order.map((k) => phase[k])].sort());
    expect(order.filter((k) => k === "loss")).toHaveLength(1);
    expect(backward(tg.steps).map((s) => s.node)).toEqual([...tg.graph.nodes].reverse().map((n) => n.name));
  });

  it("sums the gradients of a value with several consumers, in consumer order", () => {
    const tg = differentiate(everyOpGraph());
    const sums = tg.steps.filter((s) => s.kind === "accumulate");
    expect(sums).toEqual([
      // sg is read by cat twice (slots 0 and 2): one term per slot
      { kind: "accumulate", value: "sg", terms: ["grad:sg@cat#0", "grad:sg@cat#2"], output: "grad:sg" },
      { kind: "accumulate", value: "mp", terms: ["grad:mp@sg", "grad:mp@r"], output: "grad:mp" },
    ]);
    // Each sum runs after every term is written and before the producer's backward reads it.
    const index = (pred: (s: TrainingStep) => boolean) => tg.steps.findIndex(pred);
    const sumMp = index((s) => s.kind === "accumulate" && s.value === "mp");
    expect(index((s) => s.kind === "backward" && s.node === "r")).toBeLessThan(sumMp);
    expect(index((s) => s.kind === "backward" && s.node === "sg")).toBeLessThan(sumMp);
    expect(index((s) => s.kind === "backward" && s.node === "mp")).toBeGreaterThan(sumMp);
  });

  it("computes no gradient for the network input unless asked", () => {
    const tg = differentiate(model("alexnet-small.net"));
    const conv1 = backward(tg.steps).find((s) => s.node === "conv1")!;
    expect(conv1.dx).toEqual([]);
    expect(conv1.saved).toEqual(["image"]);
    expect(tg.valueGradients.image).toBeUndefined();
    const withInput = differentiate(model("alexnet-small.net"), { inputGradients: true });
    expect(withInput.valueGradients.image).toBe("grad:image");
  });

  it("updates every trainable parameter once and never a running statistic", () => {
    for (const graph of [model("alexnet-small.net"), everyOpGraph(), alexnetGraph()]) {
      const tg = differentiate(graph);
      const updated = tg.steps.flatMap((s) => (s.kind === "update" ? [s.param] : []));
      expect(updated).toEqual(graph.params.filter((p) => p.trainable).map((p) => p.name));
      expect(updated.some((p) => p.includes("running"))).toBe(false);
      for (const p of updated) expect(tg.gradients[p]).toBe(`grad:${p}`);
    }
  });

  it("records the saved forward values", () => {
    const tg = differentiate(everyOpGraph());
    expect(tg.saved).toEqual(
      expect.arrayContaining([
        "loss:probs",
        "input:labels",
        "sm",
        "r",
        "sg",
        "n",
        "t",
        "bn:batch_mean",
        "c1",
        "x",
      ]),
    );
    // Dropout regenerates its mask and average pooling needs no values: neither saves anything.
    for (const s of backward(tg.steps).filter((s) => s.op === "dropout" || s.op === "avgpool"))
      expect(s.saved).toEqual([]);
  });

  it("makes inactive dropout and flatten views, and rejects unknown dropout names", () => {
    const tg = differentiate(model("alexnet-small.net"), { activeDropout: ["drop7"] });
    expect(tg.dropout).toEqual([
      { node: "drop6", layer: 17, p: 0.5, active: false, perExample: 512, offset: 0, stride: 1 },
      { node: "drop7", layer: 20, p: 0.5, active: true, perExample: 512, offset: 0, stride: 1 },
    ]);
    const drop6 = backward(tg.steps).find((s) => s.node === "drop6")!;
    expect(drop6.dx[0].view).toBe(true);
    expect(() => differentiate(model("alexnet-small.net"), { activeDropout: ["fc6"] })).toThrow(
      DiagnosticError,
    );
  });

  it("mirrors the WGSL dropout hash on the host", () => {
    // Reference values computed independently (Python) from lowbias32's published constants.
    expect(dropoutHash(1, 3, 7)).toBe(3198519587);
    expect(dropoutHash(42, 17, 1000)).toBe(2022191329);
    let kept = 0;
    for (let i = 0; i < 10_000; i++) if (dropoutKeep(42, 3, i, 0.5)) kept++;
    expect(Math.abs(kept - 5000)).toBeLessThan(200);
    expect(dropoutHash(1, 3, 7)).not.toBe(dropoutHash(2, 3, 7));
    expect(dropoutHash(1, 3, 7)).not.toBe(dropoutHash(1, 4, 7));
    // the hash index of element j of global example e of a layer with S elements per example
    expect(dropoutIndex(2, 512, 300)).toBe(2 * 512 + 300);
    expect(dropoutIndex(0x10000, 0x10000, 5)).toBe(5); // mod 2³², as the WGSL u32 arithmetic
  });
});

describe("lowerTraining", () => {
  const opts = { source: "test", compilerVersion: "alexc test", momentum: 0.9, weightDecay: 5e-4 };

  it("produces a valid train plan for alexnet-small with an eval schedule sharing the parameters", () => {
    const { plan, wgsl } = lowerTraining(model("alexnet-small.net"), {
      ...opts,
      batch: 4,
      maxBindingBytes: 2 ** 27,
    });
    expect(planSchema.safeParse(plan).success).toBe(true);
    expect(plan.mode).toBe("train");
    const training = plan.training!;
    const names = new Set(plan.tensors.map((t) => t.name));
    for (const k of plan.kernels) {
      expect(wgsl[k.name]).toContain(`// alexc kernel ${k.name}\n`);
      for (const b of k.bindings) expect(names.has(b.tensor)).toBe(true);
    }
    const evalTensors = new Set(
      training.evalSchedule.flatMap((s) =>
        plan.kernels.find((k) => k.name === s.kernel)!.bindings.map((b) => b.tensor),
      ),
    );
    expect(evalTensors.has("conv1.weight")).toBe(true);
    expect(
      [...evalTensors].every((t) => t.startsWith("eval:") || plan.params.some((p) => t.startsWith(p.name))),
    );
    expect(plan.schedule.length + training.evalSchedule.length).toBe(plan.kernels.length);
    expect(Object.keys(training.velocities)).toHaveLength(16);
  });

  it("splits fc6's weight, gradient and velocity under a 128 MiB binding limit (full AlexNet)", () => {
    // unfused: one update per part (fused, every part is a view into the flat parameter arenas,
    // test/compiler/fuse-optimizer.test.ts)
    const { plan } = lowerTraining(alexnetGraph(), {
      ...opts,
      batch: 1,
      maxBindingBytes: 2 ** 27,
      fuse: false,
    });
    for (const base of ["fc6.weight", "grad:fc6.weight", "velocity:fc6.weight"]) {
      const parts = plan.tensors.filter((t) => t.partOf?.tensor === base);
      expect(parts.length).toBe(2);
      expect(parts.every((t) => t.bytes <= 2 ** 27)).toBe(true);
    }
    expect(plan.tensors.every((t) => t.aliasOf || t.bytes <= 2 ** 27)).toBe(true);
    expect(plan.kernels.filter((k) => k.op === "sgd.update" && k.layer === "fc6")).toHaveLength(3);
  });

  it("keeps forward plans valid", async () => {
    const { lower } = await import("../../compiler/lower.ts");
    const { plan } = lower(model("alexnet-small.net"), { ...opts, batch: 2, maxBindingBytes: 2 ** 27 });
    expect(plan.mode).toBe("forward");
    expect(plan.training).toBeUndefined();
    expect(planSchema.safeParse(plan).success).toBe(true);
  });
});
