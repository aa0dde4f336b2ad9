// lower(): plan shape, naming, aliases, automatic splitting of oversized weights, micro-batching of
// oversized activations and AX3001 when even one example does not fit. The numeric check of a split weight runs on the GPU (skipped without one).
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { DiagnosticError } from "../../compiler/diagnostics.ts";
import { compileSource } from "../../compiler/frontend.ts";
import type { NodeAttrs } from "../../compiler/graph.ts";
import { lower } from "../../compiler/lower.ts";
import { lowerTrainingHybrid } from "../../compiler/lower-hybrid.ts";
import { lowerTrainingData, lowerTrainingPlaced } from "../../compiler/lower-placed.ts";
import { lowerTraining } from "../../compiler/lower-train.ts";
import { planSchema } from "../../compiler/plan.ts";
import { MAX_WORKGROUPS_PER_DIM, foldGrid } from "../../compiler/wgsl/common.ts";
import { useGpu } from "../gpu/adapter.ts";
import {
  alexnetGraph,
  buildGraph,
  oneNodeGraph,
  pad,
  random,
  randomParams,
  relativeError,
  runGraph,
} from "../gpu/one-node.ts";

const LAVAPIPE_LIMIT = 128 * 1024 * 1024;
const opts = (batch = 1, maxBindingBytes = LAVAPIPE_LIMIT) => ({
  batch,
  maxBindingBytes,
  source: "models/alexnet.net",
  compilerVersion: "alexc test",
});
const dense = (units: number, bias = true): NodeAttrs => ({
  op: "dense",
  units,
  towers: { kind: "cross" },
  groups: 1,
  bias,
});

function diagnosticOf(f: () => unknown): DiagnosticError {
  try {
    f();
  } catch (e) {
    if (e instanceof DiagnosticError) return e;
    throw e;
  }
  throw new Error("expected a DiagnosticError");
}

describe("lower: AlexNet", () => {
  // direct convolutions throughout; "lower: Winograd" below covers the default 3×3 path
  const { plan, wgsl } = lower(alexnetGraph(), { ...opts(), winograd: false });

  it("produces a plan that validates with planSchema", () => {
    expect(() => planSchema.parse(plan)).not.toThrow();
    expect(plan.mode).toBe("forward");
    expect(plan.devices).toEqual([{ index: 0, label: "device 0" }]);
    expect(plan.schedule.map((s) => s.kernel)).toEqual(plan.kernels.map((k) => k.name));
  });

  it("names kernels stably after their node and index, one per node, none for aliases and the loss", () => {
    // conv and dense layers carry the ReLU after them as an epilogue, a max-pool the LRN before it
    // (compiler/fuse.ts): a kernel is named after its group, numbered by its anchor
    expect(plan.kernels.map((k) => k.name)).toEqual([
      "k00_conv1_relu1",
      "k03_norm1_pool1",
      "k04_conv2_relu2",
      "k07_norm2_pool2",
      "k08_conv3_relu3",
      "k10_conv4_relu4",
      "k12_conv5_relu5",
      "k14_pool5",
      "k15_fc6_relu6_p0",
      "k15_fc6_relu6_p1",
      "k18_fc7_relu7",
      "k21_fc8",
    ]);
    for (const k of plan.kernels) {
      expect(k.group).toContain(k.layer);
      expect(
        wgsl[k.name].startsWith(
          `// alexc kernel ${k.name}\n// layer: ${k.layer}   op: ${k.op}   fusion group: [${k.group.join(", ")}]`,
        ),
      ).toBe(true);
      expect(k.dispatch.every((d) => d <= MAX_WORKGROUPS_PER_DIM)).toBe(true);
    }
  });

  it("splits fc6's 151 MB weight by output rows under lavapipe's 128 MiB", () => {
    const parts = plan.tensors.filter((t) => t.partOf?.tensor === "fc6.weight");
    expect(parts.map((t) => [t.name, t.shape, t.partOf!.offset])).toEqual([
      ["fc6.weight.part0", [2048, 9216], 0],
      ["fc6.weight.part1", [2048, 9216], 2048 * 9216],
    ]);
    expect(parts.every((t) => t.bytes <= LAVAPIPE_LIMIT)).toBe(true);
    expect(plan.tensors.find((t) => t.name === "fc6.weight")).toBeUndefined();
    expect(plan.params.find((p) => p.name === "fc6.weight")?.shape).toEqual([4096, 9216]);
  });

  it("makes dropout an alias of its input's buffer and the loss's input the logits", () => {
    const drop7 = plan.tensors.find((t) => t.name === "drop7");
    expect(drop7).toMatchObject({ aliasOf: "relu7", role: "activation", shape: [1, 4096] });
    expect(plan.logits).toBe("fc8");
    expect(plan.tensors.find((t) => t.name === "fc8")).toMatchObject({ role: "logits", shape: [1, 1000] });
    expect(plan.tensors.some((t) => t.name === "loss")).toBe(false);
  });
});

describe("lower: Winograd", () => {
  const { plan } = lower(alexnetGraph(), opts(8));

  it("computes conv3–conv5 (3×3, stride 1) with Winograd and conv1, conv2 directly", () => {
    const ops = (layer: string) => plan.kernels.filter((k) => k.layer === layer).map((k) => k.op);
    expect(ops("conv1")).toEqual(["conv+relu"]);
    expect(ops("conv2")).toEqual(["conv+relu"]);
    for (const layer of ["conv3", "conv4", "conv5"])
      expect(ops(layer)).toEqual([
        "conv.winograd.weights",
        "conv.winograd.input",
        "conv.winograd.gemm",
        "conv.winograd.output+relu",
      ]);
  });

  it("transforms the weights once per upload (prepare), outside the forward schedule", () => {
    expect(plan.prepare).toEqual(["k08_conv3_relu3_wt", "k10_conv4_relu4_wt", "k12_conv5_relu5_wt"]);
    const scheduled = plan.schedule.map((s) => (s.kind === "dispatch" ? s.kernel : ""));
    for (const k of plan.prepare!) expect(scheduled).not.toContain(k);
    expect(plan.tensors.find((t) => t.name === "conv3.weight.winograd")).toMatchObject({
      role: "derived",
      bytes: 16 * 384 * 256 * 4,
    });
  });

  it("gives each GEMM the direct convolution's FLOPs as its equivalent, the transforms none", () => {
    const direct = lower(alexnetGraph(), { ...opts(8), winograd: false }).plan;
    for (const layer of ["conv3", "conv4", "conv5"]) {
      const ks = plan.kernels.filter((k) => k.layer === layer);
      const equivalent = ks.reduce((sum, k) => sum + (k.equivalentFlops ?? 0), 0);
      expect(equivalent).toBe(direct.kernels.find((k) => k.layer === layer)!.flops);
      // 16 products per 2×2 tile where the direct kernel does 36; 13×13 needs 7×7 tiles (14×14): 0.52
      const gemm = ks.find((k) => k.op === "conv.winograd.gemm")!;
      expect(gemm.flops / equivalent).toBeCloseTo((16 * 49) / (9 * 169), 6);
    }
  });

  it("is not used with f16 storage", () => {
    const f16 = lower(alexnetGraph(), { ...opts(), storage: "f16" }).plan;
    expect(f16.kernels.some((k) => k.op.startsWith("conv.winograd"))).toBe(false);
  });

  it("keeps the direct data gradient of a split conv weight (its parts add to dx)", () => {
    // 2 MiB bindings split conv3–conv5's weights (2.0–2.7 MB) in row parts
    const train = lowerTraining(alexnetGraph(), {
      ...opts(1, 2 << 20),
      ...{ momentum: 0.9, weightDecay: 5e-4 },
    }).plan;
    const conv4 = train.kernels.filter((k) => k.layer === "conv4" && k.name.includes("_dgrad"));
    expect(new Set(conv4.map((k) => k.op))).toEqual(new Set(["conv.dgrad"]));
    expect(conv4.length).toBeGreaterThan(1);
  });

  it("runs conv3–conv5 of a training step and of its evaluation schedule, weight transforms included", () => {
    const train = lowerTraining(alexnetGraph(), { ...opts(8), momentum: 0.9, weightDecay: 5e-4 }).plan;
    const byName = new Map(train.kernels.map((k) => [k.name, k]));
    const step = train.schedule.flatMap((s) => (s.kind === "dispatch" ? [byName.get(s.kernel)!] : []));
    const winograd = step.filter((k) => k.op.startsWith("conv.winograd"));
    expect([...new Set(winograd.map((k) => k.layer))]).toEqual(["conv3", "conv4", "conv5"]);
    // the weights change every step, so their transform is in the step, before the layer's input transform
    for (const layer of ["conv3", "conv4", "conv5"]) {
      const stages = step.filter((k) => k.layer === layer && k.name.includes("_fwd_")).map((k) => k.op);
      expect(stages[0]).toBe("conv.winograd.weights");
      expect(stages.length).toBeGreaterThanOrEqual(4);
    }
    // the data gradient is a 3×3 stride-1 convolution too (of dy, weights transposed and turned 180°)
    const dgrad = step.filter((k) => k.op.startsWith("conv.dgrad"));
    const stages = (output: string) =>
      ["weights", "input", "gemm", output].map((s) => `conv.dgrad.winograd.${s}`);
    // conv5's and conv4's fold relu4's and relu3's derivative into the store; conv3's input is a pool
    expect(dgrad.map((k) => k.op)).toEqual([
      ...stages("output+relu.grad"),
      ...stages("output+relu.grad"),
      ...stages("output"),
      "conv.dgrad", // conv2: 5×5
    ]);
    expect(dgrad.map((k) => k.layer)).toEqual([
      ...Array(4).fill("conv5"),
      ...Array(4).fill("conv4"),
      ...Array(4).fill("conv3"),
      "conv2",
    ]);
    // the weight gradient: the ∂L/∂y transform, 16 GEMMs over the tiles (the bias gradient folded
    // in) reading the forward's input transform V (one pass held every image), Gᵀ Z G
    const wgrad = step.filter((k) => /^conv\.(wgrad|bgrad)/.test(k.op));
    expect(wgrad.map((k) => `${k.layer} ${k.op}`)).toEqual([
      ...["conv5", "conv4", "conv3"].flatMap((layer) =>
        ["dy", "gemm+bias", "output"].map((s) => `${layer} conv.wgrad.winograd.${s}`),
      ),
      "conv2 conv.wgrad+bias", // 5×5: direct, the bias gradient folded in
      "conv1 conv.wgrad+bias",
    ]);
    for (const layer of ["conv3", "conv4", "conv5"]) {
      const gemm = wgrad.find((k) => k.layer === layer && k.op.startsWith("conv.wgrad.winograd.gemm"))!;
      expect(gemm.bindings.map((b) => b.tensor)).toContain(`${layer}.winograd_v`);
    }
    expect(train.prepare ?? []).toEqual([]);
    // evaluation runs on the current weights: its weight transforms are in its schedule too
    const evaluation = train.training!.evalSchedule.flatMap((s) =>
      s.kind === "dispatch" ? [byName.get(s.kernel)!] : [],
    );
    for (const layer of ["conv3", "conv4", "conv5"])
      expect(evaluation.filter((k) => k.layer === layer).map((k) => k.op)).toEqual(
        ["weights", "input", "gemm", "output+relu"].map((s) => `conv.winograd.${s}`),
      );
    const evalTensors = new Set(evaluation.flatMap((k) => k.bindings.map((b) => b.tensor)));
    expect(evalTensors.has("eval:conv3.weight.winograd")).toBe(true);
    expect(train.tensors.find((t) => t.name === "eval:conv3.weight.winograd")?.role).toBe("activation");
    const off = lowerTraining(alexnetGraph(), {
      ...opts(8),
      momentum: 0.9,
      weightDecay: 5e-4,
      winograd: false,
    });
    expect(off.plan.kernels.some((k) => k.op.startsWith("conv.winograd"))).toBe(false);
  });
});

describe("lower: f16 storage", () => {
  const f32 = lower(alexnetGraph(), opts());
  const { plan, wgsl } = lower(alexnetGraph(), { ...opts(), storage: "f16" });

  it("stores every tensor as f16 in half the bytes, so fc6's weight fits one 128 MiB binding", () => {
    expect(plan.tensors.every((t) => t.dtype === "f16")).toBe(true);
    expect(plan.tensors.find((t) => t.name === "fc6.weight")).toMatchObject({ bytes: 4096 * 9216 * 2 });
    expect(plan.kernels.map((k) => k.name)).toContain("k15_fc6_relu6");
    for (const t of plan.tensors.filter((t) => !t.aliasOf)) {
      const twin = f32.plan.tensors.find((u) => u.name === t.name);
      if (twin) expect(t.bytes * 2).toBe(twin.bytes);
    }
  });

  it("emits each kernel as its f32 form with f16 storage arrays and conversions at loads and stores", () => {
    for (const k of plan.kernels) {
      const source = wgsl[k.name];
      expect(source.startsWith("enable f16;\n")).toBe(true);
      expect(source).not.toMatch(/var<storage[^>]*>\s+\w+:\s*array<f32>/);
      expect(source).toMatch(/= f16\(/);
    }
  });
});

describe("lower: limits", () => {
  it("micro-batches a batch whose activations exceed the limit, at the largest divisor that fits", () => {
    const graph = oneNodeGraph({ op: "relu" }, [[4, 8, 8]]); // 1024 B per example
    const { plan } = lower(graph, opts(6, 4500)); // 4 examples fit; 3 is the largest divisor of 6
    expect(plan.batch).toBe(6);
    expect(plan.microBatch).toBe(3);
    expect(plan.tensors.find((t) => t.name === "x")).toMatchObject({ shape: [3, 4, 8, 8], bytes: 3072 });
    expect(() => planSchema.parse(plan)).not.toThrow();
    expect(lower(graph, opts(4, 4500)).plan.microBatch).toBeUndefined();
  });

  it("gives AX3001 naming the tensor, its bytes and the limit when even one example does not fit", () => {
    const graph = oneNodeGraph({ op: "relu" }, [[4, 8, 8]]); // 1024 B per example
    const e = diagnosticOf(() => lower(graph, opts(3, 1000)));
    expect(e.diagnostics[0].code).toBe("AX3001");
    expect(e.diagnostics[0].message).toBe(
      "`x` needs a 3072-byte binding but device 0 allows at most 1000 bytes",
    );
    expect(e.diagnostics[0].help).toMatch(/even one example does not fit/);
  });

  it("micro-batches placed plans whose per-device activations exceed the limit, in every strategy", () => {
    // batch 256 over two devices. Model placement: the 227² input (618,348 B per example, 158 MB)
    // and conv1's tower slice (48×55×55, 148 MB) are over 128 MiB: micro-batches of 128. Data
    // and hybrid placement: 128 examples per device of all 96 conv1 channels (148 MB): micro-batches
    // of 64 per device.
    const { graph } = compileSource(
      readFileSync(new URL("../../models/alexnet.net", import.meta.url), "utf8"),
    );
    const train = { ...opts(256), momentum: 0.9, weightDecay: 5e-4 };
    for (const [placed, microBatch] of [
      [lowerTrainingPlaced, 128],
      [lowerTrainingData, 64],
      [lowerTrainingHybrid, 64],
    ] as const) {
      const { plan } = placed(graph!, train);
      expect(planSchema.safeParse(plan).success, placed.name).toBe(true);
      expect(plan, placed.name).toMatchObject({ batch: 256, microBatch });
      for (const t of plan.tensors)
        expect(t.bytes, `${placed.name} ${t.name}`).toBeLessThanOrEqual(LAVAPIPE_LIMIT);
      expect(
        plan.kernels.filter((k) => k.op.startsWith("sgd.update")).every((k) => k.op === "sgd.update.micro"),
      ).toBe(true);
    }
  });

  it("lowers full AlexNet at the paper's batch 128 under 128 MiB by micro-batching (forward and training)", () => {
    // conv1's output is 128 × 96 × 55 × 55 × 4 B = 148.7 MB at batch 128: two micro-batches of 64.
    const forward = lower(alexnetGraph(), opts(128)).plan;
    expect(forward).toMatchObject({ batch: 128, microBatch: 64 });
    const { plan, wgsl } = lowerTraining(alexnetGraph(), { ...opts(128), momentum: 0.9, weightDecay: 5e-4 });
    expect(planSchema.safeParse(plan).success).toBe(true);
    expect(plan).toMatchObject({ mode: "train", batch: 128, microBatch: 64 });
    for (const t of plan.tensors) expect(t.bytes, t.name).toBeLessThanOrEqual(LAVAPIPE_LIMIT);
    expect(plan.tensors.find((t) => t.name === "relu1")?.shape).toEqual([64, 96, 55, 55]); // conv1+relu1's output
    expect(plan.tensors.find((t) => t.name === plan.training!.labels)?.shape).toEqual([64]);
    expect(Object.keys(wgsl).length).toBe(plan.kernels.length);
    const updates = plan.kernels.filter((k) => k.op.startsWith("sgd.update"));
    expect(updates.length).toBeGreaterThan(0);
    for (const k of updates) {
      expect(k.op).toBe("sgd.update.micro");
      expect(wgsl[k.name]).toContain("step.micro");
    }
    console.log(
      `alexnet train plan at batch 128: ${plan.kernels.length} kernels, micro-batch ${plan.microBatch}`,
    );
  });

  it("gives AX3001 for a weight whose single output row exceeds the limit", () => {
    // input [100, 1, 1] is 400 B, but one 3×3 filter over 100 channels is 3600 B
    const attrs: NodeAttrs = {
      op: "conv",
      filters: 2,
      kernel: [3, 3],
      stride: [1, 1],
      pad: pad(1),
      round: "floor",
      towers: { kind: "cross" },
      groups: 1,
      bias: false,
    };
    const e = diagnosticOf(() => lower(oneNodeGraph(attrs, [[100, 1, 1]]), opts(1, 1000)));
    expect(e.diagnostics[0].code).toBe("AX3001");
    expect(e.diagnostics[0].message).toBe(
      "`y.weight[0]` needs a 3600-byte binding but device 0 allows at most 1000 bytes",
    );
  });

  it("splits a dense weight into parts of whole rows, a multiple of 4 where possible", () => {
    const { plan } = lower(oneNodeGraph(dense(10), [[30]]), opts(1, 500)); // a row is 120 B: ≤ 4 rows per part
    const parts = plan.tensors.filter((t) => t.partOf);
    expect(parts.map((t) => [t.shape[0], t.partOf!.offset])).toEqual([
      [4, 0],
      [4, 120],
      [2, 240],
    ]);
    expect(plan.kernels.map((k) => k.name)).toEqual(["k00_y_p0", "k00_y_p1", "k00_y_p2"]);
  });

  it("folds more than 65,535 workgroups into a 2-D grid", () => {
    expect(foldGrid(65_535)).toEqual([65_535, 1, 1]);
    const [x, y] = foldGrid(200_000);
    expect(x * y).toBeGreaterThanOrEqual(200_000);
    expect(Math.max(x, y)).toBeLessThanOrEqual(MAX_WORKGROUPS_PER_DIM);
  });
});

const gpu = await useGpu();

gpu.describe("lower: split weights compute the same numbers (GPU)", () => {
  it("dense split into 3 parts", async () => {
    const graph = buildGraph({ x: [30] }, [["y", dense(10), ["x"]]]);
    const params = randomParams(graph, 5);
    const x = random(3 * 30, 9);
    const { y, executor } = await runGraph(gpu.dev!, graph, {
      batch: 3,
      maxBindingBytes: 500,
      params,
      inputs: { x },
    });
    expect(executor.kernels).toHaveLength(3);
    expect(await executor.readTensor("y.weight")).toEqual(params.get("y.weight"));
    executor.destroy();
    const w = params.get("y.weight")!;
    const b = params.get("y.bias")!;
    const want = new Float32Array(30).map((_, i) => {
      const [n, o] = [Math.floor(i / 10), i % 10];
      let s = b[o];
      for (let k = 0; k < 30; k++) s += w[o * 30 + k] * x[n * 30 + k];
      return s;
    });
    expect(relativeError(y, want)).toBeLessThanOrEqual(1e-5);
  });

  it("grouped conv split by output channels matches the unsplit conv", async () => {
    const attrs: NodeAttrs = {
      op: "conv",
      filters: 8,
      kernel: [3, 3],
      stride: [1, 1],
      pad: pad(1),
      round: "floor",
      towers: { kind: "local" },
      groups: 2,
      bias: true,
    };
    const graph = oneNodeGraph(attrs, [[4, 3, 3]]);
    const params = randomParams(graph, 3);
    const inputs = { x: random(4 * 3 * 3, 4) };
    // the direct kernel on both sides (Winograd's scratch would not fit 300 B): bitwise comparable
    const whole = await runGraph(gpu.dev!, graph, { batch: 1, params, inputs, winograd: false });
    // A filter is 2·3·3·4 = 72 B; 300 B allows 4 output channels per part: 2 parts (the output is 288 B).
    const split = await runGraph(gpu.dev!, graph, {
      ...{ batch: 1, params, inputs, maxBindingBytes: 300, winograd: false },
    });
    expect(split.executor.kernels.map((k) => k.name)).toEqual(["k00_y_p0", "k00_y_p1"]);
    expect(split.y).toEqual(whole.y);
    whole.executor.destroy();
    split.executor.destroy();
  });
});
