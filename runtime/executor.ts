// Runs a CompiledPlan on one WebGPU device.
//
// Load once: one buffer per root tensor (aliases share their root's buffer), every pipeline built with
// createComputePipelineAsync in parallel, every bind group pre-created. Run: the whole schedule is
// encoded into one command encoder, submitted once, and the logits copied out in the same submission.
// Failures come back as DiagnosticErrors naming the kernel and layer (AX4001 rejected, AX4002 out of
// memory, AX4003 device lost); nothing leaks a raw WebGPU stack trace.
import { DiagnosticError, diag } from "../compiler/diagnostics.ts";
import { elementCount } from "../compiler/graph.ts";
import type { CompiledPlan, Plan, PlanKernel, PlanTensor } from "../compiler/plan.ts";
import type { OpenDevice } from "./devices.ts";
import { type TensorRange, bufferRange } from "./arenas.ts";
import { buildKernelStep, type KernelStep } from "./pipeline.ts";
import { concat } from "./concat.ts";
import { checkParamValues, partOfValues } from "./param-io.ts";
import {
  type KernelTiming,
  awaitOnDevice,
  encodeDispatches,
  encodeReadback,
  encodeSchedule,
  findRejectedKernel,
} from "./submit.ts";

export interface ExecutorOptions {
  /** Time every kernel with timestamp queries (when the device has them). */
  timing?: boolean;
}

export type { KernelTiming } from "./submit.ts";

export interface RunResult {
  /** [batch, classes] row-major (whatever shape the plan's logits tensor has). */
  logits: Float32Array;
  /** Host wall time of the run, submit to readback, in milliseconds. */
  wallMs: number;
  /** Per-kernel GPU time, in schedule order, when timing was requested and available. */
  kernels?: KernelTiming[];
}

type Step = KernelStep;

const STORAGE = () => GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC;
const align4 = (n: number) => Math.max(4, Math.ceil(n / 4) * 4);

/** Loads `compiled`'s kernels for `dev` (those with `device === dev.index`) and allocates their tensors. */
export async function createExecutor(
  dev: OpenDevice,
  compiled: CompiledPlan,
  opts: ExecutorOptions = {},
): Promise<Executor> {
  const { plan, wgsl } = compiled;
  const { device } = dev;
  if (plan.tensors.some((t) => t.dtype === "f16") && !device.features.has("shader-f16"))
    throw new DiagnosticError(
      diag("AX4008", { dtype: "f16", device: dev.label, feature: "shader-f16" }, undefined, {
        help: "compile the plan with f32 storage (the default), or use an adapter with shader-f16 (`alexc devices` lists them)",
      }),
    );
  const kernels = plan.kernels.filter((k) => k.device === dev.index);
  const tensors = new Map(plan.tensors.map((t) => [t.name, t]));
  const rootOf = (name: string) => tensors.get(name)?.aliasOf ?? name;
  const firstUser = (tensor: string) =>
    kernels.find((k) => k.bindings.some((b) => rootOf(b.tensor) === tensor));

  // Buffers: one per root tensor on this device. Each allocation in its own error scopes so that an
  // out-of-memory names the tensor's first kernel.
  const buffers = new Map<string, GPUBuffer>();
  const allocations: Promise<void>[] = [];
  for (const t of plan.tensors) {
    if (t.device !== dev.index || t.aliasOf) continue;
    device.pushErrorScope("out-of-memory");
    device.pushErrorScope("validation");
    buffers.set(t.name, device.createBuffer({ label: t.name, size: align4(t.bytes), usage: STORAGE() }));
    const validation = device.popErrorScope();
    const oom = device.popErrorScope();
    allocations.push(
      Promise.all([validation, oom]).then(([v, o]) => {
        const user = firstUser(t.name);
        const where = { kernel: user?.name ?? "(none)", layer: user?.layer ?? t.name };
        if (o)
          throw new DiagnosticError(
            diag("AX4002", { device: dev.label, ...where }, undefined, {
              notes: [`allocating \`${t.name}\` (${t.bytes} bytes)`],
            }),
          );
        if (v)
          throw new DiagnosticError(
            diag(
              "AX4001",
              { ...where, message: `buffer \`${t.name}\` (${t.bytes} bytes): ${v.message}` },
              undefined,
            ),
          );
      }),
    );
  }

  // Await compilation and allocation together, so that a failure in one never leaves the other's
  // rejections unobserved, and free what was allocated before reporting it.
  try {
    const [steps] = await Promise.all([
      Promise.all(
        kernels.map((k) =>
          buildKernelStep(dev, k, wgsl[k.name], (t) => {
            const buffer = buffers.get(rootOf(t));
            const tensor = tensors.get(t);
            return buffer && tensor && bufferRange(buffer, tensor);
          }),
        ),
      ),
      Promise.all(allocations),
    ]);
    const prepare = new Set(plan.prepare ?? []);
    return new Executor(
      dev,
      plan,
      steps.filter((s) => !prepare.has(s.kernel.name)),
      buffers,
      opts,
      steps.filter((s) => prepare.has(s.kernel.name)),
    );
  } catch (e) {
    for (const b of buffers.values()) b.destroy();
    throw e;
  }
}

export class Executor {
  readonly dev: OpenDevice;
  readonly plan: Plan;
  readonly #steps: Step[];
  readonly #buffers: Map<string, GPUBuffer>;
  readonly #tensors: Map<string, PlanTensor>;
  readonly #timing: boolean;
  /** Run after every parameter upload: they compute the plan's `derived` tensors. */
  readonly #prepare: Step[];

  constructor(
    dev: OpenDevice,
    plan: Plan,
    steps: Step[],
    buffers: Map<string, GPUBuffer>,
    opts: ExecutorOptions,
    prepare: Step[] = [],
  ) {
    this.dev = dev;
    this.plan = plan;
    this.#steps = steps;
    this.#prepare = prepare;
    this.#buffers = buffers;
    this.#tensors = new Map(plan.tensors.map((t) => [t.name, t]));
    // WebGPU caps a query set at 4096 queries: two per kernel.
    this.#timing = (opts.timing ?? false) && dev.timestamps && steps.length > 0 && 2 * steps.length <= 4096;
  }

  /** The kernels this executor runs, in schedule order. */
  get kernels(): readonly PlanKernel[] {
    return this.#steps.map((s) => s.kernel);
  }

  /**
   * Uploads parameters given as full tensors in PyTorch layout, keyed by parameter name; a parameter
   * the plan split is uploaded part by part (`partOf`). Throws AX4005 on a missing or mis-sized one.
   */
  uploadParams(params: ReadonlyMap<string, Float32Array>, file = "(parameters)"): void {
    checkParamValues(
      this.plan,
      params,
      this.plan.params.map((p) => p.name),
      file,
    );
    for (const t of this.plan.tensors) {
      if (t.role !== "param" || t.device !== this.dev.index) continue;
      this.#write(t, partOfValues(t, params.get(t.partOf?.tensor ?? t.name)!));
    }
    if (this.#prepare.length === 0) return;
    // Queue order puts these after the writes above and before any later run's work.
    const encoder = this.dev.device.createCommandEncoder({ label: "prepare (derived tensors)" });
    const pass = encoder.beginComputePass({ label: "prepare" });
    encodeDispatches(pass, this.#prepare);
    pass.end();
    this.dev.device.queue.submit([encoder.finish()]);
  }

  /** Writes a network input (NCHW f32, the whole batch). Throws AX4006 on a wrong name or size. */
  writeInput(name: string, data: Float32Array, file = "(input)"): void {
    const t = this.#tensors.get(name);
    if (!t || t.role !== "input")
      throw new DiagnosticError(
        diag("AX4006", { file, problem: `the network has no input \`${name}\`` }, undefined),
      );
    const shape = [this.plan.batch, ...t.shape.slice(1)];
    const want = elementCount(shape);
    if (data.length !== want) {
      throw new DiagnosticError(
        diag(
          "AX4006",
          { file, problem: `\`${name}\` needs ${want} values ([${shape.join(", ")}]), got ${data.length}` },
          undefined,
        ),
      );
    }
    // A micro-batched plan's input holds one micro-batch: keep the whole batch, run() writes chunks.
    if (this.plan.microBatch !== undefined && this.plan.microBatch !== this.plan.batch)
      this.#inputs.set(name, data.slice());
    else this.#write(t, data);
  }

  /** Micro-batched plans: the whole batch of each input, written chunk by chunk by run(). */
  #inputs = new Map<string, Float32Array>();

  /** The bytes of `t` on this device: its root's buffer, or a view's range of it. */
  #range(t: PlanTensor): TensorRange {
    const buffer = this.#buffers.get(t.aliasOf ?? t.name);
    if (!buffer)
      throw new DiagnosticError(
        diag("AX9001", { message: `tensor \`${t.name}\` has no buffer on ${this.dev.label}` }, undefined),
      );
    return bufferRange(buffer, t);
  }

  #write(t: PlanTensor, data: Float32Array) {
    const { buffer, offset } = this.#range(t);
    // f16 storage: rounded on the host; an odd count is padded to whole 4-byte words (writeBuffer
    // needs them), which land in the tensor's own aligned allocation.
    const stored = t.dtype === "f16" ? new Float16Array(data.length + (data.length % 2)).fill(0) : data;
    if (stored !== data) (stored as Float16Array).set(data);
    this.dev.device.queue.writeBuffer(buffer, offset, stored.buffer, stored.byteOffset, stored.byteLength);
  }

  /**
   * Runs the whole schedule once and reads back the logits; a micro-batched plan runs it once per
   * chunk of the batch and returns the chunks' logits concatenated (and their times summed).
   */
  async run(): Promise<RunResult> {
    const micro = this.plan.microBatch ?? this.plan.batch;
    const k = this.plan.batch / micro;
    if (k === 1) return this.#runOnce();
    const results: RunResult[] = [];
    for (let j = 0; j < k; j++) {
      for (const [name, data] of this.#inputs) {
        const per = data.length / k;
        this.#write(this.#tensors.get(name)!, data.subarray(j * per, (j + 1) * per));
      }
      results.push(await this.#runOnce());
    }
    const logits = concat(results.map((r) => r.logits));
    const kernels = results[0].kernels?.map((t, i) => ({
      ...t,
      ms: results.reduce((ms, r) => ms + (r.kernels?.[i]?.ms ?? 0), 0),
    }));
    return { logits, wallMs: results.reduce((ms, r) => ms + r.wallMs, 0), kernels };
  }

  async #runOnce(): Promise<RunResult> {
    const { device } = this.dev;
    const steps = this.#steps;
    const span =
      steps.length > 0 ? `${steps[0].kernel.name} … ${steps[steps.length - 1].kernel.name}` : "(no kernels)";
    this.dev.activity = { kernel: span, layer: "(the forward schedule)" };
    const errorsBefore = this.dev.errors.length;
    const t0 = performance.now();

    device.pushErrorScope("out-of-memory");
    device.pushErrorScope("validation");
    const encoder = device.createCommandEncoder({ label: "forward" });
    const readTimes = encodeSchedule(this.dev, encoder, steps, "forward", this.#timing);
    const logits = this.#tensors.get(this.plan.logits)!;
    const readLogits = logits.device === this.dev.index ? this.#encodeReadback(encoder, logits) : undefined;
    device.queue.submit([encoder.finish()]);
    const validation = device.popErrorScope();
    const oom = device.popErrorScope();

    const v = await validation;
    if (v) throw await findRejectedKernel(this.dev, this.#steps, v.message, "forward schedule");
    if (await oom)
      throw new DiagnosticError(
        diag("AX4002", { device: this.dev.label, kernel: span, layer: "(the forward schedule)" }, undefined),
      );

    const values = readLogits ? await awaitOnDevice(this.dev, readLogits()) : new Float32Array(0);
    const wallMs = performance.now() - t0;
    const kernels = readTimes ? await readTimes() : undefined;
    if (this.dev.errors.length > errorsBefore) throw new DiagnosticError(this.dev.errors.slice(errorsBefore));
    this.dev.activity = { kernel: "(none)", layer: "(none)" };
    return { logits: values, wallMs, kernels };
  }

  /** Reads any tensor by name (a split parameter is reassembled from its parts); for tests and dumps. */
  async readTensor(name: string): Promise<Float32Array> {
    const t = this.#tensors.get(name);
    const encoder = this.dev.device.createCommandEncoder({ label: `read ${name}` });
    if (t) {
      const read = this.#encodeReadback(encoder, t);
      this.dev.device.queue.submit([encoder.finish()]);
      return awaitOnDevice(this.dev, read());
    }
    const parts = this.plan.tensors.filter((p) => p.partOf?.tensor === name);
    const param = this.plan.params.find((p) => p.name === name);
    if (!param || parts.length === 0)
      throw new DiagnosticError(diag("AX9001", { message: `no tensor \`${name}\` in the plan` }, undefined));
    const reads = parts.map((p) => ({ offset: p.partOf!.offset, read: this.#encodeReadback(encoder, p) }));
    this.dev.device.queue.submit([encoder.finish()]);
    const out = new Float32Array(elementCount(param.shape));
    for (const { offset, read } of reads) out.set(await awaitOnDevice(this.dev, read()), offset);
    return out;
  }

  /** Frees the buffers (the device stays open; closeDevices() ends it). */
  destroy(): void {
    for (const b of this.#buffers.values()) b.destroy();
    this.#buffers.clear();
  }

  #encodeReadback(encoder: GPUCommandEncoder, t: PlanTensor): () => Promise<Float32Array> {
    return encodeReadback(this.dev, encoder, this.#range(t), t);
  }
}
