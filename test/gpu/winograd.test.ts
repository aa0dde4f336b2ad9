// Winograd F(2×2, 3×3) convolution (compiler/wgsl/winograd.ts, winograd-plan.ts) on a real adapter,
// against two references: onnxruntime-node's CPU Conv (+ Relu) on alexc's ONNX export of the same
// one-layer network (independent arithmetic), and alexc's direct kernel (compiler/wgsl/conv.ts).
// Error measure: max|winograd − ref| / max|ref| over the computed channels, bound 1e-5.
//   - AlexNet's conv3/4/5 with their full channel counts at batch 1 and 2 (13×13, groups 1 and 2,
//     bias, relu), and smaller odd-sized cases (7×7, 5×6, 9×11), bias on/off, padding 0 and 2;
//   - a weight split in two output-channel parts (one straddling the group boundary) filling one y;
//   - the GEMM's tile choices and a batch split into passes give bitwise the same y (the summation
//     order does not depend on them), and two runs give the same bits;
//   - the plan (no GPU needed): which convolutions qualify, scratch sizes, the pass split.
import { afterAll, describe, expect, it } from "vitest";
import type { ActivationOp, ConvAttrs } from "../../compiler/graph.ts";
import { exportOnnx } from "../../compiler/onnx.ts";
import type { PlanKernel } from "../../compiler/plan.ts";
import type { TrainKernelSource } from "../../compiler/wgsl/backward/util.ts";
import { convKernel } from "../../compiler/wgsl/conv.ts";
import {
  winogradPlan,
  winogradScratchBytes,
  winogradTileCandidates,
} from "../../compiler/wgsl/winograd-plan.ts";
import type { WinogradSpec } from "../../compiler/wgsl/winograd.ts";
import type { OpenDevice } from "../../runtime/devices.ts";
import { buildKernelStep } from "../../runtime/pipeline.ts";
import { runOnnx } from "../helpers/ort.ts";
import { useGpu } from "./adapter.ts";
import { type LayerSpec, buildGraph, pad, random } from "./one-node.ts";

const gpu = await useGpu();
const TOLERANCE = 1e-5;
const measured: string[] = [];
afterAll(() => {
  if (measured.length)
    console.log(`winograd max relative error (bound ${TOLERANCE}):\n${measured.join("\n")}`);
});

const ID = { name: "k_wino", layer: "c", group: ["c"] };
const bits = (a: Float32Array) => Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));

interface Case {
  label: string;
  batch: number;
  /** [C_in, H, W] */
  input: [number, number, number];
  filters: number;
  groups: number;
  bias: boolean;
  activation?: ActivationOp;
  padding?: number;
}

const outShape = (c: Case): [number, number, number] => {
  const p = c.padding ?? 1;
  return [c.filters, c.input[1] + 2 * p - 2, c.input[2] + 2 * p - 2];
};

function specOf(c: Case, extra: Partial<WinogradSpec> = {}): WinogradSpec {
  const p = c.padding ?? 1;
  return {
    batch: c.batch,
    input: c.input,
    output: outShape(c),
    kernel: [3, 3],
    stride: [1, 1],
    pad: pad(p),
    groups: c.groups,
    outBase: 0,
    outCount: c.filters,
    tensors: { x: "x", w: "w", ...(c.bias ? { b: "b" } : {}), y: "y", u: "u", v: "v", m: "m" },
    ...(c.activation ? { activation: c.activation } : {}),
    ...extra,
  };
}

/** Deterministic inputs: x and w in [-1, 1), b in [-1, 1). */
function data(c: Case) {
  const [ci, h, w] = c.input;
  return {
    x: random(c.batch * ci * h * w, 11),
    w: random((c.filters * ci * 9) / c.groups, 12),
    b: random(c.filters, 13),
  };
}

/**
 * Runs `kernels` in order in one submit on buffers of `bytes` (tensor → byte size), `inputs`
 * uploaded and every other buffer zeroed; returns the tensor `out`.
 */
async function run(
  dev: OpenDevice,
  kernels: TrainKernelSource[],
  bytes: Record<string, number>,
  inputs: Record<string, Float32Array>,
  out: string,
): Promise<Float32Array> {
  const { device } = dev;
  const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
  const buffers = new Map<string, GPUBuffer>();
  try {
    for (const [t, n] of Object.entries(bytes)) {
      const buffer = device.createBuffer({ label: t, size: Math.ceil(n / 16) * 16, usage });
      if (inputs[t]) device.queue.writeBuffer(buffer, 0, inputs[t]);
      buffers.set(t, buffer);
    }
    const steps = await Promise.all(
      kernels.map((src, i) => {
        const kernel: PlanKernel = {
          ...{ name: `k${i}`, file: `kernels/k${i}.wgsl`, layer: "c", op: src.op, group: ["c"] },
          ...{ device: dev.index, entryPoint: src.entryPoint, workgroupSize: src.workgroupSize },
          bindings: src.bindings.map((b, binding) => ({ binding, tensor: b.tensor, access: b.access })),
          ...{ dispatch: src.dispatch, flops: src.flops },
        };
        return buildKernelStep(dev, kernel, src.wgsl, (t) => ({ buffer: buffers.get(t)! }));
      }),
    );
    const encoder = device.createCommandEncoder();
    const pass = encoder.beginComputePass();
    for (const s of steps) {
      pass.setPipeline(s.pipeline);
      pass.setBindGroup(0, s.bindGroup);
      pass.dispatchWorkgroups(...s.kernel.dispatch);
    }
    pass.end();
    const result = buffers.get(out)!;
    const staging = device.createBuffer({
      size: result.size,
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
    encoder.copyBufferToBuffer(result, 0, staging, 0, result.size);
    device.queue.submit([encoder.finish()]);
    await staging.mapAsync(GPUMapMode.READ);
    const y = new Float32Array(staging.getMappedRange().slice(0, bytes[out]));
    staging.destroy();
    return y;
  } finally {
    for (const b of buffers.values()) b.destroy();
  }
}

const ioBytes = (c: Case) => {
  const [co, oh, ow] = outShape(c);
  return {
    x: 4 * c.batch * c.input[0] * c.input[1] * c.input[2],
    w: (4 * c.filters * c.input[0] * 9) / c.groups,
    ...(c.bias ? { b: 4 * c.filters } : {}),
    y: 4 * c.batch * co * oh * ow,
  };
};

/** The Winograd plan of `spec` run on the device (weights transform first); w holds the part's rows. */
async function runWinograd(
  dev: OpenDevice,
  c: Case,
  spec: WinogradSpec,
  d: { x: Float32Array; w: Float32Array; b: Float32Array },
  maxBindingBytes = dev.maxBindingBytes,
) {
  const plan = winogradPlan(ID, spec, { maxBindingBytes });
  const bytes: Record<string, number> = { ...ioBytes(c) };
  for (const s of plan.scratch) bytes[s.name] = s.bytes;
  const inputs = { x: d.x, w: d.w, b: d.b };
  return {
    plan,
    y: await run(
      dev,
      plan.kernels.map((k) => k.source),
      bytes,
      inputs,
      "y",
    ),
  };
}

async function runDirect(dev: OpenDevice, c: Case, d: { x: Float32Array; w: Float32Array; b: Float32Array }) {
  const tensors = { x: "x", w: "w", ...(c.bias ? { b: "b" } : {}), y: "y" };
  const src = convKernel(ID, { ...specOf(c), tensors });
  return run(dev, [src], ioBytes(c), { x: d.x, w: d.w, b: d.b }, "y");
}

/** onnxruntime-node CPU on alexc's ONNX export of conv (+ activation) with the same weights. */
async function runOrt(c: Case, d: { x: Float32Array; w: Float32Array; b: Float32Array }) {
  const attrs: ConvAttrs = {
    op: "conv",
    filters: c.filters,
    kernel: [3, 3],
    stride: [1, 1],
    pad: pad(c.padding ?? 1),
    round: "floor",
    towers: c.groups > 1 ? { kind: "local" } : { kind: "cross" },
    groups: c.groups,
    bias: c.bias,
  };
  const layers: LayerSpec[] = [["conv", attrs, ["x"]]];
  if (c.activation) layers.push(["act", { op: c.activation }, ["conv"]]);
  const graph = buildGraph({ x: [...c.input] }, layers);
  const params = new Map([["conv.weight", d.w]]);
  if (c.bias) params.set("conv.bias", d.b);
  const model = exportOnnx(graph, params, { batch: c.batch });
  const out = await runOnnx(model, { x: { data: d.x, dims: [c.batch, ...c.input] } });
  return Object.values(out)[0];
}

/** max|a − b| / max|b| over output channels [lo, hi) of every image. */
function relErr(a: Float32Array, b: Float32Array, c: Case, lo = 0, hi = c.filters): number {
  expect(a.length).toBe(b.length);
  const [co, oh, ow] = outShape(c);
  const plane = oh * ow;
  let diff = 0;
  let scale = 0;
  for (let n = 0; n < c.batch; n++)
    for (let i = (n * co + lo) * plane; i < (n * co + hi) * plane; i++) {
      const e = Math.abs(a[i] - b[i]);
      diff = Number.isNaN(e) ? Infinity : Math.max(diff, e);
      scale = Math.max(scale, Math.abs(b[i]));
    }
  expect(scale).toBeGreaterThan(0);
  return diff / scale;
}

const CASES: Case[] = [
  {
    label: "conv3 256→384, 13×13, batch 1, bias, relu",
    batch: 1,
    input: [256, 13, 13],
    filters: 384,
    groups: 1,
    bias: true,
    activation: "relu",
  },
  {
    label: "conv4 384→384 groups 2, 13×13, batch 2, bias, relu",
    batch: 2,
    input: [384, 13, 13],
    filters: 384,
    groups: 2,
    bias: true,
    activation: "relu",
  },
  {
    label: "conv5 384→256 groups 2, 13×13, batch 2, bias, relu",
    batch: 2,
    input: [384, 13, 13],
    filters: 256,
    groups: 2,
    bias: true,
    activation: "relu",
  },
  {
    label: "conv3 256→384, 13×13, batch 2, no bias",
    batch: 2,
    input: [256, 13, 13],
    filters: 384,
    groups: 1,
    bias: false,
  },
  {
    label: "7×7, 24→40, batch 2, no bias, no activation",
    batch: 2,
    input: [24, 7, 7],
    filters: 40,
    groups: 1,
    bias: false,
  },
  {
    label: "5×6, 12→8 groups 2, batch 3, bias",
    batch: 3,
    input: [12, 5, 6],
    filters: 8,
    groups: 2,
    bias: true,
  },
  {
    label: "9×11, 10→6 groups 2 (odd channels per group), bias, relu",
    batch: 2,
    input: [10, 9, 11],
    filters: 6,
    groups: 2,
    bias: true,
    activation: "relu",
  },
  {
    label: "6×5, padding 0, 8→12, batch 2, bias",
    batch: 2,
    input: [8, 6, 5],
    filters: 12,
    groups: 1,
    bias: true,
    padding: 0,
  },
  {
    label: "6×5, padding 2, 8→12, batch 1, no bias",
    batch: 1,
    input: [8, 6, 5],
    filters: 12,
    groups: 1,
    bias: false,
    padding: 2,
  },
];

gpu.describe("winograd F(2x2, 3x3) against onnxruntime-node and the direct kernel", () => {
  for (const c of CASES) {
    it(c.label, async () => {
      const d = data(c);
      const [{ y }, direct, ort] = [
        await runWinograd(gpu.dev!, c, specOf(c), d),
        await runDirect(gpu.dev!, c, d),
        await runOrt(c, d),
      ];
      const vsOrt = relErr(y, ort, c);
      const vsDirect = relErr(y, direct, c);
      const directVsOrt = relErr(direct, ort, c);
      measured.push(
        `  ${c.label.padEnd(58)} vs ORT ${vsOrt.toExponential(2)}  vs direct ${vsDirect.toExponential(2)}  (direct vs ORT ${directVsOrt.toExponential(2)})`,
      );
      expect(vsOrt).toBeLessThanOrEqual(TOLERANCE);
      expect(vsDirect).toBeLessThanOrEqual(TOLERANCE);
    });
  }

  it("two output-channel parts (the second straddling the group boundary) fill one y", async () => {
    // 48 filters in 2 groups of 24; parts [0, 16) and [16, 48): each part's w holds its rows only.
    const c: Case = {
      label: "",
      batch: 2,
      input: [32, 13, 13],
      filters: 48,
      groups: 2,
      bias: true,
      activation: "relu",
    };
    const d = data(c);
    const rows = (lo: number, hi: number) => d.w.subarray(lo * 16 * 9, hi * 16 * 9);
    const bytes: Record<string, number> = { ...ioBytes(c) };
    const kernels: TrainKernelSource[] = [];
    for (const [lo, hi, k] of [
      [0, 16, 0],
      [16, 48, 1],
    ]) {
      const spec = specOf(c, { outBase: lo, outCount: hi - lo });
      spec.tensors = { ...spec.tensors, w: `w${k}`, u: `u${k}` };
      const plan = winogradPlan({ ...ID, name: `k${k}` }, spec, {
        maxBindingBytes: gpu.dev!.maxBindingBytes,
      });
      for (const s of plan.scratch) bytes[s.name] = Math.max(bytes[s.name] ?? 0, s.bytes);
      bytes[`w${k}`] = 4 * (hi - lo) * 16 * 9;
      kernels.push(...plan.kernels.map((p) => p.source));
    }
    const y = await run(gpu.dev!, kernels, bytes, { x: d.x, w0: rows(0, 16), w1: rows(16, 48), b: d.b }, "y");
    const ort = await runOrt(c, d);
    const err = relErr(y, ort, c);
    measured.push(
      `  ${"parts [0, 16) + [16, 48) of 48 filters, groups 2".padEnd(58)} vs ORT ${err.toExponential(2)}`,
    );
    expect(err).toBeLessThanOrEqual(TOLERANCE);
  });

  it("tile choices, batch passes and repeated runs give bitwise the same y", async () => {
    const c: Case = {
      label: "",
      batch: 3,
      input: [48, 13, 13],
      filters: 32,
      groups: 2,
      bias: true,
      activation: "relu",
    };
    const d = data(c);
    const dev = gpu.dev!;
    const reference = (await runWinograd(dev, c, specOf(c), d)).y;
    expect(bits((await runWinograd(dev, c, specOf(c), d)).y)).toEqual(bits(reference));
    // Every autotuner candidate, plus blocks that are not whole vec4s (scalar U loads) and odd lanes.
    for (const tiles of [
      ...winogradTileCandidates(specOf(c)).slice(1),
      { tilesPerInvocation: 4, channelsPerInvocation: 2 },
      { tilesPerInvocation: 12, channelsPerInvocation: 4, workgroupSize: 8 },
    ]) {
      expect(bits((await runWinograd(dev, c, specOf(c, tiles), d)).y), JSON.stringify(tiles)).toEqual(
        bits(reference),
      );
    }
    // V for 2 images (100 tiles: 16 · 48 · 100 · 4 = 307 200 bytes) fits, for 3 it does not: two passes.
    const passed = await runWinograd(dev, c, specOf(c), d, 310_000);
    expect(passed.plan.passes).toBe(2);
    expect(bits(passed.y)).toEqual(bits(reference));
  });
});

describe("winograd plan (no GPU)", () => {
  const c: Case = { label: "", batch: 128, input: [384, 13, 13], filters: 384, groups: 2, bias: true };

  it("offers tile candidates that divide the shape, the rule's choice first and once", () => {
    const cands = winogradTileCandidates(specOf(c));
    expect(cands[0]).toEqual({});
    expect(cands).not.toContainEqual({ tilesPerInvocation: 8, channelsPerInvocation: 16 });
    expect(cands).toContainEqual({ tilesPerInvocation: 4, channelsPerInvocation: 32 });
    const part = winogradTileCandidates(specOf(c, { outBase: 8, outCount: 8 }));
    expect(part.slice(1).every((t) => t.channelsPerInvocation === 8)).toBe(true);
  });

  it("applies to 3×3 stride-1 convolutions only", () => {
    expect(() =>
      winogradPlan(ID, { ...specOf(c), kernel: [5, 5], output: [384, 11, 11] }, { maxBindingBytes: 2 ** 27 }),
    ).toThrow(/3x3 stride-1/);
    expect(() =>
      winogradPlan(ID, { ...specOf(c), stride: [2, 2], output: [384, 7, 7] }, { maxBindingBytes: 2 ** 27 }),
    ).toThrow(/3x3 stride-1/);
  });

  it("sizes U, V and M and splits a batch whose V would exceed the binding limit", () => {
    // conv4 at batch 128: 49 tiles per image (7×7), 6272 in all; V = 16 · 384 · 6272 · 4 bytes.
    expect(winogradScratchBytes(specOf(c), 128)).toEqual({
      u: 16 * 384 * 192 * 4,
      v: 16 * 384 * 6272 * 4,
      m: 16 * 384 * 6272 * 4,
    });
    const plan = winogradPlan(ID, specOf(c), { maxBindingBytes: 2 ** 27 });
    expect(plan.passes).toBe(2);
    expect(plan.imagesPerPass).toBe(64);
    expect(plan.kernels.map((k) => [k.stage, k.id.name, k.once])).toEqual([
      ["weights", "k_wino_wt", true],
      ["input", "k_wino_in0", false],
      ["gemm", "k_wino_mm0", false],
      ["output", "k_wino_out0", false],
      ["input", "k_wino_in1", false],
      ["gemm", "k_wino_mm1", false],
      ["output", "k_wino_out1", false],
    ]);
    expect(plan.scratch.map((s) => [s.name, s.lifetime])).toEqual([
      ["u", "weights"],
      ["v", "step"],
      ["m", "step"],
    ]);
    for (const s of plan.scratch) expect(s.bytes).toBeLessThanOrEqual(2 ** 27);
    expect(plan.directFlops).toBe(2 * 128 * 384 * 169 * 192 * 9);
    expect(() => winogradPlan(ID, specOf(c), { maxBindingBytes: 100_000 })).toThrow(/one image/);
  });
});
