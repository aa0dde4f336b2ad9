// Fusion groups (compiler/fuse.ts) and what the lowerings make of them: conv / dense anchors absorb
// the activation after them (and, in training, a dropout after a relu), a max-pool the LRN before it;
// the absorbed layers' kernels and the values no backward reads disappear, and every boundary has a
// reason.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { compileSource } from "../../compiler/frontend.ts";
import { computedBy, explainFusion, fusedAt, planFusion } from "../../compiler/fuse.ts";
import type { Graph } from "../../compiler/graph.ts";
import { lower } from "../../compiler/lower.ts";
import { lowerTraining } from "../../compiler/lower-train.ts";

const graphOf = (source: string): Graph => {
  const r = compileSource(source);
  if (!r.graph) throw new Error(r.diagnostics.map((d) => d.message).join("; "));
  return r.graph;
};
const model = (file: string) =>
  graphOf(readFileSync(new URL(`../../models/${file}`, import.meta.url), "utf8"));
const opts = (batch: number, fuse?: boolean) => ({
  batch,
  maxBindingBytes: 134_217_728,
  source: "test.net",
  compilerVersion: "alexc test",
  ...(fuse === undefined ? {} : { fuse }),
});
const train = { momentum: 0.9, weightDecay: 5e-4 };
const dispatches = (schedule: { kind: string }[]) => schedule.filter((s) => s.kind === "dispatch").length;

describe("planFusion", () => {
  it("fuses AlexNet's convs and fc6, fc7 with their ReLU (and dropout), each LRN into its pool", () => {
    const fusion = planFusion(model("alexnet.net"));
    const fused = fusion.groups.filter((g) => g.members.length > 1).map((g) => g.name);
    expect(fused).toEqual([
      "conv1+relu1",
      "norm1+pool1",
      "conv2+relu2",
      "norm2+pool2",
      "conv3+relu3",
      "conv4+relu4",
      "conv5+relu5",
      "fc6+relu6+drop6",
      "fc7+relu7+drop7",
    ]);
    for (const g of fusion.groups.filter((x) => x.epilogue))
      expect(g).toMatchObject({ epilogue: { op: "relu", node: g.members[1] }, output: g.members.at(-1) });
    const norm1 = fusion.groups.find((g) => g.name === "norm1+pool1");
    expect(norm1).toMatchObject({ anchor: "pool1", prologue: { op: "lrn", node: "norm1" }, output: "pool1" });
    expect(fusion.groups.find((g) => g.anchor === "fc6")).toMatchObject({
      dropout: { node: "drop6", input: "relu6" },
      output: "drop6",
    });
    const reason = (after: string) => fusion.boundaries.find((b) => b.after === after)?.reason;
    expect(reason("fc8")).toMatch(/logits/);
    expect(reason("relu1")).toMatch(/norm1 \(lrn\), is not element-wise/);
    expect(reason("pool1")).toMatch(/conv2 \(conv\), is an anchor of its own/);
    expect(reason("pool5")).toMatch(/maxpool is not an anchor/);
    // every layer in exactly one group
    const members = fusion.groups.flatMap((g) => g.members);
    expect(new Set(members).size).toBe(members.length);
    expect(members.length).toBe(model("alexnet.net").nodes.length);
  });

  it("does not fuse an anchor whose output feeds two layers, or one followed by batchnorm", () => {
    const g = graphOf(`network t {
  input image: f32[3, 8, 8]
  classes: 4
  conv1 = conv(image, filters: 4, kernel: 3, pad: 1)
  relu1 = relu(conv1)
  both = concat(conv1, relu1)
  conv2 = conv(both, filters: 4, kernel: 3, pad: 1)
  bn2 = batchnorm(conv2)
  relu2 = relu(bn2)
  fc = dense(relu2, units: classes)
  loss = softmax_cross_entropy(fc)
}`);
    const fusion = planFusion(g);
    expect(fusion.groups.every((x) => x.members.length === 1)).toBe(true);
    const reason = (after: string) => fusion.boundaries.find((b) => b.after === after)?.reason;
    expect(reason("conv1")).toMatch(/feeds 2 layers \(relu1, both\)/);
    expect(reason("conv2")).toMatch(/bn2 \(batchnorm\), is not an element-wise activation/);
  });

  it("fuses tanh and sigmoid epilogues too (never a dropout after them), and nothing with fusion disabled", () => {
    const tanh = planFusion(model("fig1-tanh-fmnist.net"));
    expect(tanh.groups.filter((g) => g.epilogue?.op === "tanh").length).toBe(3);
    expect(tanh.groups.some((g) => g.dropout)).toBe(false);
    const off = planFusion(model("alexnet.net"), { enabled: false });
    expect(off.groups.every((g) => g.members.length === 1)).toBe(true);
    expect(explainFusion(off)).toMatch(/^\d+ groups for \d+ layers \(0 fused\)/);
  });

  it("explains each group and why it ends", () => {
    const text = explainFusion(planFusion(model("alexnet.net")));
    expect(text.split("\n")[0]).toBe("12 groups for 23 layers (9 fused)");
    expect(text).toMatch(/conv1\+relu1 +conv1 with relu epilogue; ends: the next layer, norm1 \(lrn\)/);
    expect(text).toMatch(/^norm1\+pool1 +pool1 computes norm1's LRN in its loads \(never stored\)/m);
    expect(text).toMatch(
      /^fc6\+relu6\+drop6 +fc6 with relu epilogue and drop6's mask in training \(relu6 never stored: its derivative reads drop6; the identity at inference\)/m,
    );
  });

  it("fuses an LRN only into a max-pool that is its only reader, and a dropout only after relu or nothing", () => {
    const g = graphOf(`network t {
  input image: f32[3, 8, 8]
  classes: 4
  c1 = conv(image, filters: 4, kernel: 3, pad: 1)
  r1 = relu(c1)
  n1 = lrn(r1, size: 3, k: 2, alpha: 1e-4, beta: 0.75)
  p1 = avgpool(n1, window: 2, stride: 2)
  n2 = lrn(p1, size: 3, k: 2, alpha: 1e-4, beta: 0.75)
  both = concat(n2, p1)
  n3 = lrn(both, size: 3, k: 2, alpha: 1e-4, beta: 0.75)
  p3 = maxpool(n3, window: 2, stride: 2)
  f1 = dense(p3, units: 8)
  t1 = tanh(f1)
  d1 = dropout(t1, p: 0.5)
  f2 = dense(d1, units: 8)
  d2 = dropout(f2, p: 0.5)
  fc = dense(d2, units: classes)
  loss = softmax_cross_entropy(fc)
}`);
    const fusion = planFusion(g);
    expect(fusion.groups.filter((x) => x.members.length > 1).map((x) => x.name)).toEqual([
      "c1+r1",
      "n3+p3",
      "f1+t1",
      "f2+d2",
    ]);
    const reason = (after: string) => fusion.boundaries.find((b) => b.after === after)?.reason;
    expect(reason("n1")).toMatch(/p1 \(avgpool\), is not a max-pool/);
    expect(reason("n2")).toMatch(/both \(concat\), is not a max-pool/);
    expect(reason("t1")).toMatch(/d1 \(dropout\), is no epilogue after tanh/);
    expect(fusion.groups.find((x) => x.anchor === "f2")).toMatchObject({
      dropout: { node: "d2", input: "f2" },
      output: "d2",
    });
    // at inference (and for an inactive dropout) the dropout is the identity: f2 alone writes f2
    expect(fusedAt(fusion, "f2")).toBeUndefined();
    expect(fusedAt(fusion, "f2", () => true)?.members).toEqual(["f2", "d2"]);
    expect(computedBy(fusion, "d2")).toBeUndefined();
    expect(computedBy(fusion, "d2", () => true)).toBe("f2");
    expect(computedBy(fusion, "n3")).toBe("p3");
  });
});

describe("fused lowering", () => {
  it("writes the activation's tensor from the anchor's kernel and never materialises the anchor's", () => {
    const { plan, wgsl } = lower(model("alexnet-small.net"), opts(2));
    const names = plan.tensors.map((t) => t.name);
    expect(names).not.toContain("conv1");
    expect(names).toContain("relu1");
    const k = plan.kernels.find((x) => x.group.join() === "conv1,relu1")!;
    expect(k).toMatchObject({ layer: "conv1", op: "conv+relu" });
    expect(k.bindings.at(-1)).toMatchObject({ tensor: "relu1", access: "read_write" });
    expect(wgsl[k.name]).toContain("fn activation(v: f32) -> f32");
    expect(wgsl[k.name]).toContain("fusion group: [conv1, relu1]");
    expect(plan.kernels.some((x) => x.layer === "relu1")).toBe(false);
  });

  it("computes an LRN in its max-pool's loads: no LRN tensor, at inference and in training", () => {
    const graph = model("alexnet-small.net");
    const { plan, wgsl } = lower(graph, opts(2));
    expect(plan.tensors.map((t) => t.name)).not.toContain("stage1.norm");
    const k = plan.kernels.find((x) => x.group.join() === "stage1.norm,stage1.pool")!;
    expect(k).toMatchObject({ layer: "stage1.pool", op: "lrn+maxpool" });
    expect(k.bindings.map((b) => [b.tensor, b.access])).toEqual([
      ["relu1", "read"],
      ["stage1.pool", "read_write"],
    ]);
    expect(wgsl[k.name]).toContain("fn lrn_at(nc: u32, p: u32) -> f32");
    expect(wgsl[k.name]).toContain("fusion group: [stage1.norm, stage1.pool]");

    const t = lowerTraining(graph, { ...opts(2), ...train });
    const names = t.plan.tensors.map((x) => x.name);
    expect(names).not.toContain("stage1.norm");
    // the forward kernel writes the arg-max the pool's backward reads; no arg-max kernel for it
    const fwd = t.plan.kernels.find((x) => x.op === "lrn+maxpool" && x.layer === "stage1.pool")!;
    expect(fwd.bindings.map((b) => b.tensor)).toEqual(["relu1", "stage1.pool", "stage1.pool:argmax"]);
    expect(t.plan.tensors.find((x) => x.name === "stage1.pool:argmax")).toMatchObject({ dtype: "u32" });
    expect(t.plan.kernels.filter((x) => x.op === "maxpool.argmax").map((x) => x.layer)).toEqual(["pool5"]);
    expect(t.plan.training!.saved).toContain("stage1.pool:argmax");
    expect(t.plan.training!.saved).not.toContain("stage1.norm");
  });

  it("applies an active dropout in the anchor's kernel; relu's derivative reads the dropout's output", () => {
    const graph = model("alexnet-small.net");
    const { plan, wgsl } = lowerTraining(graph, { ...opts(2), ...train, activeDropout: ["drop6"] });
    const names = plan.tensors.map((t) => t.name);
    expect(names).not.toContain("relu6");
    const fc6 = plan.kernels.find((k) => k.group.join() === "fc6,relu6,drop6")!;
    expect(fc6).toMatchObject({ layer: "fc6", op: "dense+relu+dropout" });
    expect(fc6.bindings.map((b) => [b.tensor, b.access]).slice(-2)).toEqual([
      ["drop6", "read_write"],
      ["input:step", "uniform"],
    ]);
    expect(wgsl[fc6.name]).toContain("fn dropout_epilogue(v: f32, i: u32) -> f32");
    expect(plan.kernels.filter((k) => k.op === "dropout.train")).toEqual([]);
    const grad = plan.kernels.find((k) => k.op === "dropout.grad" && k.layer === "drop6")!;
    expect(grad.bindings.map((b) => b.tensor)).toContain("drop6");
    // drop7 is inactive: the identity, an alias of relu7, which fc7's kernel writes as before
    expect(names).toContain("relu7");
    expect(plan.tensors.find((t) => t.name === "drop7")).toMatchObject({ aliasOf: "relu7" });
    expect(plan.kernels.find((k) => k.layer === "fc7" && k.op.startsWith("dense+"))!.group).toEqual([
      "fc7",
      "relu7",
    ]);
    expect(plan.training!.saved).toContain("drop6");
    // the eval schedule is the inference plan: dropout is an alias there
    const evalFc6 = plan.kernels.find((k) => k.name.includes("_eval_fc6"))!;
    expect(evalFc6.group).toEqual(["fc6", "relu6"]);
  });

  it("saves the activation, LRN, arg-max and dropout kernels of AlexNet", () => {
    const graph = model("alexnet.net");
    const fwd = [lower(graph, opts(1)), lower(graph, opts(1, false))].map((c) => dispatches(c.plan.schedule));
    expect(fwd[1] - fwd[0]).toBe(9);
    const [fused, unfused] = [true, false].map(
      (fuse) => lowerTraining(graph, { ...opts(128, fuse), ...train }).plan,
    );
    const ops = (plan: typeof fused) => {
      const byName = new Map(plan.kernels.map((k) => [k.name, k.op]));
      return plan.schedule.flatMap((s) => (s.kind === "dispatch" ? [byName.get(s.kernel)!] : []));
    };
    const count = (plan: typeof fused, op: string) => ops(plan).filter((o) => o === op).length;
    // 7 activation kernels forward, and 7 backward: each ReLU's derivative is applied by the kernel
    // that produces its ∂L/∂y (LRN, pool, conv and dropout backward); 2 LRN kernels forward, the 2
    // arg-max kernels of their pools, and the 2 dropout masks forward
    for (const [op, before] of [
      ["relu", 7],
      ["relu.grad", 7],
      ["lrn", 2],
      ["dropout.train", 2],
    ] as const) {
      expect(count(unfused, op), op).toBe(before);
      expect(count(fused, op), op).toBe(0);
    }
    expect([count(unfused, "maxpool.argmax"), count(fused, "maxpool.argmax")]).toEqual([3, 1]);
    expect(count(fused, "lrn+maxpool")).toBe(2);
    expect(count(fused, "dense+relu+dropout")).toBe(3); // fc6's two weight parts, fc7
    expect(dispatches(unfused.training!.evalSchedule) - dispatches(fused.training!.evalSchedule)).toBe(9);
    console.log(
      `alexnet.net dispatches per run of the schedule: forward ${fwd[1]} → ${fwd[0]}, ` +
        `training ${dispatches(unfused.schedule)} → ${dispatches(fused.schedule)}`,
    );
  });
});
