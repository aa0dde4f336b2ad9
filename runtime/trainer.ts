// Runs a training plan (compiler/lower-train.ts, mode "train") on one WebGPU device.
//
// Load once: one buffer per root tensor (zero-filled by WebGPU, so velocities start at 0), every
// pipeline of both schedules built in parallel, every bind group pre-created. A step writes the
// uniform (lr, seed, step), encodes the whole training schedule into one compute pass, copies the loss
// and logits out, and submits once. Every kernel sums in a fixed order and nothing uses atomics, so the
// same parameters, velocities, batch, lr and seed give bitwise the same results run to run; the step
// counter in the uniform enters no arithmetic, so a resumed trainer continues bitwise identically.
// A micro-batched plan (plan.microBatch, see compiler/lower-train.ts) keeps the batch on the host and
// runs the schedule once per chunk, one submit each; the loss is the mean of the chunks' losses and
// the logits their concatenation, so callers see the whole batch either way.
//
// Tensor names (see compiler/autodiff.ts): `X` a forward activation in training mode, `grad:X` its
// gradient, `grad:P` / `velocity:P` a parameter's, `eval:X` the inference copy, `N:probs`,
// `N:per_example`, `N:batch_mean`, `N:batch_invstd` statistics. Errors are DiagnosticErrors naming
// the kernel and layer, as in runtime/executor.ts.
import { DiagnosticError, diag } from "../compiler/diagnostics.ts";
import { elementCount } from "../compiler/graph.ts";
import type { CompiledPlan, Plan, PlanTensor, PlanTraining, ScheduleStep } from "../compiler/plan.ts";
import type { OpenDevice } from "./devices.ts";
import { buildKernelStep, type KernelStep } from "./pipeline.ts";
import { type TensorMemory, allocateTensors, rangeOf } from "./arenas.ts";
import { concat } from "./concat.ts";
import { type TensorAccess, firstNonFinite, readTrainingState, uploadByParam } from "./param-io.ts";
import { awaitOnDevice, encodeReadback, encodeSchedule, findRejectedKernel } from "./submit.ts";

export interface StepResult {
  /** The batch-mean loss of this step's forward pass (before the update). */
  loss: number;
  /** The training-mode logits, [batch, classes]. */
  logits: Float32Array;
  /** GPU time per kernel in schedule order, when `timing` was asked for and the device has timestamps. */
  kernels?: { kernel: string; layer: string; ms: number }[];
}

export interface Trainer {
  readonly plan: Plan;
  uploadParams(params: ReadonlyMap<string, Float32Array>): void;
  uploadVelocities(v: ReadonlyMap<string, Float32Array>): void;
  writeBatch(images: Float32Array, labels: Int32Array): void;
  /** One step: forward (training mode) + loss + backward + update, one submit. `step` sets the uniform's counter. */
  step(opts: { lr: number; seed: number; step?: number; timing?: boolean }): Promise<StepResult>;
  evaluate(images: Float32Array): Promise<Float32Array>;
  readParams(): Promise<Map<string, Float32Array>>;
  readVelocities(): Promise<Map<string, Float32Array>>;
  readGradients(): Promise<Map<string, Float32Array>>;
  readTensor(name: string): Promise<Float32Array>;
  /**
   * The first layer (activations in forward order, then gradients backwards) holding a NaN/Inf after
   * the last step. Undefined when none does — or when the plan shares memory between tensors (a
   * memory plan), whose temporaries the step overwrote: see `sharesMemory`.
   */
  findNonFinite(): Promise<{ layer: string; kind: "activation" | "gradient" } | undefined>;
  /** Whether tensors share memory (a memory plan): then only parameters, optimizer state and the
   * step's inputs and outputs are readable after a step. */
  readonly sharesMemory?: boolean;
  /** Bytes of device memory the trainer's tensors take. */
  readonly allocatedBytes?: number;
  destroy(): void;
}

type Step = KernelStep;

/** Concatenates the micro-steps' outputs (the one array itself when there is one). */
/** Per-kernel GPU times summed over micro-steps. */
function sumTimes(total: StepResult["kernels"], next: StepResult["kernels"]): StepResult["kernels"] {
  if (!total || !next) return next ?? total;
  return total.map((t, i) => ({ ...t, ms: t.ms + next[i].ms }));
}

const internal = (message: string) => new DiagnosticError(diag("AX9001", { message }, undefined));

export async function createTrainer(dev: OpenDevice, compiled: CompiledPlan): Promise<Trainer> {
  const { plan, wgsl } = compiled;
  const training = plan.training;
  if (plan.mode !== "train" || !training)
    throw internal('createTrainer needs a plan from lowerTraining (mode "train")');
  const { device } = dev;
  device.pushErrorScope("out-of-memory");
  // One buffer per tensor, or the memory plan's arenas (runtime/arenas.ts)
  const memory = allocateTensors(dev, plan);
  const oom = device.popErrorScope();
  const kernels = new Map(plan.kernels.map((k) => [k.name, k]));
  const tensorsByName = new Map(plan.tensors.map((t) => [t.name, t]));
  try {
    const built = await Promise.all(
      plan.kernels.map((k) =>
        buildKernelStep(dev, k, wgsl[k.name], (t) => {
          const tensor = tensorsByName.get(t);
          return tensor && rangeOf(memory, tensor);
        }),
      ),
    );
    if (await oom)
      throw new DiagnosticError(
        diag(
          "AX4002",
          { device: dev.label, kernel: "(allocation)", layer: "(the training plan)" },
          undefined,
        ),
      );
    const byName = new Map(built.map((s) => [s.kernel.name, s]));
    const pick = (steps: ScheduleStep[]) =>
      steps.flatMap((s) => (s.kind === "dispatch" ? [byName.get(s.kernel)!] : []));
    for (const s of [...plan.schedule, ...training.evalSchedule]) {
      if (s.kind !== "dispatch")
        throw internal("createTrainer runs one device: a placed plan needs createPlacedTrainer");
      if (!kernels.has(s.kernel)) throw internal("a schedule names a kernel the plan does not have");
    }
    return new PlanTrainer(dev, plan, training, memory, pick(plan.schedule), pick(training.evalSchedule));
  } catch (e) {
    for (const b of memory.buffers) b.destroy();
    throw e;
  }
}

class PlanTrainer implements Trainer {
  readonly plan: Plan;
  readonly #dev: OpenDevice;
  readonly #training: PlanTraining;
  readonly #memory: TensorMemory;
  readonly #tensors: Map<string, PlanTensor>;
  readonly #train: Step[];
  readonly #eval: Step[];
  readonly #io: TensorAccess;
  #stepCount = 0;
  /** Micro-batched plans: the whole batch, kept on the host and written chunk by chunk. */
  #images?: Float32Array;
  #labels?: Int32Array;

  constructor(
    dev: OpenDevice,
    plan: Plan,
    training: PlanTraining,
    memory: TensorMemory,
    train: Step[],
    evalSteps: Step[],
  ) {
    this.#dev = dev;
    this.plan = plan;
    this.#training = training;
    this.#memory = memory;
    this.#tensors = new Map(plan.tensors.map((t) => [t.name, t]));
    this.#train = train;
    this.#eval = evalSteps;
    this.#io = {
      plan,
      partsOf: (name) => this.#partsOf(name),
      write: (t, data) => this.#write(t, data),
      readMany: (names) => this.#readMany(names),
    };
  }

  uploadParams(params: ReadonlyMap<string, Float32Array>): void {
    uploadByParam(
      this.#io,
      params,
      (p) => p,
      "(parameters)",
      this.plan.params.map((p) => p.name),
    );
  }

  uploadVelocities(v: ReadonlyMap<string, Float32Array>): void {
    const velocities = this.#training.velocities;
    uploadByParam(this.#io, v, (p) => velocities[p], "(velocities)", Object.keys(velocities));
  }

  writeBatch(images: Float32Array, labels: Int32Array): void {
    const [input] = this.plan.inputs;
    this.#checkInput(input, images);
    const t = this.#tensors.get(this.#training.labels)!;
    const bad = (problem: string) =>
      new DiagnosticError(diag("AX4006", { file: "(labels)", problem }, undefined));
    if (labels.length !== this.plan.batch) throw bad(`needs ${this.plan.batch} labels, got ${labels.length}`);
    const i = labels.findIndex((l) => !(l >= 0 && l < this.plan.classes));
    if (i >= 0) throw bad(`label ${labels[i]} of example ${i} is not a class in [0, ${this.plan.classes})`);
    if (this.#microSteps > 1) {
      // Written chunk by chunk by step(); copies, so the caller may reuse its arrays.
      this.#images = images.slice();
      this.#labels = labels.slice();
      return;
    }
    this.#write(this.#tensors.get(input)!, images);
    this.#write(t, labels);
  }

  /** Runs of the schedule per step / evaluation: 1 unless the plan is micro-batched. */
  get #microSteps(): number {
    return this.plan.batch / (this.plan.microBatch ?? this.plan.batch);
  }

  /** Throws AX4006 unless `data` holds the whole batch of input `name` (the micro-batch × micro-steps). */
  #checkInput(name: string, data: Float32Array) {
    const t = this.#tensors.get(name)!;
    const shape = [this.plan.batch, ...t.shape.slice(1)];
    const want = elementCount(shape);
    if (data.length !== want)
      throw new DiagnosticError(
        diag(
          "AX4006",
          {
            file: "(input)",
            problem: `\`${name}\` needs ${want} values ([${shape.join(", ")}]), got ${data.length}`,
          },
          undefined,
        ),
      );
  }

  #write(t: PlanTensor, data: Float32Array | Int32Array | Uint32Array) {
    const range = rangeOf(this.#memory, t);
    if (!range) throw internal(`tensor \`${t.name}\` has no buffer on ${this.#dev.label}`);
    this.#dev.device.queue.writeBuffer(
      range.buffer,
      range.offset,
      data.buffer,
      data.byteOffset,
      data.byteLength,
    );
  }

  async step(opts: { lr: number; seed: number; step?: number; timing?: boolean }): Promise<StepResult> {
    if (!Number.isFinite(opts.lr)) throw internal(`learning rate ${opts.lr} is not finite`);
    const words = new Uint32Array(4);
    new Float32Array(words.buffer, 0, 1)[0] = opts.lr;
    words[2] = (opts.step ?? this.#stepCount) >>> 0;
    this.#stepCount = (opts.step ?? this.#stepCount) + 1;
    const timing = (opts.timing ?? false) && this.#dev.timestamps && this.#train.length <= 2048;
    const k = this.#microSteps;
    if (k > 1 && (!this.#images || !this.#labels))
      throw internal("step() on a micro-batched plan needs writeBatch() first");
    // A micro-batched plan runs the schedule once per chunk of the batch (see plan.ts `microBatch`):
    // the update kernels accumulate into the momentum and apply the weights after the last chunk.
    // Every chunk uses the step's dropout seed: the mask hash indexes the global example, which the
    // kernels get from the micro-step index in the `micro` word (bits 2…), so masks match one batch.
    let loss = 0;
    const logits: Float32Array[] = [];
    let kernels: StepResult["kernels"];
    for (let j = 0; j < k; j++) {
      words[1] = opts.seed >>> 0;
      words[3] = k === 1 ? 0 : ((j > 0 ? 1 : 0) | (j < k - 1 ? 2 : 0) | (j << 2)) >>> 0;
      this.#write(this.#tensors.get(this.#training.uniform)!, words);
      if (k > 1) this.#writeChunk(j);
      const run = await this.#run(
        this.#train,
        "training step",
        [this.#training.loss, this.plan.logits],
        timing,
      );
      loss += run.values[0][0];
      logits.push(run.values[1]);
      kernels = sumTimes(kernels, run.kernels);
    }
    return { loss: loss / k, logits: concat(logits), ...(kernels ? { kernels } : {}) };
  }

  /** Writes chunk `j` of the host-held batch into the (micro-batch-sized) input and labels tensors. */
  #writeChunk(j: number) {
    const b = this.plan.microBatch!;
    const input = this.#tensors.get(this.plan.inputs[0])!;
    const per = elementCount(input.shape) / b;
    this.#write(input, this.#images!.subarray(j * b * per, (j + 1) * b * per));
    this.#write(this.#tensors.get(this.#training.labels)!, this.#labels!.subarray(j * b, (j + 1) * b));
  }

  async evaluate(images: Float32Array): Promise<Float32Array> {
    const name = this.#training.evalInputs[this.plan.inputs[0]];
    this.#checkInput(name, images);
    const t = this.#tensors.get(name)!;
    const k = this.#microSteps;
    const per = elementCount(t.shape);
    const out: Float32Array[] = [];
    for (let j = 0; j < k; j++) {
      this.#write(t, k === 1 ? images : images.subarray(j * per, (j + 1) * per));
      const { values } = await this.#run(this.#eval, "evaluation", [this.#training.evalLogits], false);
      out.push(values[0]);
    }
    return concat(out);
  }

  /** Encodes `steps` in one pass, copies `outputs` out in the same submission, and reads them. */
  async #run(
    steps: Step[],
    what: string,
    outputs: string[],
    timing: boolean,
  ): Promise<{ values: Float32Array[]; kernels?: StepResult["kernels"] }> {
    const { device } = this.#dev;
    const span =
      steps.length > 0 ? `${steps[0].kernel.name} … ${steps[steps.length - 1].kernel.name}` : "(no kernels)";
    this.#dev.activity = { kernel: span, layer: `(the ${what})` };
    const errorsBefore = this.#dev.errors.length;
    device.pushErrorScope("out-of-memory");
    device.pushErrorScope("validation");
    const encoder = device.createCommandEncoder({ label: what });
    const readTimes = encodeSchedule(this.#dev, encoder, steps, what, timing);
    const reads = outputs.map((o) => this.#encodeReadback(encoder, this.#tensors.get(o)!));
    device.queue.submit([encoder.finish()]);
    const validation = await device.popErrorScope();
    const oom = await device.popErrorScope();
    if (validation) throw await findRejectedKernel(this.#dev, steps, validation.message, what);
    if (oom)
      throw new DiagnosticError(
        diag("AX4002", { device: this.#dev.label, kernel: span, layer: `(the ${what})` }, undefined),
      );
    const values = await awaitOnDevice(this.#dev, Promise.all(reads.map((r) => r())));
    const kernels = readTimes ? await readTimes() : undefined;
    if (this.#dev.errors.length > errorsBefore)
      throw new DiagnosticError(this.#dev.errors.slice(errorsBefore));
    this.#dev.activity = { kernel: "(none)", layer: "(none)" };
    return { values, kernels };
  }

  /** The parameter tensors of `name` (itself, or its `partOf` parts). */
  #partsOf(name: string): PlanTensor[] {
    const whole = this.#tensors.get(name);
    if (whole) return [whole];
    const parts = this.plan.tensors.filter((t) => t.partOf?.tensor === name);
    if (parts.length === 0) throw internal(`no tensor \`${name}\` in the plan`);
    return parts;
  }

  async readTensor(name: string): Promise<Float32Array> {
    const [values] = await this.#readMany([name]);
    return values;
  }

  /** Reads several tensors in one submission (split ones reassembled from their parts). */
  async #readMany(names: string[]): Promise<Float32Array[]> {
    const encoder = this.#dev.device.createCommandEncoder({ label: "read tensors" });
    const pending = names.map((name) => {
      const parts = this.#partsOf(name);
      const total = parts.reduce((a, t) => a + elementCount(t.shape), 0);
      return {
        total,
        reads: parts.map((t) => ({ offset: t.partOf?.offset ?? 0, read: this.#encodeReadback(encoder, t) })),
      };
    });
    this.#dev.device.queue.submit([encoder.finish()]);
    return awaitOnDevice(
      this.#dev,
      Promise.all(
        pending.map(async ({ total, reads }) => {
          const out = new Float32Array(total);
          for (const { offset, read } of reads) out.set(await read(), offset);
          return out;
        }),
      ),
    );
  }

  readParams(): Promise<Map<string, Float32Array>> {
    return readTrainingState(this.#io, this.#training, "params");
  }

  readVelocities(): Promise<Map<string, Float32Array>> {
    return readTrainingState(this.#io, this.#training, "velocities");
  }

  readGradients(): Promise<Map<string, Float32Array>> {
    return readTrainingState(this.#io, this.#training, "gradients");
  }

  get sharesMemory(): boolean {
    return this.#memory.shared;
  }

  get allocatedBytes(): number {
    return this.#memory.allocatedBytes;
  }

  async findNonFinite(): Promise<{ layer: string; kind: "activation" | "gradient" } | undefined> {
    // With shared memory the activations and gradients were overwritten by later kernels: scanning
    // them would blame the wrong layer, so say nothing rather than something wrong.
    if (this.#memory.shared) return undefined;
    return firstNonFinite(this.#io, this.#training);
  }

  destroy(): void {
    for (const b of this.#memory.buffers) b.destroy();
    this.#memory.buffers.length = 0;
  }

  #encodeReadback(encoder: GPUCommandEncoder, t: PlanTensor): () => Promise<Float32Array> {
    const source = rangeOf(this.#memory, t);
    if (!source) throw internal(`tensor \`${t.name}\` has no buffer on ${this.#dev.label}`);
    return encodeReadback(this.#dev, encoder, source, t);
  }
}
