// The practical ceiling the kernel-class rates are set against: the best rate alexc's own GEMM kernels
// reach on this adapter on a 1024×1024×1024 matmul. alexc's tuned GEMM is its implicit-GEMM
// convolution template (register-blocked tiles, compiler/wgsl/conv-tiles.ts), so the matmul is
// expressed as a 1×1 convolution of 1024 → 1024 channels over a 32×32 map (M = 1,024 pixels,
// N = 1,024 filters, K = 1,024 channels; a small convolution before it makes the training lowering
// emit its data gradient), lowered by the ordinary training lowering: the forward kernel (conv) and
// the data-gradient kernel (conv.dgrad, the same GEMM over the flipped filter) at that size are
// alexc's real kernels. Each is timed alone (bench/kernel-timer.ts); the better is the ceiling.
// Not candidates, measured on lavapipe: the weight-gradient kernel (conv.wgrad, split-K over the
// pixels: 0.5 GFLOP/s at this size, 4.5 s a run) and the dense kernel (a batched matrix-vector product
// for small batches: 0.3 GFLOP/s for a dense 1024 → 1024 at batch 1024). Where the adapter is a CPU (lavapipe), the same network's forward pass in onnxruntime-node
// (native code, MLAS, all cores) gives the CPU's native rate.
import { compileSource } from "../compiler/frontend.ts";
import type { Graph } from "../compiler/graph.ts";
import { lowerTraining } from "../compiler/lower-train.ts";
import type { PlanKernel } from "../compiler/plan.ts";
import { exportOnnx } from "../compiler/onnx.ts";
import type { OpenDevice } from "../runtime/devices.ts";
import { initParams } from "../runtime/init.ts";
import { median, timeKernels } from "./kernel-timer.ts";
import { adapterSummary } from "./measure.ts";

export const GEMM_SIZE = 1024;

const GEMM_NET = `network gemm_1024 {
  input x: f32[8, 32, 32]
  classes: 10
  a = conv(x, filters: 1024, kernel: 1, init: normal(0, 0.01), bias: 0)
  r = relu(a)
  b = conv(r, filters: 1024, kernel: 1, init: normal(0, 0.01), bias: 0)
  p = avgpool(b, window: 32, stride: 32)
  fc = dense(p, units: classes, init: normal(0, 0.01), bias: 0)
  loss = softmax_cross_entropy(fc)
}`;

export interface Ceiling {
  shape: string;
  /** Each GEMM-shaped kernel of the lowering: op, its GFLOP/s. */
  kernels: { op: string; ms: number; gflops: number }[];
  /** The best of them: the ceiling. */
  gflops: number;
  cpuAdapter: boolean;
  /** The same matmul in onnxruntime-node's CPU provider, when it could be loaded. */
  native?: { provider: string; ms: number; gflops: number; threads: string };
}

/** Measures the GEMM ceiling on `dev` (and the native CPU rate when `native`). */
/** Measured once per adapter per process (`alexc bench` run twice in one process measures it once). */
const measured = new Map<string, Promise<Ceiling>>();

export function measureCeiling(dev: OpenDevice, reps: number, native = true): Promise<Ceiling> {
  const key = `${adapterSummary(dev).description} ${native}`;
  let ceiling = measured.get(key);
  if (!ceiling) measured.set(key, (ceiling = measure(dev, reps, native)));
  return ceiling;
}

async function measure(dev: OpenDevice, reps: number, native: boolean): Promise<Ceiling> {
  const { graph } = compileSource(GEMM_NET);
  if (!graph) throw new Error("the GEMM network does not check");
  const compiled = lowerTraining(graph, {
    batch: 1,
    maxBindingBytes: dev.maxBindingBytes,
    source: "(bench gemm)",
    compilerVersion: "bench",
    momentum: 0.9,
    weightDecay: 0,
  });
  const flops = 2 * GEMM_SIZE ** 3;
  const candidate = (k: PlanKernel) =>
    (k.op.split("+")[0] === "conv" || k.op === "conv.dgrad") && k.flops >= flops / 2;
  const times = await timeKernels([dev], compiled, reps, candidate);
  // As bench/measure.ts: wall time on a CPU adapter, timestamps (where measured) on others.
  const cpuAdapter = adapterSummary(dev).cpu;
  const kernels = times.kernels.map((t) => {
    const ms = cpuAdapter || t.timestampMs === undefined ? t.wallMs : t.timestampMs;
    return { op: t.kernel.op, ms, gflops: t.kernel.flops / (ms * 1e6) };
  });
  const ceiling: Ceiling = {
    shape: `${GEMM_SIZE}×${GEMM_SIZE}×${GEMM_SIZE}`,
    kernels,
    gflops: Math.max(...kernels.map((k) => k.gflops)),
    cpuAdapter,
  };
  if (native) {
    const forwardFlops = 2 * graph.nodes.reduce((sum, n) => sum + n.macs, 0);
    const rate = await nativeRate(graph, forwardFlops, reps).catch(() => undefined);
    if (rate) ceiling.native = rate;
  }
  return ceiling;
}

/** The forward pass (the 1024³ GEMM and ~1 % more) in onnxruntime-node, default options (all cores). */
async function nativeRate(graph: Graph, flops: number, reps: number) {
  const ort = await import("onnxruntime-node");
  const model = exportOnnx(graph, initParams(graph, 1), { batch: 1 });
  const session = await ort.InferenceSession.create(model, { executionProviders: ["cpu"] });
  try {
    const x = new Float32Array(8 * 32 * 32).fill(0.5);
    const feeds = { [graph.inputs[0].name]: new ort.Tensor("float32", x, [1, 8, 32, 32]) };
    await session.run(feeds);
    const ms: number[] = [];
    for (let i = 0; i < Math.max(reps, 3); i++) {
      const t0 = performance.now();
      await session.run(feeds);
      ms.push(performance.now() - t0);
    }
    const m = median(ms);
    return {
      provider: "onnxruntime-node CPU",
      ms: m,
      gflops: flops / (m * 1e6),
      threads: "default (all cores)",
    };
  } finally {
    await session.release();
  }
}
