// The bias gradient folded into the weight-gradient kernels (fuse-backward.ts biasFold): with fusion
// on, db = Σ dy per output channel is computed by the conv / dense wgrad kernel (its GEMM's column of
// ones) and no bgrad kernel runs; with `fuse: false` the separate channel-sum kernel stays.
//   - the conv wgrad+bias kernel alone, for every autotuner tile candidate (tuning.ts), on odd sizes,
//     strides, asymmetric padding, groups and a weight part: dW and db against float64 sums, dW
//     bitwise the kernel without the bias, db bitwise the unfused channel-sum kernel;
//   - whole training steps of a two-tower net (odd sizes, stride 2, asymmetric padding, groups, dense
//     layers, one conv without a bias), fused against unfused, also with weights split in row parts
//     and the batch micro-batched: weights, biases, gradients and momentum within 1e-5 relative
//     (measured: bitwise equal), one bgrad dispatch fewer per biased layer;
//   - `alexc compile --explain-fusion` lists each bias fold (no GPU needed).
import { describe, expect, it } from "vitest";
import { main } from "../../compiler/cli.ts";
import { type Graph, elementCount } from "../../compiler/graph.ts";
import { lowerTraining } from "../../compiler/lower-train.ts";
import type { PlanKernel } from "../../compiler/plan.ts";
import { type TunableShape, tileCandidates } from "../../compiler/tuning.ts";
import { channelSumKernel, convWeightGradKernel } from "../../compiler/wgsl/backward/conv.ts";
import type { TrainKernelSource } from "../../compiler/wgsl/backward/util.ts";
import type { OpenDevice } from "../../runtime/devices.ts";
import { buildKernelStep } from "../../runtime/pipeline.ts";
import { createTrainer } from "../../runtime/trainer.ts";
import { graphFromSource, testParams } from "../helpers/grad-cases.ts";
import { useGpu } from "./adapter.ts";
import { random } from "./one-node.ts";

const gpu = await useGpu();

/** max|a − b| / max|b| (0 when both are all zero). */
function relError(a: Float32Array | Float64Array, b: Float32Array | Float64Array): number {
  expect(a.length).toBe(b.length);
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return scale === 0 ? diff : diff / scale;
}

const bits = (a: Float32Array) => new Uint32Array(a.buffer, a.byteOffset, a.length);

/** Runs one kernel on fresh buffers: `inputs` uploaded, every other binding `fill`ed; returns all. */
async function runKernel(
  dev: OpenDevice,
  src: TrainKernelSource,
  sizes: Record<string, number>,
  inputs: Record<string, Float32Array>,
  fill = 0,
): Promise<Map<string, Float32Array>> {
  const { device } = dev;
  const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
  const buffers = new Map<string, GPUBuffer>();
  for (const b of src.bindings) {
    const buffer = device.createBuffer({ size: 4 * sizes[b.tensor], usage });
    device.queue.writeBuffer(buffer, 0, inputs[b.tensor] ?? new Float32Array(sizes[b.tensor]).fill(fill));
    buffers.set(b.tensor, buffer);
  }
  const kernel: PlanKernel = {
    ...{ name: "bias-fold", file: "kernels/bias-fold.wgsl", layer: "test", op: src.op, group: ["test"] },
    ...{ device: dev.index, entryPoint: src.entryPoint, workgroupSize: src.workgroupSize },
    bindings: src.bindings.map((b, binding) => ({ binding, tensor: b.tensor, access: b.access })),
    ...{ dispatch: src.dispatch, flops: src.flops },
  };
  const step = await buildKernelStep(dev, kernel, src.wgsl, (t) => ({ buffer: buffers.get(t)! }));
  const encoder = device.createCommandEncoder();
  const pass = encoder.beginComputePass();
  pass.setPipeline(step.pipeline);
  pass.setBindGroup(0, step.bindGroup);
  pass.dispatchWorkgroups(...src.dispatch);
  pass.end();
  const staging = new Map<string, GPUBuffer>();
  for (const [t, b] of buffers) {
    const s = device.createBuffer({ size: b.size, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    encoder.copyBufferToBuffer(b, 0, s, 0, b.size);
    staging.set(t, s);
  }
  device.queue.submit([encoder.finish()]);
  const out = new Map<string, Float32Array>();
  for (const [t, s] of staging) {
    await s.mapAsync(GPUMapMode.READ);
    out.set(t, new Float32Array(s.getMappedRange().slice(0)));
    s.destroy();
    buffers.get(t)!.destroy();
  }
  return out;
}

/** dW (the part's rows) and db (all CO rows; others NaN) in float64. */
function reference(s: TunableShape, x: Float32Array, dy: Float32Array) {
  const [ci, h, w] = s.input;
  const [co, oh, ow] = s.output;
  const [kh, kw] = s.kernel;
  const cig = ci / s.groups;
  const cog = co / s.groups;
  const dw = new Float64Array(s.outCount * cig * kh * kw);
  const db = new Float64Array(co).fill(NaN);
  for (let r = 0; r < s.outCount; r++) {
    const oc = s.outBase + r;
    const g = Math.floor(oc / cog);
    db[oc] = 0;
    for (let n = 0; n < s.batch; n++)
      for (let oy = 0; oy < oh; oy++)
        for (let ox = 0; ox < ow; ox++) {
          const d = dy[((n * co + oc) * oh + oy) * ow + ox];
          db[oc] += d;
          for (let c = 0; c < cig; c++)
            for (let ky = 0; ky < kh; ky++)
              for (let kx = 0; kx < kw; kx++) {
                const iy = oy * s.stride[0] - s.pad.top + ky;
                const ix = ox * s.stride[1] - s.pad.left + kx;
                if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
                dw[((r * cig + c) * kh + ky) * kw + kx] += d * x[((n * ci + g * cig + c) * h + iy) * w + ix];
              }
        }
  }
  return { dw, db };
}

const conv = (
  batch: number,
  input: number[],
  co: number,
  kernel: [number, number],
  stride: [number, number],
  pad: [number, number, number, number],
  groups: number,
  part?: [number, number],
): TunableShape => {
  const [, h, w] = input;
  const [top, bottom, left, right] = pad;
  const output = [
    co,
    Math.floor((h + top + bottom - kernel[0]) / stride[0]) + 1,
    Math.floor((w + left + right - kernel[1]) / stride[1]) + 1,
  ];
  const [outBase, outCount] = part ?? [0, co];
  return {
    batch,
    input,
    output,
    kernel,
    stride,
    pad: { top, bottom, left, right },
    groups,
    outBase,
    outCount,
  };
};

const SHAPES: [string, TunableShape][] = [
  [
    "odd sizes, stride 2, asymmetric padding, groups 2",
    conv(3, [4, 13, 11], 8, [3, 3], [2, 2], [1, 0, 2, 1], 2),
  ],
  ["the same, weight rows [4, 8) only", conv(3, [4, 13, 11], 8, [3, 3], [2, 2], [1, 0, 2, 1], 2, [4, 4])],
  [
    "conv1-like: few (c, ky) lanes, so the reduction splits",
    conv(2, [3, 23, 23], 8, [5, 5], [2, 2], [2, 2, 2, 2], 1),
  ],
  ["stride 1, a partial pixel block per row", conv(2, [6, 9, 9], 12, [3, 3], [1, 1], [1, 1, 1, 1], 1)],
  [
    "1×1 kernel, one channel per group: a workgroup narrower than its channel block",
    conv(1, [2, 3, 3], 16, [1, 1], [1, 1], [0, 0, 0, 0], 2),
  ],
];

gpu.describe("bias gradient folded into the conv weight gradient", () => {
  for (const [what, shape] of SHAPES)
    it(`${what}: every tile candidate gives dW and db`, async () => {
      const dev = gpu.dev!;
      const [ci, h, w] = shape.input;
      const [co, oh, ow] = shape.output;
      const x = random(shape.batch * ci * h * w, 31, -1, 1);
      const dy = random(shape.batch * co * oh * ow, 32, -1, 1);
      const ref = reference(shape, x, dy);
      const sizes = { x: x.length, dy: dy.length, dw: ref.dw.length, db: co };
      const id = { name: "pending", layer: "test", group: ["test"] };
      const tensors = { x: "x", dy: "dy", dw: "dw" };
      const plain = await runKernel(dev, convWeightGradKernel(id, { ...shape, tensors }), sizes, { x, dy });
      // The unfused plan's bias kernel; serial at these sizes (N·OH·OW ≤ 2048), so the same order.
      const sum = { batch: shape.batch, shape: shape.output, layer: "test", op: "conv.bgrad" };
      const unfused = await runKernel(
        dev,
        channelSumKernel(id, { ...sum, tensors: { dy: "dy", out: "db" } }),
        sizes,
        {
          dy,
        },
      );
      let ran = 0;
      let worst = 0;
      for (const tiles of tileCandidates("conv.wgrad", shape)) {
        let src: TrainKernelSource;
        try {
          src = convWeightGradKernel(id, { ...shape, ...tiles, tensors: { ...tensors, db: "db" } });
        } catch {
          continue; // a channel block the shape does not divide: the autotuner skips it too
        }
        expect(src.op).toBe("conv.wgrad+bias");
        expect(src.wgsl).toContain("bias gradient folded in");
        const out = await runKernel(dev, src, sizes, { x, dy }, NaN);
        const [dw, db] = [out.get("dw")!, out.get("db")!];
        const label = `${what}, tiles ${JSON.stringify(tiles)}`;
        if (Object.keys(tiles).length === 0) expect(bits(dw), label).toEqual(bits(plain.get("dw")!));
        const rows = [shape.outBase, shape.outBase + shape.outCount];
        expect(bits(db.slice(...rows)), label).toEqual(bits(unfused.get("db")!.slice(...rows)));
        // rows outside the part stay untouched (NaN both sides)
        for (let oc = 0; oc < co; oc++) expect(Number.isNaN(db[oc]), label).toBe(Number.isNaN(ref.db[oc]));
        const errs = [relError(dw, ref.dw), relError(db.slice(...rows), ref.db.slice(...rows))];
        for (const e of errs) expect(e, label).toBeLessThanOrEqual(1e-5);
        worst = Math.max(worst, ...errs);
        ran++;
      }
      expect(ran).toBeGreaterThanOrEqual(2);
      console.log(`${what}: ${ran} tile candidates, max relative error vs float64 ${worst.toExponential(2)}`);
    }, 600_000);
});

// Odd sizes (29 → 15 → 7 → 3), an even kernel with stride 2 and (1, 2) padding, a tower-local conv
// (groups 2), a conv without a bias, cross-tower and single-tower dense layers, dropout.
const NET = `
network bias_fold {
  input image: f32[3, 29, 29]
  classes: 7
  towers: 2
  conv1 = conv(image, filters: 16, kernel: 4, stride: 2, pad: (1, 2), towers: cross, bias: 0.1)
  relu1 = relu(conv1)
  pool1 = maxpool(relu1, window: 3, stride: 2)
  conv2 = conv(pool1, filters: 24, kernel: 3, pad: 1, towers: local, bias: 0.5)
  relu2 = relu(conv2)
  conv3 = conv(relu2, filters: 20, kernel: 3, stride: 2, towers: cross)
  relu3 = relu(conv3)
  fc4 = dense(relu3, units: 24, towers: cross, bias: 0.1)
  relu4 = relu(fc4)
  drop4 = dropout(relu4, p: 0.5)
  fc5 = dense(drop4, units: classes, towers: on(0), bias: 0)
  loss = softmax_cross_entropy(fc5)
}
`;

gpu.describe("fused (bias folded) vs unfused training steps", () => {
  const graph: Graph = graphFromSource(NET);
  const biased = graph.nodes.filter((n) => n.params.includes(`${n.name}.bias`)).map((n) => n.name);
  const batch = 3;
  const x = random(batch * elementCount(graph.inputs[0].shape), 41, -1, 1);
  const labels = Int32Array.from([5, 0, 3]);

  // 16 KiB: conv3's and fc4's weights (17,280 bytes each) split in two row parts, and conv1's output
  // (14,400 bytes per example) fits one example, so the batch runs as 3 micro-steps.
  for (const maxBindingBytes of [gpu.dev?.maxBindingBytes ?? 0, 16_384])
    it(`the same weights, biases and momentum${maxBindingBytes === 16_384 ? " (split weights, micro-batched)" : ""}`, async () => {
      const runs = [];
      for (const fuse of [true, false]) {
        // the direct kernels' fold (a Winograd weight gradient folds it in its GEMM: gradients.test.ts)
        const compiled = lowerTraining(graph, {
          ...{ batch, fuse, maxBindingBytes, source: "bias-fold.net", compilerVersion: "alexc test" },
          ...{ momentum: 0.9, weightDecay: 5e-4, winograd: false },
        });
        const t = await createTrainer(gpu.dev!, compiled);
        t.uploadParams(testParams(graph, 9));
        t.writeBatch(x, labels);
        await t.step({ lr: 0.05, seed: 1 });
        await t.step({ lr: 0.05, seed: 2 }); // momentum enters
        const state = {
          plan: compiled.plan,
          params: await t.readParams(),
          grads: await t.readGradients(),
          velocities: await t.readVelocities(),
        };
        t.destroy();
        runs.push(state);
      }
      const [fused, unfused] = runs;
      if (maxBindingBytes === 16_384) {
        expect(fused.plan.microBatch).toBe(1);
        for (const p of ["conv3.weight", "fc4.weight"])
          expect(fused.plan.tensors.filter((t) => t.partOf?.tensor === p).length, p).toBe(2);
      }

      // One bgrad kernel per biased layer unfused, none fused, and the same wgrad kernels.
      const ops = (p: typeof fused.plan, re: RegExp) => p.kernels.filter((k) => re.test(k.op));
      const dispatched = (p: typeof fused.plan) => new Set(p.schedule.map((s) => s.kernel));
      expect(
        ops(unfused.plan, /\.bgrad$/)
          .map((k) => k.layer)
          .sort(),
      ).toEqual([...biased].sort());
      expect(ops(fused.plan, /\.bgrad$/)).toEqual([]);
      expect(ops(fused.plan, /\.wgrad/).length).toBe(ops(unfused.plan, /\.wgrad/).length);
      expect(new Set(ops(fused.plan, /\.wgrad\+bias$/).map((k) => k.layer))).toEqual(new Set(biased));
      const bgrads = ops(unfused.plan, /\.bgrad$/).filter((k) => dispatched(unfused.plan).has(k.name));
      expect(bgrads.length).toBe(biased.length);

      let worst = 0;
      let worstBias = 0;
      for (const [name, a, b] of [
        ...[...fused.params].map(([n, v]) => [n, v, unfused.params.get(n)!] as const),
        ...[...fused.grads].map(([n, v]) => [`grad ${n}`, v, unfused.grads.get(n)!] as const),
        ...[...fused.velocities].map(([n, v]) => [`velocity ${n}`, v, unfused.velocities.get(n)!] as const),
      ]) {
        const err = relError(a, b);
        if (err > 0) console.log(`  ${name}: ${err.toExponential(2)}`);
        expect(err, name).toBeLessThanOrEqual(1e-5);
        worst = Math.max(worst, err);
        if (name.includes(".bias")) worstBias = Math.max(worstBias, err);
      }
      console.log(
        `bias fold${maxBindingBytes === 16_384 ? " (split, micro-batched)" : ""}: fused vs unfused after two steps, ` +
          `max relative error ${worst.toExponential(2)} (biases ${worstBias.toExponential(2)}); ` +
          `${unfused.plan.schedule.length} → ${fused.plan.schedule.length} dispatches per run of the schedule`,
      );
    }, 600_000);
});

describe("alexc compile --explain-fusion", () => {
  it("lists every bias gradient folded into its weight-gradient kernel", async () => {
    const alexnet = new URL("../../models/alexnet.net", import.meta.url).pathname;
    const out: string[] = [];
    const code = await main(["compile", alexnet, "--explain-fusion"], {
      out: (t) => void out.push(t),
      err: () => {},
    });
    expect(code).toBe(0);
    const text = out.join("\n");
    expect(text).toContain("backward: 8 bias gradient(s) folded (no separate bgrad kernel)");
    for (const layer of ["conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "fc8"])
      expect(text).toMatch(
        new RegExp(`^${layer}'s bias gradient folded into its weight-gradient kernel`, "m"),
      );
  });
});
