// Runs a placed plan (compiler/lower-placed.ts) over several WebGPU devices: buffers, kernels and
// cross-device transfers per device, for the executor and trainer in runtime/placed.ts.
//
// Load once: one buffer per root tensor on its device — or, when the plan carries a memory plan
// (compiler/memory-bind.ts), each device's arenas with every root tensor at its planned offset
// (runtime/arenas.ts) — every pipeline of every device built in
// parallel, every bind group pre-created, and a double-buffered pair of MAP_READ staging buffers per
// direction (device → device), which the direction's transfers use alternately: while the host maps
// one and writes it to the peer, the producer can already copy the next tensor into the other; a
// transfer whose buffer still holds an earlier one lands that one first. A run walks the schedule once:
//  - a dispatch is encoded into its device's open compute pass;
//  - a transfer ends the producer device's pass, copies the tensor into its staging buffer in the
//    same encoder, submits the producer's work so far, and starts mapping the staging buffer; the
//    walk goes on encoding other work;
//  - the first dispatch that reads a peer still in flight first submits every device's open work (so
//    no device idles while the host waits), awaits the mapping, submits the reader device's earlier
//    work, and writes the bytes into the peer with queue.writeBuffer (queue-ordered before the rest).
// Every transfer's bytes and host time (producer submit → peer written) are recorded per run; with
// timing, every kernel also gets its own pass timed by its device's own timestamp query set (one
// per device, resolved after the walk and read back with the outputs). No
// atomics, fixed summation orders: runs are deterministic.
import { DiagnosticError, diag } from "../compiler/diagnostics.ts";
import { elementCount } from "../compiler/graph.ts";
import type {
  CompiledPlan,
  Plan,
  PlanKernel,
  PlanTensor,
  ScheduleStep,
  TransferStep,
} from "../compiler/plan.ts";
import type { OpenDevice } from "./devices.ts";
import { type TensorMemory, type TensorRange, allocateTensors, rangeOf } from "./arenas.ts";
import { buildKernelStep } from "./pipeline.ts";
import { type PlacedKernelTiming, placedTimestamps } from "./placed-timing.ts";
import { awaitOnDevice, encodeDispatches, encodeReadback } from "./submit.ts";

export type { PlacedKernelTiming } from "./placed-timing.ts";

/** One transfer of a run: what moved, where, how many bytes, and host time from submit to written. */
export interface TransferTiming {
  tensor: string;
  from: number;
  to: number;
  bytes: number;
  ms: number;
}

export type Built =
  | { kind: "dispatch"; kernel: PlanKernel; pipeline: GPUComputePipeline; bindGroup: GPUBindGroup }
  | { kind: "transfer"; step: TransferStep; source: TensorRange; peer: TensorRange; staging: GPUBuffer };

const align4 = (n: number) => Math.max(4, Math.ceil(n / 4) * 4);
export const internal = (message: string) => new DiagnosticError(diag("AX9001", { message }, undefined));

/** Buffers, pipelines and the schedule walk shared by the placed executor and trainer. */
export class PlacedRuntime {
  readonly plan: Plan;
  readonly devs: OpenDevice[];
  readonly tensors: Map<string, PlanTensor>;
  /** Per device: its tensors' ranges (runtime/arenas.ts). */
  readonly memory: TensorMemory[] = [];
  readonly staging: GPUBuffer[] = [];
  /** Host-written tensor → its replicas on other devices. */
  readonly replicas = new Map<string, PlanTensor[]>();

  constructor(devs: OpenDevice[], plan: Plan) {
    this.devs = devs;
    this.plan = plan;
    this.tensors = new Map(plan.tensors.map((t) => [t.name, t]));
    for (const t of plan.tensors) {
      if (t.replicaOf) this.replicas.set(t.replicaOf, [...(this.replicas.get(t.replicaOf) ?? []), t]);
    }
  }

  static async load(devs: OpenDevice[], compiled: CompiledPlan): Promise<PlacedRuntime> {
    const { plan, wgsl } = compiled;
    if (devs.length < plan.devices.length)
      throw internal(`the plan is placed over ${plan.devices.length} devices, ${devs.length} given`);
    const rt = new PlacedRuntime(devs, plan);
    const ooms = devs.map((d) => {
      d.device.pushErrorScope("out-of-memory");
      return d;
    });
    for (const d of plan.devices) rt.memory[d.index] = allocateTensors(rt.dev(d.index), plan);
    const oomErrors = ooms.map((d) => d.device.popErrorScope());
    try {
      const kernels = await Promise.all(plan.kernels.map((k) => rt.#build(k, wgsl[k.name])));
      const failed = (await Promise.all(oomErrors)).findIndex((e) => e);
      if (failed >= 0)
        throw new DiagnosticError(
          diag(
            "AX4002",
            { device: devs[failed].label, kernel: "(allocation)", layer: "(the placed plan)" },
            undefined,
          ),
        );
      rt.#kernels = new Map(kernels.map((s) => [s.kernel.name, s]));
      return rt;
    } catch (e) {
      rt.destroy();
      throw e;
    }
  }

  #kernels = new Map<string, Built & { kind: "dispatch" }>();

  dev(index: number): OpenDevice {
    const d = this.devs[index];
    if (!d) throw internal(`the plan names device ${index}, which was not opened`);
    return d;
  }

  /**
   * Staging buffers per direction (`from->to`): a pair, each as large as the direction's largest
   * transfer in any of the plan's schedules. Transfers of one direction alternate between the two, so
   * one can be copied into on the producer while the other is mapped and written to the peer.
   */
  #pairs = new Map<string, GPUBuffer[]>();

  #pair(from: number, to: number): GPUBuffer[] {
    const key = `${from}->${to}`;
    let pair = this.#pairs.get(key);
    if (!pair) {
      const schedules = [this.plan.schedule, this.plan.training?.evalSchedule ?? []];
      const largest = Math.max(
        ...schedules
          .flat()
          .map((s) => (s.kind === "transfer" && s.from === from && s.to === to ? s.bytes : 0)),
      );
      pair = [0, 1].map((i) =>
        this.dev(from).device.createBuffer({
          label: `staging ${i} for transfers device ${from} → device ${to}`,
          size: align4(Math.max(largest, 4)),
          usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
        }),
      );
      this.staging.push(...pair);
      this.#pairs.set(key, pair);
    }
    return pair;
  }

  /** The built steps of a schedule; a direction's transfers alternate between its staging pair. */
  steps(schedule: readonly ScheduleStep[]): Built[] {
    const used = new Map<string, number>();
    return schedule.map((s): Built => {
      if (s.kind === "dispatch") {
        const k = this.#kernels.get(s.kernel);
        if (!k) throw internal(`a schedule names kernel \`${s.kernel}\`, which the plan does not have`);
        return k;
      }
      const key = `${s.from}->${s.to}`;
      const i = used.get(key) ?? 0;
      used.set(key, i + 1);
      const staging = this.#pair(s.from, s.to)[i % 2];
      return { kind: "transfer", step: s, source: this.range(s.tensor), peer: this.range(s.peer), staging };
    });
  }

  /** The bytes of tensor `name`: its root's range, or a view's part of it. */
  range(name: string): TensorRange {
    const t = this.tensors.get(name);
    const memory = this.memory[this.tensors.get(this.root(name))?.device ?? -1];
    const r = t && memory && rangeOf(memory, t);
    if (!r) throw internal(`tensor \`${name}\` has no buffer`);
    return r;
  }

  /** The root tensor holding `name`'s bytes. */
  root(name: string): string {
    return this.tensors.get(name)?.aliasOf ?? name;
  }

  async #build(kernel: PlanKernel, code: string | undefined): Promise<Built & { kind: "dispatch" }> {
    // A binding must resolve to a buffer on the kernel's own device: cross-device reads go through
    // transfer steps, never through a foreign buffer.
    const step = await buildKernelStep(this.dev(kernel.device), kernel, code, (tensor) => {
      const root = this.tensors.get(tensor)?.aliasOf ?? tensor;
      return this.tensors.get(root)?.device === kernel.device ? this.range(tensor) : undefined;
    });
    return { kind: "dispatch", ...step };
  }

  /** Writes a host tensor (and its replicas on the other devices). */
  write(t: PlanTensor, data: Float32Array | Int32Array | Uint32Array) {
    for (const x of [t, ...(this.replicas.get(t.name) ?? [])]) {
      const r = this.range(x.name);
      this.dev(x.device).device.queue.writeBuffer(
        r.buffer,
        r.offset,
        data.buffer,
        data.byteOffset,
        data.byteLength,
      );
    }
  }

  /** The tensors holding `name`: itself, or the parts (`partOf`, possibly on several devices). */
  partsOf(name: string): PlanTensor[] {
    const whole = this.tensors.get(name);
    if (whole) return [whole];
    const parts = this.plan.tensors.filter((t) => t.partOf?.tensor === name);
    if (parts.length === 0) throw internal(`no tensor \`${name}\` in the plan`);
    return parts;
  }

  /** Checks an input's size and writes it everywhere it is replicated (AX4006 on a wrong one). */
  writeInput(name: string, data: Float32Array, file = "(input)") {
    const t = this.tensors.get(name);
    if (!t || t.role !== "input")
      throw new DiagnosticError(
        diag("AX4006", { file, problem: `the network has no input \`${name}\`` }, undefined),
      );
    const want = elementCount(t.shape);
    if (data.length !== want)
      throw new DiagnosticError(
        diag(
          "AX4006",
          { file, problem: `\`${name}\` needs ${want} values ([${t.shape.join(", ")}]), got ${data.length}` },
          undefined,
        ),
      );
    this.write(t, data);
  }

  /** Walks `steps` (see the file comment), then reads `outputs` back. */
  async run(
    steps: Built[],
    what: string,
    outputs: string[],
    timing = false,
  ): Promise<{ values: Float32Array[]; transfers: TransferTiming[]; kernels?: PlacedKernelTiming[] }> {
    const n = this.devs.length;
    const kernels = steps.flatMap((s) => (s.kind === "dispatch" ? [s.kernel] : []));
    const clock = placedTimestamps(this.devs, kernels, what, timing);
    const span = `(the ${what})`;
    const errorsBefore = this.devs.map((d) => d.errors.length);
    for (const d of this.devs) {
      d.activity = { kernel: span, layer: span };
      d.device.pushErrorScope("out-of-memory");
      d.device.pushErrorScope("validation");
    }
    const encoders: (GPUCommandEncoder | undefined)[] = new Array(n).fill(undefined);
    const passes: (GPUComputePassEncoder | undefined)[] = new Array(n).fill(undefined);
    const encoder = (d: number) =>
      (encoders[d] ??= this.devs[d].device.createCommandEncoder({ label: what }));
    const endPass = (d: number) => {
      passes[d]?.end();
      passes[d] = undefined;
    };
    const submit = (d: number) => {
      endPass(d);
      const e = encoders[d];
      if (e) this.devs[d].device.queue.submit([e.finish()]);
      encoders[d] = undefined;
    };
    const transfers: TransferTiming[] = [];
    // Peer root tensor → the pending transfer that fills it. Keyed by tensor, not buffer: with a
    // memory plan many tensors share an arena, and only a reader of this one must wait. A tensor
    // sharing the peer's bytes has a lifetime disjoint from it (compiler/memory.ts), so it is either
    // done before the transfer (its work submitted before the landing's write) or starts after the
    // peer's last reader, which lands the peer first.
    const inFlight = new Map<
      string,
      { built: Built & { kind: "transfer" }; mapped: Promise<void>; t0: number }
    >();
    /** Staging buffer → the peer its pending transfer fills (a staging buffer carries one at a time). */
    const stagingBusy = new Map<GPUBuffer, string>();
    const land = async (peer: string) => {
      const pending = inFlight.get(peer)!;
      inFlight.delete(peer);
      stagingBusy.delete(pending.built.staging);
      for (let d = 0; d < n; d++) submit(d); // keep every device busy while the host waits
      await this.#guard(pending.mapped, pending.built.step.from);
      const { step, staging } = pending.built;
      const { buffer, offset } = pending.built.peer;
      this.devs[step.to].device.queue.writeBuffer(
        buffer,
        offset,
        staging.getMappedRange(0, align4(step.bytes)),
      );
      staging.unmap();
      transfers.push({
        tensor: step.tensor,
        from: step.from,
        to: step.to,
        bytes: step.bytes,
        ms: performance.now() - pending.t0,
      });
    };

    for (const s of steps) {
      if (s.kind === "dispatch") {
        const d = s.kernel.device;
        for (const b of s.kernel.bindings) {
          const root = this.root(b.tensor);
          if (inFlight.has(root)) await land(root);
        }
        // Timed devices run every kernel in a pass of its own, so no shared pass is open there.
        const own = clock.timedPass(encoder(d), s.kernel);
        const pass = own ?? (passes[d] ??= encoder(d).beginComputePass({ label: what }));
        encodeDispatches(pass, [s]);
        own?.end();
        continue;
      }
      const { from } = s.step;
      const peer = this.root(s.step.peer);
      if (inFlight.has(peer)) await land(peer); // an older version not read yet: land it anyway
      // the direction's other staging buffer may be in use; this one must have landed first
      const holder = stagingBusy.get(s.staging);
      if (holder) await land(holder);
      stagingBusy.set(s.staging, peer);
      endPass(from);
      encoder(from).copyBufferToBuffer(s.source.buffer, s.source.offset, s.staging, 0, align4(s.step.bytes));
      const t0 = performance.now();
      submit(from);
      inFlight.set(peer, { built: s, mapped: s.staging.mapAsync(GPUMapMode.READ), t0 });
    }
    for (const peer of [...inFlight.keys()]) await land(peer);

    const reads = outputs.map((o) => {
      const t = this.tensors.get(o)!;
      endPass(t.device);
      return this.#encodeReadback(encoder(t.device), t);
    });
    for (let d = 0; d < n; d++) {
      if (!clock.has(d)) continue;
      endPass(d);
      clock.encodeResolve(d, encoder(d));
    }
    for (let d = 0; d < n; d++) submit(d);
    const failures: DiagnosticError[] = [];
    for (const [d, dev] of this.devs.entries()) {
      const validation = await dev.device.popErrorScope();
      const oom = await dev.device.popErrorScope();
      if (validation)
        failures.push(
          new DiagnosticError(
            diag("AX4001", { kernel: span, layer: span, message: validation.message }, undefined),
          ),
        );
      if (oom)
        failures.push(
          new DiagnosticError(
            diag("AX4002", { device: this.devs[d].label, kernel: span, layer: span }, undefined),
          ),
        );
    }
    if (failures.length > 0) throw failures[0];
    const values = await Promise.all(reads.map((r) => r()));
    const times = await clock.read();
    for (const [d, dev] of this.devs.entries()) {
      if (dev.errors.length > errorsBefore[d]) throw new DiagnosticError(dev.errors.slice(errorsBefore[d]));
      dev.activity = { kernel: "(none)", layer: "(none)" };
    }
    return { values, transfers, ...(times ? { kernels: times } : {}) };
  }

  /** Reads tensors (split ones reassembled from their parts, wherever they live). */
  async readMany(names: string[]): Promise<Float32Array[]> {
    const encoders = new Map<number, GPUCommandEncoder>();
    const enc = (d: number) => {
      let e = encoders.get(d);
      if (!e) encoders.set(d, (e = this.dev(d).device.createCommandEncoder({ label: "read tensors" })));
      return e;
    };
    const pending = names.map((name) => {
      const parts = this.partsOf(name);
      const total = parts.reduce((a, t) => a + elementCount(t.shape), 0);
      return {
        total,
        reads: parts.map((t) => ({
          offset: t.partOf?.offset ?? 0,
          read: this.#encodeReadback(enc(t.device), t),
        })),
      };
    });
    for (const [d, e] of encoders) this.dev(d).device.queue.submit([e.finish()]);
    return Promise.all(
      pending.map(async ({ total, reads }) => {
        const out = new Float32Array(total);
        for (const { offset, read } of reads) out.set(await read(), offset);
        return out;
      }),
    );
  }

  #encodeReadback(encoder: GPUCommandEncoder, t: PlanTensor): () => Promise<Float32Array> {
    return encodeReadback(this.dev(t.device), encoder, this.range(t.name), t);
  }

  #guard<T>(work: Promise<T>, device: number): Promise<T> {
    return awaitOnDevice(this.dev(device), work);
  }

  destroy() {
    for (const b of [...this.memory.flatMap((m) => m?.buffers ?? []), ...this.staging]) b.destroy();
    this.memory.length = 0;
    this.staging.length = 0;
  }
}
