// The two-device executor and trainer: the interfaces of runtime/executor.ts and runtime/trainer.ts
// over a placed plan, run by runtime/placed-runtime.ts (buffers, kernels and transfers per device).
import { DiagnosticError, diag } from "../compiler/diagnostics.ts";
import { elementCount } from "../compiler/graph.ts";
import type { CompiledPlan, Plan, PlanKernel, PlanTraining } from "../compiler/plan.ts";
import type { OpenDevice } from "./devices.ts";
import type { ExecutorOptions, RunResult } from "./executor.ts";
import {
  type Built,
  type PlacedKernelTiming,
  PlacedRuntime,
  type TransferTiming,
  internal,
} from "./placed-runtime.ts";
import { concat } from "./concat.ts";
import { firstNonFinite, readTrainingState, uploadByParam } from "./param-io.ts";
import type { StepResult, Trainer } from "./trainer.ts";

export type { PlacedKernelTiming, TransferTiming } from "./placed-runtime.ts";
/** The placed forward pass: the Executor's interface over several devices. */
export class PlacedExecutor {
  readonly plan: Plan;
  readonly #rt: PlacedRuntime;
  readonly #steps: Built[];
  readonly #timing: boolean;
  /** The transfers of the latest run. */
  lastTransfers: TransferTiming[] = [];

  constructor(rt: PlacedRuntime, opts: ExecutorOptions = {}) {
    this.#rt = rt;
    this.plan = rt.plan;
    this.#steps = rt.steps(rt.plan.schedule);
    this.#timing = opts.timing ?? false;
  }

  get kernels(): readonly PlanKernel[] {
    return this.#steps.flatMap((s) => (s.kind === "dispatch" ? [s.kernel] : []));
  }

  uploadParams(params: ReadonlyMap<string, Float32Array>, file = "(parameters)"): void {
    uploadByParam(
      this.#rt,
      params,
      (p) => p,
      file,
      this.plan.params.map((p) => p.name),
    );
  }

  /** Micro-batched plans: the whole batch of each input, written chunk by chunk by run(). */
  #inputs = new Map<string, Float32Array>();

  get #microSteps(): number {
    return this.plan.batch / (this.plan.microBatch ?? this.plan.batch);
  }

  writeInput(name: string, data: Float32Array, file = "(input)"): void {
    const k = this.#microSteps;
    if (k === 1) return this.#rt.writeInput(name, data, file);
    // checked against the micro-batch's shape, then kept whole
    const per = data.length / k;
    if (Number.isInteger(per)) this.#rt.writeInput(name, data.subarray(0, per), file);
    else this.#rt.writeInput(name, data, file); // throws AX4006 with the expected size
    this.#inputs.set(name, data.slice());
  }

  /** Runs the schedule once, or once per chunk of a micro-batched plan's batch (logits concatenated). */
  async run(): Promise<RunResult & { kernels?: PlacedKernelTiming[]; transfers: TransferTiming[] }> {
    const t0 = performance.now();
    const k = this.#microSteps;
    const logits: Float32Array[] = [];
    const transfers: TransferTiming[] = [];
    let kernels: PlacedKernelTiming[] | undefined;
    for (let j = 0; j < k; j++) {
      if (k > 1)
        for (const [name, data] of this.#inputs) {
          const per = data.length / k;
          this.#rt.writeInput(name, data.subarray(j * per, (j + 1) * per));
        }
      const run = await this.#rt.run(this.#steps, "forward schedule", [this.plan.logits], this.#timing);
      logits.push(run.values[0]);
      transfers.push(...run.transfers);
      if (run.kernels) kernels = [...(kernels ?? []), ...run.kernels];
    }
    this.lastTransfers = transfers;
    return { logits: concat(logits), wallMs: performance.now() - t0, kernels, transfers };
  }

  async readTensor(name: string): Promise<Float32Array> {
    return (await this.#rt.readMany([name]))[0];
  }

  destroy(): void {
    this.#rt.destroy();
  }
}

/** Loads a placed forward plan (lowerPlaced) onto `devs` (plan device i on devs[i]). */
export async function createPlacedExecutor(
  devs: OpenDevice[],
  compiled: CompiledPlan,
  opts: ExecutorOptions = {},
): Promise<PlacedExecutor> {
  const rt = await PlacedRuntime.load(devs, compiled);
  try {
    return new PlacedExecutor(rt, opts);
  } catch (e) {
    rt.destroy();
    throw e;
  }
}

/** A step's result with the transfers it made. */
export interface PlacedStepResult extends StepResult {
  /** GPU time per kernel in schedule order, each on its device, when `timing` was asked for and every device has timestamps. */
  kernels?: PlacedKernelTiming[];
  transfers: TransferTiming[];
}

class PlacedTrainer implements Trainer {
  readonly plan: Plan;
  readonly #rt: PlacedRuntime;
  readonly #training: PlanTraining;
  readonly #train: Built[];
  readonly #eval: Built[];
  #stepCount = 0;

  constructor(rt: PlacedRuntime, training: PlanTraining) {
    this.#rt = rt;
    this.plan = rt.plan;
    this.#training = training;
    this.#train = rt.steps(rt.plan.schedule);
    this.#eval = rt.steps(training.evalSchedule);
  }

  uploadParams(params: ReadonlyMap<string, Float32Array>): void {
    uploadByParam(
      this.#rt,
      params,
      (p) => p,
      "(parameters)",
      this.plan.params.map((p) => p.name),
    );
  }

  uploadVelocities(v: ReadonlyMap<string, Float32Array>): void {
    const velocities = this.#training.velocities;
    uploadByParam(this.#rt, v, (p) => velocities[p], "(velocities)", Object.keys(velocities));
  }

  /** Devices the input batch is split over: data and hybrid placement split it, model does not. */
  get #devices(): number {
    const s = this.plan.placement?.strategy;
    return s === "data" || s === "hybrid" ? this.plan.devices.length : 1;
  }

  /** Devices the labels, loss and logits are split over: only data placement splits them. */
  get #outputDevices(): number {
    return this.plan.placement?.strategy === "data" ? this.plan.devices.length : 1;
  }

  /**
   * Runs of the schedule per step: 1, or K for a micro-batched plan (plan.ts `microBatch`), whose
   * tensors hold `microBatch` examples per device. Each device's share of the batch (all of it under
   * model placement, its half under data placement) is cut into K chunks, chunk j run by micro-step j.
   */
  get #microSteps(): number {
    const micro = this.plan.microBatch;
    return micro === undefined ? 1 : this.plan.batch / this.#devices / micro;
  }

  /**
   * Chunk j of each device's share of `data` split over `devices` devices (device d's tensor is
   * `name@devD`, device 0's `name`): the host arrays are in global example order, device 0's half first.
   */
  #chunks<T extends Float32Array | Int32Array>(
    name: string,
    data: T,
    devices: number,
    j: number,
  ): { name: string; data: T }[] {
    const share = data.length / devices;
    const size = share / this.#microSteps;
    return Array.from({ length: devices }, (_, d) => ({
      name: d === 0 ? name : `${name}@dev${d}`,
      data: data.subarray(d * share + j * size, d * share + (j + 1) * size) as T,
    }));
  }

  /** The outputs of every data-parallel device in device order (one device: as is). */
  #outputs(name: string): string[] {
    return Array.from({ length: this.#outputDevices }, (_, d) => (d === 0 ? name : `${name}@dev${d}`));
  }

  /**
   * Outputs of K micro-steps (values[j][o], one per output device) back in global example order.
   * Each micro-step holds chunk j of every input device's share — as one tensor per device (data
   * placement) or one tensor with device 0's chunk first (hybrid) — and the global order is device 0's
   * chunks 0 … K−1, then device 1's.
   */
  #inExampleOrder(values: Float32Array[][]): Float32Array {
    const n = this.#devices;
    const parts = values.map((v) => {
      if (v.length === n) return v;
      const [whole] = v; // hybrid: one tensor of n equal chunks
      const size = whole.length / n;
      return Array.from({ length: n }, (_, d) => whole.subarray(d * size, (d + 1) * size));
    });
    return concat(Array.from({ length: n }, (_, d) => parts.map((p) => p[d])).flat());
  }

  /** The batch, kept on the host and written chunk by chunk by step(). */
  #images?: Float32Array;
  #labels?: Int32Array;

  writeBatch(images: Float32Array, labels: Int32Array): void {
    const want = this.plan.batch * elementCount(this.#rt.tensors.get(this.plan.inputs[0])!.shape.slice(1));
    if (images.length !== want)
      throw new DiagnosticError(
        diag(
          "AX4006",
          {
            file: "(input)",
            problem: `\`${this.plan.inputs[0]}\` needs ${want} values, got ${images.length}`,
          },
          undefined,
        ),
      );
    const bad = (problem: string) =>
      new DiagnosticError(diag("AX4006", { file: "(labels)", problem }, undefined));
    if (labels.length !== this.plan.batch) throw bad(`needs ${this.plan.batch} labels, got ${labels.length}`);
    const i = labels.findIndex((l) => !(l >= 0 && l < this.plan.classes));
    if (i >= 0) throw bad(`label ${labels[i]} of example ${i} is not a class in [0, ${this.plan.classes})`);
    // Copies, so the caller may reuse its arrays; a whole-batch plan writes them now.
    this.#images = images.slice();
    this.#labels = labels.slice();
    if (this.#microSteps === 1) this.#writeChunk(0);
  }

  #writeChunk(j: number) {
    for (const c of this.#chunks(this.plan.inputs[0], this.#images!, this.#devices, j))
      this.#rt.writeInput(c.name, c.data);
    const labels = this.#chunks(this.#training.labels, this.#labels!, this.#devices, j);
    if (this.#outputDevices === this.#devices)
      for (const c of labels) this.#rt.write(this.#rt.tensors.get(c.name)!, c.data);
    // hybrid: the head's labels are every device's chunk, device 0's first, on device 0
    else this.#rt.write(this.#rt.tensors.get(this.#training.labels)!, concat(labels.map((c) => c.data)));
  }

  async step(opts: { lr: number; seed: number; step?: number; timing?: boolean }): Promise<PlacedStepResult> {
    if (!Number.isFinite(opts.lr)) throw internal(`learning rate ${opts.lr} is not finite`);
    if (!this.#images) throw internal("step() needs writeBatch() first");
    const words = new Uint32Array(4);
    new Float32Array(words.buffer, 0, 1)[0] = opts.lr;
    words[1] = opts.seed >>> 0;
    words[2] = (opts.step ?? this.#stepCount) >>> 0;
    this.#stepCount = (opts.step ?? this.#stepCount) + 1;
    const n = this.#outputDevices;
    const k = this.#microSteps;
    // As on one device (trainer.ts): the update kernels fold each micro-step's gradient into the
    // momentum and apply the weights after the last; masks hash global examples, so they match.
    let loss = 0;
    const logits: Float32Array[][] = [];
    let kernels: PlacedStepResult["kernels"];
    const transfers: PlacedStepResult["transfers"] = [];
    for (let j = 0; j < k; j++) {
      words[3] = k === 1 ? 0 : ((j > 0 ? 1 : 0) | (j < k - 1 ? 2 : 0) | (j << 2)) >>> 0;
      this.#rt.write(this.#rt.tensors.get(this.#training.uniform)!, words);
      if (k > 1) this.#writeChunk(j);
      const run = await this.#rt.run(
        this.#train,
        k === 1 ? "training step" : `training step (micro-step ${j + 1} of ${k})`,
        [...this.#outputs(this.#training.loss), ...this.#outputs(this.plan.logits)],
        opts.timing ?? false,
      );
      // data placement: the batch-mean loss is the mean of the devices' means
      loss += run.values.slice(0, n).reduce((a, v) => a + v[0], 0) / n;
      logits.push(run.values.slice(n));
      transfers.push(...run.transfers);
      if (run.kernels) kernels = [...(kernels ?? []), ...run.kernels];
    }
    return {
      loss: loss / k,
      logits: this.#inExampleOrder(logits),
      ...(kernels ? { kernels } : {}),
      transfers,
    };
  }

  async evaluate(images: Float32Array): Promise<Float32Array> {
    const input = this.#training.evalInputs[this.plan.inputs[0]];
    const values: Float32Array[][] = [];
    for (let j = 0; j < this.#microSteps; j++) {
      for (const c of this.#chunks(input, images, this.#devices, j)) this.#rt.writeInput(c.name, c.data);
      values.push(
        (await this.#rt.run(this.#eval, "evaluation", this.#outputs(this.#training.evalLogits))).values,
      );
    }
    return this.#inExampleOrder(values);
  }

  readParams(): Promise<Map<string, Float32Array>> {
    return readTrainingState(this.#rt, this.#training, "params");
  }

  readVelocities(): Promise<Map<string, Float32Array>> {
    return readTrainingState(this.#rt, this.#training, "velocities");
  }

  readGradients(): Promise<Map<string, Float32Array>> {
    return readTrainingState(this.#rt, this.#training, "gradients");
  }

  async readTensor(name: string): Promise<Float32Array> {
    return (await this.#rt.readMany([name]))[0];
  }

  /** Whether tensors share device memory (a memory plan): then a step's temporaries are overwritten. */
  get sharesMemory(): boolean {
    return this.#rt.memory.some((m) => m?.shared);
  }

  /** Bytes of every tensor buffer or arena on every device. */
  get allocatedBytes(): number {
    return this.#rt.memory.reduce((a, m) => a + (m?.allocatedBytes ?? 0), 0);
  }

  async findNonFinite(): Promise<{ layer: string; kind: "activation" | "gradient" } | undefined> {
    // With shared memory later kernels overwrote the activations and gradients: no layer to name.
    if (this.sharesMemory) return undefined;
    const origin = this.plan.placement?.nodes ?? {};
    return firstNonFinite(this.#rt, this.#training, (layer) => origin[layer]?.layer ?? layer);
  }

  destroy(): void {
    this.#rt.destroy();
  }
}

/** Loads a placed training plan (lowerTrainingPlaced, lowerTrainingData, lowerTrainingHybrid) onto `devs` (plan device i on devs[i]). */
export async function createPlacedTrainer(
  devs: OpenDevice[],
  compiled: CompiledPlan,
): Promise<
  Omit<Trainer, "step"> & {
    step(opts: { lr: number; seed: number; step?: number; timing?: boolean }): Promise<PlacedStepResult>;
  }
> {
  const { plan } = compiled;
  if (plan.mode !== "train" || !plan.training)
    throw internal('createPlacedTrainer needs a plan from lowerTrainingPlaced (mode "train")');
  const rt = await PlacedRuntime.load(devs, compiled);
  try {
    return new PlacedTrainer(rt, plan.training);
  } catch (e) {
    rt.destroy();
    throw e;
  }
}
