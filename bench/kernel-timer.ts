// Per-kernel times of a plan: every kernel of the schedule submitted alone and awaited
// (`queue.onSubmittedWorkDone()`), repeated, the median kept. The wall time is what a kernel costs on
// a CPU adapter; it includes one submit's round trip (tens of µs on lavapipe; measured with an empty
// submit and reported). Where the device has timestamp queries, the kernel's pass also writes begin
// and end timestamps: exact on discrete GPUs, where the round trip is a large part of a short kernel.
// Why not the runtime's own per-step timestamps (runtime/executor.ts `timing`): on lavapipe they sum
// to about half of the step's wall time (measured), while around a kernel submitted alone they agree
// with its wall time (alexnet-67 forward, summed: 208 ms timestamps, 215 ms wall, 188 ms the step).
//
// The harness has its own buffers (one per root tensor on its device, filled with a fixed
// pseudo-random pattern; the uniform and the labels zero, so lr = 0 and every label is class 0) and
// its own pipelines (runtime/pipeline.ts's buildKernelStep, as the runtime builds them). Transfers of
// placed plans are skipped: a kernel reading a peer reads whatever the peer buffer holds. A
// micro-batched plan runs its schedule once per micro-batch, so each time is multiplied by that count.
import type { CompiledPlan, PlanKernel } from "../compiler/plan.ts";
import type { OpenDevice } from "../runtime/devices.ts";
import { bufferRange } from "../runtime/arenas.ts";
import { buildKernelStep, type KernelStep } from "../runtime/pipeline.ts";

export interface KernelWallTime {
  kernel: PlanKernel;
  /** Median wall milliseconds per step (× micro-steps), submit to onSubmittedWorkDone. */
  wallMs: number;
  /** Median timestamp-query milliseconds per step (× micro-steps), where the device has them. */
  timestampMs?: number;
}

export interface KernelTimes {
  kernels: KernelWallTime[];
  /** Median wall time of an empty submit + onSubmittedWorkDone: the overhead inside every figure. */
  submitOverheadMs: number;
  reps: number;
}

const align4 = (n: number) => Math.max(4, Math.ceil(n / 4) * 4);
export const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/** n values in [-0.5, 0.5) from a 32-bit LCG seeded with `seed`: deterministic, no NaNs, no denormals. */
export function lcgUniform(n: number, seed: number): Float32Array {
  const a = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    a[i] = s / 2 ** 32 - 0.5;
  }
  return a;
}

/** What one timed dispatch needs: a pipeline, its bind group and its grid. */
export interface TimedDispatch {
  pipeline: GPUComputePipeline;
  bindGroup: GPUBindGroup;
  dispatch: readonly [number, number, number];
}

/**
 * Submits `steps` in one compute pass and waits for onSubmittedWorkDone: wall and process-CPU
 * milliseconds. lavapipe's threads run in-process, so the CPU time counts the kernels' work too and
 * is less sensitive than wall time to other processes on the machine.
 */
export async function submitTimed(
  device: GPUDevice,
  steps: readonly TimedDispatch[],
): Promise<{ wall: number; cpu: number }> {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const encoder = device.createCommandEncoder();
  const pass = encoder.beginComputePass();
  for (const s of steps) {
    pass.setPipeline(s.pipeline);
    pass.setBindGroup(0, s.bindGroup);
    pass.dispatchWorkgroups(...s.dispatch);
  }
  pass.end();
  device.queue.submit([encoder.finish()]);
  await device.queue.onSubmittedWorkDone();
  const wall = performance.now() - t0;
  const c = process.cpuUsage(c0);
  return { wall, cpu: (c.user + c.system) / 1000 };
}

/** The first `bytes` of a storage buffer (COPY_SRC), read back as f32. */
export async function readBuffer(device: GPUDevice, src: GPUBuffer, bytes = src.size): Promise<Float32Array> {
  const staging = device.createBuffer({
    size: bytes,
    usage: GPUBufferUsage.COPY_DST | GPUBufferUsage.MAP_READ,
  });
  const encoder = device.createCommandEncoder();
  encoder.copyBufferToBuffer(src, 0, staging, 0, bytes);
  device.queue.submit([encoder.finish()]);
  await staging.mapAsync(GPUMapMode.READ);
  const out = new Float32Array(staging.getMappedRange().slice(0));
  staging.destroy();
  return out;
}

/** The dispatch steps of `compiled`'s step schedule (the training step, or the forward run). */
export function scheduledKernels(compiled: CompiledPlan): PlanKernel[] {
  const byName = new Map(compiled.plan.kernels.map((k) => [k.name, k]));
  return compiled.plan.schedule.flatMap((s) => (s.kind === "dispatch" ? [byName.get(s.kernel)!] : []));
}

/** Times every scheduled kernel of `compiled` (those `only` accepts) alone on `devs` (plan device i on devs[i]). */
export async function timeKernels(
  devs: readonly OpenDevice[],
  compiled: CompiledPlan,
  reps: number,
  only: (kernel: PlanKernel) => boolean = () => true,
): Promise<KernelTimes> {
  const { plan, wgsl } = compiled;
  const split = plan.placement?.strategy === "data" ? 2 : 1; // devices sharing the batch
  const microSteps = plan.microBatch ? plan.batch / (split * plan.microBatch) : 1;
  const tensors = new Map(plan.tensors.map((t) => [t.name, t]));
  const rootOf = (name: string) => tensors.get(name)?.aliasOf ?? name;
  const buffers = new Map<string, GPUBuffer>();
  const chunk = lcgUniform(1 << 20, 12345);
  try {
    for (const t of plan.tensors) {
      if (t.aliasOf) continue;
      const { device } = devs[t.device];
      const uniform = t.role === "uniform";
      const usage = (uniform ? GPUBufferUsage.UNIFORM : GPUBufferUsage.STORAGE) | GPUBufferUsage.COPY_DST;
      const buffer = device.createBuffer({ label: t.name, size: align4(t.bytes), usage });
      buffers.set(t.name, buffer);
      if (uniform || t.dtype !== "f32") continue; // zero: lr 0, seed 0, every label class 0
      for (let at = 0; at < t.bytes; at += chunk.byteLength) {
        const n = Math.min(chunk.byteLength, t.bytes - at);
        device.queue.writeBuffer(buffer, at, chunk.buffer, 0, n);
      }
    }
    const kernels = scheduledKernels(compiled).filter(only);
    const built = await Promise.all(
      [...new Set(kernels)].map((k) =>
        buildKernelStep(devs[k.device], k, wgsl[k.name], (t) => {
          const buffer = buffers.get(rootOf(t));
          const tensor = tensors.get(t);
          return buffer && tensor && bufferRange(buffer, tensor);
        }),
      ),
    );
    const steps = new Map(built.map((s) => [s.kernel.name, s]));
    const stamps = new Map(devs.filter((d) => d.timestamps).map((d) => [d, timestampKit(d.device)]));
    /** Runs one kernel alone: its wall time and, where the device has them, its timestamp time. */
    const runOne = async (s: KernelStep): Promise<[number, number | undefined]> => {
      const dev = devs[s.kernel.device];
      const kit = stamps.get(dev);
      const t0 = performance.now();
      const encoder = dev.device.createCommandEncoder({ label: s.kernel.name });
      const pass = encoder.beginComputePass({
        label: s.kernel.name,
        ...(kit
          ? {
              timestampWrites: {
                querySet: kit.querySet,
                beginningOfPassWriteIndex: 0,
                endOfPassWriteIndex: 1,
              },
            }
          : {}),
      });
      pass.setPipeline(s.pipeline);
      pass.setBindGroup(0, s.bindGroup);
      pass.dispatchWorkgroups(...s.kernel.dispatch);
      pass.end();
      kit?.encodeResolve(encoder);
      dev.device.queue.submit([encoder.finish()]);
      await dev.device.queue.onSubmittedWorkDone();
      const wall = performance.now() - t0;
      return [wall, kit ? await kit.read() : undefined];
    };
    for (const d of devs) await d.device.queue.onSubmittedWorkDone(); // the uploads
    // Warm-up: lavapipe compiles a pipeline's machine code at its first dispatch.
    for (const k of kernels) await runOne(steps.get(k.name)!);
    const walls = kernels.map(() => [] as number[]);
    const gpu = kernels.map(() => [] as number[]);
    const empty: number[] = [];
    // Repetitions outermost, kernels in schedule order: each kernel finds the caches as a step leaves them.
    for (let r = 0; r < reps; r++) {
      for (const [i, k] of kernels.entries()) {
        const [wall, stamp] = await runOne(steps.get(k.name)!);
        walls[i].push(wall);
        if (stamp !== undefined) gpu[i].push(stamp);
      }
      const { device } = devs[0];
      const t0 = performance.now();
      device.queue.submit([device.createCommandEncoder().finish()]);
      await device.queue.onSubmittedWorkDone();
      empty.push(performance.now() - t0);
    }
    for (const kit of stamps.values()) kit.destroy();
    return {
      kernels: kernels.map((kernel, i) => ({
        kernel,
        wallMs: median(walls[i]) * microSteps,
        ...(gpu[i].length ? { timestampMs: median(gpu[i]) * microSteps } : {}),
      })),
      submitOverheadMs: median(empty),
      reps,
    };
  } finally {
    for (const b of buffers.values()) b.destroy();
  }
}

/** A two-entry timestamp query set with its resolve and readback buffers. */
function timestampKit(device: GPUDevice) {
  const querySet = device.createQuerySet({ type: "timestamp", count: 2 });
  const resolve = device.createBuffer({
    size: 16,
    usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC,
  });
  const readback = device.createBuffer({
    size: 16,
    usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
  });
  return {
    querySet,
    encodeResolve(encoder: GPUCommandEncoder) {
      encoder.resolveQuerySet(querySet, 0, 2, resolve, 0);
      encoder.copyBufferToBuffer(resolve, 0, readback, 0, 16);
    },
    async read(): Promise<number> {
      await readback.mapAsync(GPUMapMode.READ);
      const [begin, end] = new BigInt64Array(readback.getMappedRange().slice(0));
      readback.unmap();
      return Number(end - begin) / 1e6;
    },
    destroy() {
      for (const b of [resolve, readback]) b.destroy();
      querySet.destroy();
    },
  };
}
