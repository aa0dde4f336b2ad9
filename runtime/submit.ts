// Encoding kernels, waiting on a device and reading tensors back: shared by the single-device
// executor and trainer and the two-device runtime, so that a device loss (AX4003) or a kernel WebGPU
// rejects at submit (AX4001) reads the same everywhere and no raw WebGPU stack trace leaks out.
import { DiagnosticError, diag } from "../compiler/diagnostics.ts";
import type { PlanTensor } from "../compiler/plan.ts";
import type { OpenDevice } from "./devices.ts";
import { type KernelStep, messageOf } from "./pipeline.ts";

const align4 = (n: number) => Math.max(4, Math.ceil(n / 4) * 4);

/** One kernel's GPU time in a timed run. */
export interface KernelTiming {
  kernel: string;
  layer: string;
  ms: number;
}

/** Records `steps` into `pass` in order. */
export function encodeDispatches(pass: GPUComputePassEncoder, steps: readonly KernelStep[]): void {
  for (const s of steps) {
    pass.setPipeline(s.pipeline);
    pass.setBindGroup(0, s.bindGroup);
    pass.dispatchWorkgroups(...s.kernel.dispatch);
  }
}

/**
 * Encodes `steps` into `encoder`: one compute pass, or with `timed` one pass per kernel with begin
 * and end timestamps (timestamps are per pass; the extra passes cost nothing measurable next to the
 * kernels), resolved and copied out in the same submission. With `timed`, returns the function that
 * reads the times after the submit.
 */
export function encodeSchedule(
  dev: OpenDevice,
  encoder: GPUCommandEncoder,
  steps: readonly KernelStep[],
  what: string,
  timed: boolean,
): (() => Promise<KernelTiming[]>) | undefined {
  if (!timed || steps.length === 0) {
    const pass = encoder.beginComputePass({ label: what });
    encodeDispatches(pass, steps);
    pass.end();
    return undefined;
  }
  const querySet = dev.device.createQuerySet({
    label: `${what} timing`,
    type: "timestamp",
    count: 2 * steps.length,
  });
  steps.forEach((s, i) => {
    const pass = encoder.beginComputePass({
      label: s.kernel.name,
      timestampWrites: { querySet, beginningOfPassWriteIndex: 2 * i, endOfPassWriteIndex: 2 * i + 1 },
    });
    encodeDispatches(pass, [s]);
    pass.end();
  });
  const read = encodeTimestampReadback(dev, encoder, querySet, what);
  return async () => {
    const ns = await read();
    return steps.map((s, i) => ({
      kernel: s.kernel.name,
      layer: s.kernel.layer,
      ms: Number(ns[2 * i + 1] - ns[2 * i]) / 1e6,
    }));
  };
}

/**
 * Encodes resolving all of `querySet` and copying it to a mappable buffer, in `encoder`'s submission;
 * returns the function that reads the nanosecond stamps after the submit. The reader destroys the
 * query set and both buffers, whether or not the read succeeds.
 */
export function encodeTimestampReadback(
  dev: OpenDevice,
  encoder: GPUCommandEncoder,
  querySet: GPUQuerySet,
  what: string,
): () => Promise<BigInt64Array> {
  const size = 8 * querySet.count;
  const resolve = dev.device.createBuffer({
    label: `${what} timing resolve`,
    size,
    usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC,
  });
  const readback = dev.device.createBuffer({
    label: `${what} timing readback`,
    size,
    usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
  });
  encoder.resolveQuerySet(querySet, 0, querySet.count, resolve, 0);
  encoder.copyBufferToBuffer(resolve, 0, readback, 0, size);
  return async () => {
    try {
      await awaitOnDevice(dev, readback.mapAsync(GPUMapMode.READ));
      return new BigInt64Array(readback.getMappedRange().slice(0));
    } finally {
      for (const b of [readback, resolve]) b.destroy();
      querySet.destroy();
    }
  };
}

/** Awaits `work` unless `dev` is lost first: a loss, or a failure of `work` itself (a mapping), is AX4003. */
export async function awaitOnDevice<T>(dev: OpenDevice, work: Promise<T>): Promise<T> {
  const lost = dev.lost.then((e) => Promise.reject(e));
  try {
    return await Promise.race([work, lost]);
  } catch (e) {
    if (e instanceof DiagnosticError) throw e;
    throw new DiagnosticError(
      diag("AX4003", { device: dev.label, reason: messageOf(e), kernel: dev.activity.kernel }, undefined),
    );
  }
}

/**
 * Encodes a copy of tensor `t` (at `source` on `dev`) into a fresh staging buffer; the returned
 * function maps it and returns the values as f32. Integer tensors (labels, the uniform's words) come
 * back as their values, not their bits; f16 ones widened.
 */
export function encodeReadback(
  dev: OpenDevice,
  encoder: GPUCommandEncoder,
  source: { buffer: GPUBuffer; offset: number },
  t: PlanTensor,
): () => Promise<Float32Array> {
  const size = align4(t.bytes);
  const staging = dev.device.createBuffer({
    label: `readback ${t.name}`,
    size,
    usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
  });
  encoder.copyBufferToBuffer(source.buffer, source.offset, staging, 0, size);
  return async () => {
    await awaitOnDevice(dev, staging.mapAsync(GPUMapMode.READ));
    const bytes = staging.getMappedRange().slice(0, t.bytes);
    staging.destroy();
    if (t.dtype === "i32") return Float32Array.from(new Int32Array(bytes));
    if (t.dtype === "u32") return Float32Array.from(new Uint32Array(bytes));
    if (t.dtype === "f16") return Float32Array.from(new Float16Array(bytes));
    return new Float32Array(bytes);
  };
}

/**
 * A submission of `steps` was rejected with `message`: re-validates them one by one (encode only, no
 * submit) to name the kernel; AX4001 on the whole `what` when none fails alone.
 */
export async function findRejectedKernel(
  dev: OpenDevice,
  steps: readonly KernelStep[],
  message: string,
  what: string,
): Promise<DiagnosticError> {
  const { device } = dev;
  for (const s of steps) {
    device.pushErrorScope("validation");
    const encoder = device.createCommandEncoder();
    const pass = encoder.beginComputePass();
    encodeDispatches(pass, [s]);
    pass.end();
    encoder.finish();
    const error = await device.popErrorScope();
    if (error)
      return new DiagnosticError(
        diag("AX4001", { kernel: s.kernel.name, layer: s.kernel.layer, message: error.message }, undefined),
      );
  }
  return new DiagnosticError(
    diag("AX4001", { kernel: dev.activity.kernel, layer: `(the ${what})`, message }, undefined),
  );
}
