// The measuring engine of `alexc bench` (compiler/bench-command.ts) and of the alexc column of
// `npm run bench` (bench/run.ts): lower a network for a mode, batch and placement, load it with the
// real runtime (runtime/executor.ts, trainer.ts, placed.ts: pipelines built once, one command encoder
// per step per device), warm up, time K steps on the host clock, then time every kernel alone
// (bench/kernel-timer.ts) and group the kernels into classes with their achieved GFLOP/s.
import type { Recipe } from "../compiler/check/recipe.ts";
import { elementCount, type Graph } from "../compiler/graph.ts";
import { lowerPlaced } from "../compiler/lower-placed.ts";
import { type LowerOptions, lower } from "../compiler/lower.ts";
import { lowerTrainingFor } from "../compiler/memory-report.ts";
import type { CompiledPlan, Plan } from "../compiler/plan.ts";
import type { OpenDevice } from "../runtime/devices.ts";
import { fillNormal, initParams, paramStream } from "../runtime/init.ts";
import { median, timeKernels, type KernelWallTime } from "./kernel-timer.ts";

export type BenchMode = "forward" | "train";
export type BenchPlacement = "none" | "model" | "data" | "hybrid";

export interface BenchOptions {
  mode: BenchMode;
  batch: number;
  placement: BenchPlacement;
  /** Timed steps (the median is reported). */
  iters: number;
  /** Untimed steps first: lavapipe compiles each pipeline at its first dispatch. */
  warmup: number;
  /** Repetitions of the per-kernel timing; 0 skips it. */
  kernelReps: number;
  /** Seed of the parameters (runtime/init.ts) and of the input batch. */
  seed: number;
  source: string;
  compilerVersion: string;
}

/** The kernel classes rates are reported for. */
export const KERNEL_CLASSES = [
  "conv forward",
  "conv dgrad",
  "conv wgrad",
  "dense",
  "pool",
  "lrn",
  "elementwise",
] as const;
export type KernelClass = (typeof KERNEL_CLASSES)[number];

/** A kernel's class from its plan op (`conv+relu`, `conv.dgrad`, `maxpool.argmax`, `sgd.update`…). */
export function kernelClass(op: string): KernelClass {
  const [anchor, phase] = op.split("+")[0].split(".");
  if (anchor === "conv")
    return phase === "dgrad" ? "conv dgrad" : phase === "wgrad" ? "conv wgrad" : "conv forward";
  if (anchor === "dense") return "dense";
  if (anchor === "maxpool" || anchor === "avgpool") return "pool";
  if (anchor === "lrn") return "lrn";
  return "elementwise"; // activations, dropout, concat copies, batch norm, loss, the SGD update
}

export interface KernelReport {
  kernel: string;
  layer: string;
  op: string;
  class: KernelClass;
  device: number;
  flops: number;
  /** Wall time of the kernel submitted alone and awaited, per step (median of the reps). */
  wallMs: number;
  /** The kernel alone between timestamp queries, where the device has timestamps. */
  timestampMs?: number;
  /** The time its rate is computed from: wallMs on a CPU adapter, else timestampMs when measured. */
  ms: number;
  gflops: number;
}

export interface ClassReport {
  class: KernelClass;
  kernels: number;
  flops: number;
  /** Summed per-kernel time (of the rate source). */
  ms: number;
  gflops: number;
  /** Share of the summed per-kernel time. */
  share: number;
}

export interface DeviceMemory {
  device: number;
  label: string;
  /** What the runtime allocates (see runtimeBytes). */
  bufferBytes: number;
  /** compiler/memory.ts's arena peak for the same plan, had the runtime used it. */
  plannedPeakBytes?: number;
}

export interface AdapterSummary {
  description: string;
  vendor: string;
  architecture: string;
  /** A software adapter (lavapipe/llvmpipe, SwiftShader): its "GPU" is this machine's CPU. */
  cpu: boolean;
}

export interface BenchResult {
  network: string;
  mode: BenchMode;
  batch: number;
  microBatch?: number;
  placement: BenchPlacement;
  devices: string[];
  adapter: AdapterSummary;
  iters: number;
  warmup: number;
  /** Lower + load (pipelines, buffers, uploads), ms. */
  loadMs: number;
  stepsMs: number[];
  /** Median milliseconds per step (a forward run, or a training step), host wall clock. */
  median: number;
  imagesPerSecond: number;
  /** The first training step's loss (the initial weights'). */
  loss?: number;
  perKernelMethod: string;
  /** Which per-kernel time the GFLOP/s figures use. */
  rateSource: "wall" | "timestamp";
  submitOverheadMs?: number;
  perKernel: KernelReport[];
  classes: ClassReport[];
  memory: DeviceMemory[];
  /** Inference logits of the initial weights on the bench input (for peer checks), when asked. */
  logits?: Float32Array;
}

export function adapterSummary(dev: OpenDevice): AdapterSummary {
  const info = dev.adapter.info;
  const text = `${info?.description ?? ""} ${info?.device ?? ""} ${info?.architecture ?? ""}`;
  return {
    description: info?.description || dev.label,
    vendor: info?.vendor ?? "",
    architecture: info?.architecture ?? "",
    cpu: /llvmpipe|lavapipe|swiftshader|software/i.test(text),
  };
}

/** The plan `alexc bench` runs: inference or one training step, on one device or placed over two. */
export function lowerForBench(
  graph: Graph,
  recipe: Recipe,
  opts: {
    mode: BenchMode;
    batch: number;
    placement: BenchPlacement;
    maxBindingBytes: number;
    storage?: LowerOptions["storage"];
  },
  meta: { source: string; compilerVersion: string },
  tune: Pick<LowerOptions, "tuning" | "onTunable"> = {},
): CompiledPlan {
  const common = { batch: opts.batch, maxBindingBytes: opts.maxBindingBytes, ...meta, ...tune };
  if (opts.mode === "forward") {
    if (opts.placement === "none") return lower(graph, { ...common, storage: opts.storage });
    if (opts.placement === "model") return lowerPlaced(graph, common);
    throw new Error(`a forward plan is placed by model placement only, not ${opts.placement}`);
  }
  const { placement } = opts;
  return lowerTrainingFor(graph, recipe, {
    ...{ batch: opts.batch, maxBindingBytes: opts.maxBindingBytes },
    ...{
      placement: placement === "none" ? undefined : placement,
      source: meta.source,
      version: meta.compilerVersion,
    },
    ...tune,
  });
}

/** The bench's input batch: N(0, 1) images and labels i mod classes, from `seed`. */
export function benchBatch(graph: Graph, batch: number, seed: number) {
  const images = new Float32Array(batch * elementCount(graph.inputs[0].shape));
  fillNormal(images, 0, 1, paramStream(seed, "bench-images"));
  const labels = Int32Array.from({ length: batch }, (_, i) => i % graph.classes);
  return { images, labels };
}

/** One timed unit of work and the inference logits of the initial weights. */
interface Runner {
  first(): Promise<Float32Array>;
  step(): Promise<{ loss?: number }>;
  destroy(): void;
}

async function loadRunner(
  devs: OpenDevice[],
  graph: Graph,
  recipe: Recipe,
  compiled: CompiledPlan,
  seed: number,
): Promise<Runner> {
  const params = initParams(graph, seed);
  const { images, labels } = benchBatch(graph, compiled.plan.batch, seed);
  const placed = compiled.plan.devices.length > 1;
  if (compiled.plan.mode === "forward") {
    const { createExecutor } = await import("../runtime/executor.ts");
    const { createPlacedExecutor } = await import("../runtime/placed.ts");
    const ex = placed ? await createPlacedExecutor(devs, compiled) : await createExecutor(devs[0], compiled);
    ex.uploadParams(params);
    ex.writeInput(graph.inputs[0].name, images);
    return {
      first: async () => (await ex.run()).logits,
      step: async () => (await ex.run(), {}),
      destroy: () => ex.destroy(),
    };
  }
  const { createTrainer } = await import("../runtime/trainer.ts");
  const { createPlacedTrainer } = await import("../runtime/placed.ts");
  let trainer: Awaited<ReturnType<typeof createTrainer>> | undefined = placed
    ? await createPlacedTrainer(devs, compiled)
    : await createTrainer(devs[0], compiled);
  trainer.uploadParams(params);
  trainer.writeBatch(images, labels);
  let n = 0;
  return {
    first: () => trainer!.evaluate(images),
    step: async () => ({ loss: (await trainer!.step({ lr: recipe.lr, seed: ++n, step: n })).loss }),
    destroy: () => {
      trainer?.destroy();
      trainer = undefined;
    },
  };
}

/**
 * Bytes the runtime allocates per device for `plan`: the memory plan's arenas when one is attached
 * (plan.memory), else one 4-aligned buffer per root tensor; plus the staging pair of every transfer
 * direction of a placed plan (runtime/placed.ts), on the producing device.
 */
export function runtimeBytes(plan: Plan): number[] {
  const out = plan.devices.map(() => 0);
  const arenas = plan.memory?.devices;
  if (arenas) for (const d of arenas) out[d.device] += d.arenas.reduce((s, a) => s + Math.max(4, a.bytes), 0);
  else for (const t of plan.tensors) if (!t.aliasOf) out[t.device] += Math.max(4, Math.ceil(t.bytes / 4) * 4);
  const largest = new Map<string, number>();
  for (const s of [...plan.schedule, ...(plan.training?.evalSchedule ?? [])]) {
    if (s.kind !== "transfer") continue;
    const key = `${s.from}->${s.to}`;
    largest.set(key, Math.max(largest.get(key) ?? 4, s.bytes));
  }
  for (const [key, bytes] of largest) out[Number(key.split("->")[0])] += 2 * Math.ceil(bytes / 4) * 4;
  return out;
}

/** Per device: what the runtime allocates, and compiler/memory.ts's planned arena peak. */
async function deviceMemory(plan: Plan, devs: OpenDevice[]): Promise<DeviceMemory[]> {
  const bytes = runtimeBytes(plan);
  let planned = plan.memory;
  if (!planned) {
    try {
      const { planMemory } = await import("../compiler/memory.ts");
      planned = planMemory(plan, {
        maxBindingBytes: devs[0].maxBindingBytes,
        maxBufferBytes: devs[0].device.limits.maxBufferSize,
      });
    } catch {
      planned = undefined; // the planner refused this plan: report the runtime's figure only
    }
  }
  const peaks = new Map(planned?.devices.map((d) => [d.device, d.stats.peakBytes]));
  return plan.devices.map((d) => ({
    device: d.index,
    label: devs[d.index]?.label ?? d.label,
    bufferBytes: bytes[d.index],
    ...(peaks.has(d.index) ? { plannedPeakBytes: peaks.get(d.index) } : {}),
  }));
}

/** Sums per class; `gflops` is the class's FLOPs over its summed time. */
export function classRates(kernels: readonly KernelReport[]): ClassReport[] {
  const total = kernels.reduce((s, k) => s + k.ms, 0);
  return KERNEL_CLASSES.flatMap((c) => {
    const ks = kernels.filter((k) => k.class === c);
    if (ks.length === 0) return [];
    const flops = ks.reduce((s, k) => s + k.flops, 0);
    const ms = ks.reduce((s, k) => s + k.ms, 0);
    return [{ class: c, kernels: ks.length, flops, ms, gflops: flops / (ms * 1e6), share: ms / total }];
  });
}

/** Loads `compiled` on `devs`, warms up, times `iters` steps, then each kernel alone. */
export async function benchPlan(
  devs: OpenDevice[],
  graph: Graph,
  recipe: Recipe,
  compiled: CompiledPlan,
  opts: BenchOptions & {
    loadStartedAt?: number;
    keepLogits?: boolean;
    /** Sees the initial weights' inference logits before any step is timed; throws to stop. */
    onLogits?: (logits: Float32Array) => void;
  },
): Promise<BenchResult> {
  const { plan } = compiled;
  const t0 = opts.loadStartedAt ?? performance.now();
  const runner = await loadRunner(devs, graph, recipe, compiled, opts.seed);
  const stepsMs: number[] = [];
  let logits: Float32Array;
  let loss: number | undefined;
  try {
    logits = await runner.first(); // also the first warm-up of the forward pipelines
    opts.onLogits?.(logits);
    const loadMs = performance.now() - t0;
    for (let i = 0; i < opts.warmup; i++) loss ??= (await runner.step()).loss;
    for (let i = 0; i < opts.iters; i++) {
      const s = performance.now();
      const r = await runner.step();
      stepsMs.push(performance.now() - s);
      loss ??= r.loss;
    }
    runner.destroy();
    const kernelTimes = opts.kernelReps > 0 ? await timeKernels(devs, compiled, opts.kernelReps) : undefined;
    // Rates from wall time on a CPU adapter (its timestamps under-report), from timestamps elsewhere.
    const adapter = adapterSummary(devs[0]);
    const byTimestamp =
      !adapter.cpu && (kernelTimes?.kernels.every((k) => k.timestampMs !== undefined) ?? false);
    const perKernel: KernelReport[] = (kernelTimes?.kernels ?? []).map((t) => kernelReport(t, byTimestamp));
    const ms = median(stepsMs);
    return {
      network: graph.name,
      mode: opts.mode,
      batch: plan.batch,
      ...(plan.microBatch && plan.microBatch !== plan.batch ? { microBatch: plan.microBatch } : {}),
      placement: opts.placement,
      devices: devs.slice(0, plan.devices.length).map((d) => d.label),
      adapter,
      iters: opts.iters,
      warmup: opts.warmup,
      loadMs,
      stepsMs,
      median: ms,
      imagesPerSecond: (plan.batch * 1000) / ms,
      ...(loss !== undefined ? { loss } : {}),
      perKernelMethod: kernelTimes
        ? `each kernel submitted alone and awaited (onSubmittedWorkDone), median of ${kernelTimes.reps}`
        : "not measured",
      rateSource: byTimestamp ? "timestamp" : "wall",
      ...(kernelTimes ? { submitOverheadMs: kernelTimes.submitOverheadMs } : {}),
      perKernel,
      classes: classRates(perKernel),
      memory: await deviceMemory(plan, devs),
      ...(opts.keepLogits ? { logits } : {}),
    };
  } catch (e) {
    runner.destroy();
    throw e;
  }
}

function kernelReport(t: KernelWallTime, byTimestamp: boolean): KernelReport {
  const { kernel, wallMs, timestampMs } = t;
  const ms = byTimestamp ? timestampMs! : wallMs;
  return {
    kernel: kernel.name,
    layer: kernel.layer,
    op: kernel.op,
    class: kernelClass(kernel.op),
    device: kernel.device,
    // a Winograd GEMM counts the direct convolution's FLOPs, its transforms none: effective rates
    flops: kernel.equivalentFlops ?? kernel.flops,
    wallMs,
    ...(timestampMs !== undefined ? { timestampMs } : {}),
    ms,
    gflops: (kernel.equivalentFlops ?? kernel.flops) / (ms * 1e6),
  };
}
