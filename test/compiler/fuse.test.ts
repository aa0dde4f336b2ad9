// Fusion groups (compiler/fuse.ts) and what the lowerings make of them: conv / dense anchors absorb
// the activation after them, the absorbed layer's kernel and the anchor's own output disappear, and
// every boundary has a reason.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { compileSource } from "../../compiler/frontend.ts";
import { explainFusion, planFusion } from "../../compiler/fuse.ts";
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
  it("fuses every AlexNet conv and the first two dense layers with their ReLU; fc8 stays alone", () => {
    const fusion = planFusion(model("alexnet.net"));
    const fused = fusion.groups.filter((g) => g.members.length > 1).map((g) => g.name);
    expect(fused).toEqual([
      "conv1+relu1",
      "conv2+relu2",
      "conv3+relu3",
      "conv4+relu4",
      "conv5+relu5",
      "fc6+relu6",
      "fc7+relu7",
    ]);
    for (const g of fusion.groups.filter((x) => x.members.length > 1))
      expect(g).toMatchObject({ epilogue: { op: "relu", node: g.members[1] }, output: g.members[1] });
    const reason = (after: string) => fusion.boundaries.find((b) => b.after === after)?.reason;
    expect(reason("fc8")).toMatch(/logits/);
    expect(reason("relu1")).toMatch(/norm1 \(lrn\), is not element-wise/);
    expect(reason("norm1")).toMatch(/lrn is not an anchor/);
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

  it("fuses tanh and sigmoid epilogues too, and nothing with fusion disabled", () => {
    const tanh = planFusion(model("fig1-tanh-fmnist.net"));
    expect(tanh.groups.filter((g) => g.epilogue?.op === "tanh").length).toBe(3);
    const off = planFusion(model("alexnet.net"), { enabled: false });
    expect(off.groups.every((g) => g.members.length === 1)).toBe(true);
    expect(explainFusion(off)).toMatch(/^\d+ groups for \d+ layers \(0 fused\)/);
  });

  it("explains each group and why it ends", () => {
    const text = explainFusion(planFusion(model("alexnet.net")));
    expect(text.split("\n")[0]).toBe("16 groups for 23 layers (7 fused)");
    expect(text).toMatch(/conv1\+relu1 +conv1 with relu epilogue; ends: the next layer, norm1 \(lrn\)/);
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

  it("saves the activation kernels in the forward, training and eval schedules of AlexNet", () => {
    const graph = model("alexnet.net");
    const fwd = [lower(graph, opts(1)), lower(graph, opts(1, false))].map((c) => dispatches(c.plan.schedule));
    expect(fwd[1] - fwd[0]).toBe(7);
    const [fused, unfused] = [true, false].map(
      (fuse) => lowerTraining(graph, { ...opts(128, fuse), ...train }).plan,
    );
    // 7 activation kernels forward, and 7 backward: each ReLU's derivative is applied by the kernel
    // that produces its ∂L/∂y (LRN, pool, conv and dropout backward)
    expect(dispatches(unfused.schedule) - dispatches(fused.schedule)).toBe(14);
    expect(dispatches(unfused.training!.evalSchedule) - dispatches(fused.training!.evalSchedule)).toBe(7);
    console.log(
      `alexnet.net dispatches per run of the schedule: forward ${fwd[1]} → ${fwd[0]}, ` +
        `training ${dispatches(unfused.schedule)} → ${dispatches(fused.schedule)}`,
    );
  });
});
