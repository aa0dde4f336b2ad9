// Decodes and augments ImageNet-style batches on worker threads, ahead of the training step.
//
// Shape of the work: one job per batch, given to an idle worker (loader-worker.ts), which allocates
// the batch's arrays, decodes `lanes` images at a time (sharp runs them on libuv's threadpool),
// writes each network input at its slot and transfers the arrays' buffers back. So:
//   - no pixel is copied between threads, and the consumer gets plain ArrayBuffer-backed arrays.
//     (Shared memory would let several workers fill one batch, but the trainer and executor hand
//     `array.buffer` to Dawn's writeBuffer, which rejects a SharedArrayBuffer; a batch per worker
//     needs neither sharing nor a copy);
//   - the bytes of a slot are a pure function of (file, view, shift, mean), whichever worker wrote
//     it and whenever: batches are bitwise identical for any worker count and timing;
//   - batches come out in request order, at most `prefetch` of them prepared ahead of the consumer;
//     with W workers, W batches are in preparation at once only if prefetch ≥ W.
//
// A file that fails to decode now (it changed after the statistics scan found it good) does not
// stop training: its slot gets a copy of the next slot of the same batch that decoded (cyclically),
// with that example's label, and the file is reported in the batch's `failed` with libvips'
// message. Any other failure — a worker that crashes or exits, a bad request — rejects the pending
// batches with a message naming it and breaks the loader: it never hangs.
//
// Threads: libuv's threadpool is process-wide (UV_THREADPOOL_SIZE, default 4), shared by every
// worker thread, so workers do not add decode threads; they add JavaScript threads, each starting
// decodes, awaiting the chain of pool operations per file (read, header, decode) and doing the
// crop/mean arithmetic (~0.3 ms per 224² input). Measured by bench/loader.ts on a 2-core EPYC that
// was also running a training job (so: shares of a contended CPU, not a quiet machine's figures),
// 512 generated 500×375 JPEGs of 104 KiB, batches of 128: every configuration costs the same
// ~9.7 CPU ms per image (decodeImage alone ~7.5, at one libvips thread per image); 1 worker gave
// ~105 images/s, 2 workers ~145 (×1.4); UV_THREADPOOL_SIZE=2 was slower (103 and 126). Presumably a
// second worker keeps the pool fed while the first waits to be scheduled; beyond the core count workers
// can only add contention. bench/loader.ts prints this table for the machine at hand.
//
// sharp and worker_threads: sharp's docs (and lovell/sharp#2263) say to load sharp on the main
// thread before any worker does, so glibc never unloads libvips when the last worker using it
// exits (a later worker then fails to re-register libvips' GObject types). We do, below. With
// sharp 0.35.5 on Node 24 we could not reproduce a crash either way — 20 rounds of terminating two
// workers in the middle of decodes, with and without sharp on the main thread — so close() simply
// terminates its workers.
import "sharp";
import { Worker } from "node:worker_threads";
import { checkMean, type MeanSpec, type Rgb } from "./augment.ts";
import type { WorkerInit, WorkerJob, WorkerReply } from "./loader-worker.ts";
import type { ExampleRequest, ImageEntry, SkippedFile, View } from "./types.ts";

export interface LoaderOptions {
  /** The folder's root (FolderIndex.root); request paths are relative to it. */
  root: string;
  /** Decoded square size (the paper's 256). */
  size: number;
  /** Network input size (224 for models/alexnet.net). */
  crop: number;
  mean: MeanSpec;
  /** Worker threads, ≥ 1; each prepares one batch at a time. */
  workers: number;
  /** Batches prepared ahead of the consumer, ≥ 1: with the one it holds, prefetch + 1 in memory. */
  prefetch: number;
  /** Images of a batch in flight in its worker (default 4, libuv's default threadpool size). */
  lanes?: number;
}

/** A failure substituted in a batch: the file, libvips' message, and which slot replaced it. */
export interface FailedSlot extends SkippedFile {
  /** The slot that held the file. */
  slot: number;
  /** The slot whose example (input and label) now fills it; −1 when no slot of the batch decoded. */
  from: number;
}

export interface TrainBatch {
  /** N × 3 × crop × crop; the consumer owns it. */
  images: Float32Array;
  labels: Int32Array;
  failed: FailedSlot[];
}

export interface EvalBatch {
  /** One N × 3 × crop × crop array per view, in the order of the views given. */
  views: Float32Array[];
  labels: Int32Array;
  /** Substituted like training: leave these slots out when counting accuracy. */
  failed: FailedSlot[];
}

interface Finished {
  outputs: Float32Array[];
  labels: Int32Array;
  failed: FailedSlot[];
}

/** One batch, from request to settlement. */
interface BatchRun {
  job: WorkerJob;
  labels: Int32Array;
  settled: boolean;
  resolve: (reply: { outputs: Float32Array[]; errors: (string | null)[] }) => void;
  reject: (error: Error) => void;
}

interface Thread {
  index: number;
  worker: Worker;
  current?: BatchRun;
}

export class ImageLoader {
  readonly options: Readonly<LoaderOptions>;
  readonly #threads: Thread[];
  readonly #queue: BatchRun[] = [];
  #nextId = 0;
  #failure: Error | undefined;
  #closed = false;

  private constructor(options: LoaderOptions, threads: Thread[]) {
    this.options = options;
    this.#threads = threads;
  }

  /** Starts the workers; resolves once each has loaded sharp and is ready. */
  static async open(options: LoaderOptions): Promise<ImageLoader> {
    const { size, crop, workers, prefetch, lanes = 4 } = options;
    if (!Number.isInteger(size) || !Number.isInteger(crop) || crop < 1 || crop > size)
      throw new RangeError(`need integers 1 ≤ crop ≤ size, got crop ${crop}, size ${size}`);
    for (const [name, value] of Object.entries({ workers, prefetch, lanes }))
      if (!Number.isInteger(value) || value < 1)
        throw new RangeError(`${name} must be an integer ≥ 1, got ${value}`);
    checkMean(options.mean, size);
    // One shared copy of the mean image for all workers (workerData would clone it per worker).
    let mean = options.mean;
    if (mean.image !== undefined) {
      const shared = new Float32Array(new SharedArrayBuffer(mean.image.byteLength));
      shared.set(mean.image);
      mean = { ...mean, image: shared };
    }
    const init: WorkerInit = { root: options.root, size, crop, mean, lanes };
    const url = new URL("./loader-worker.ts", import.meta.url);
    const threads: Thread[] = [];
    try {
      for (let index = 0; index < workers; index++)
        threads.push({ index, worker: new Worker(url, { workerData: init }) });
      await Promise.all(threads.map((t) => ready(t)));
    } catch (error) {
      await Promise.all(threads.map((t) => t.worker.terminate()));
      throw error;
    }
    const loader = new ImageLoader({ ...options }, threads);
    for (const t of threads) loader.#watch(t);
    return loader;
  }

  /** The worker threads, for diagnostics (and tests that need one to die). */
  get workers(): readonly Worker[] {
    return this.#threads.map((t) => t.worker);
  }

  /**
   * Training batches, in the order of `requests`, each cut by its examples' views and shifted by
   * their lighting. `requests` is read lazily, `prefetch` batches ahead, so it may be a generator
   * over the rest of an epoch (a resumed run starts it mid-epoch). Breaking out of the loop drops
   * the batches prepared ahead.
   */
  async *train(requests: Iterable<readonly ExampleRequest[]>): AsyncGenerator<TrainBatch> {
    const start = (batch: readonly ExampleRequest[]) =>
      this.#start(batch, 1, (e) => ({ path: e.path, views: [e.view], shifts: [e.shift] }));
    for await (const b of this.#pipeline(requests, start))
      yield { images: b.outputs[0], labels: b.labels, failed: b.failed };
  }

  /**
   * Evaluation batches: every image is decoded once and cut into each of `views` (e.g.
   * tenCropViews), unshifted; one array per view, so the runner evaluates view by view and averages
   * the softmax outputs.
   */
  async *evaluate(
    entries: Iterable<readonly ImageEntry[]>,
    views: readonly View[],
    prefetch = this.options.prefetch,
  ): AsyncGenerator<EvalBatch> {
    if (views.length === 0) throw new RangeError("evaluation needs at least one view");
    const all = [...views];
    const zero = all.map((): Rgb => [0, 0, 0]);
    const start = (batch: readonly ImageEntry[]) =>
      this.#start(batch, all.length, (e) => ({ path: e.path, views: all, shifts: zero }));
    for await (const b of this.#pipeline(entries, start, prefetch))
      yield { views: b.outputs, labels: b.labels, failed: b.failed };
  }

  /** Terminates the workers; pending batches reject with "image loader closed". Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#fail(new Error("image loader closed"));
    await Promise.all(this.#threads.map((t) => t.worker.terminate()));
  }

  /** Keeps at most `prefetch` batches started and not yet taken; yields them in order. */
  async *#pipeline<T>(
    source: Iterable<readonly T[]>,
    start: (batch: readonly T[]) => { done: Promise<Finished>; cancel: () => void },
    prefetch = this.options.prefetch,
  ): AsyncGenerator<Finished> {
    const it = source[Symbol.iterator]();
    const window: { done: Promise<Finished>; cancel: () => void }[] = [];
    const fill = () => {
      while (window.length < prefetch) {
        const next = it.next();
        if (next.done === true) return;
        const started = start(next.value);
        started.done.catch(() => {}); // awaited in order below; never an unhandled rejection
        window.push(started);
      }
    };
    try {
      fill();
      while (window.length > 0) {
        const finished = await window.shift()!.done;
        fill();
        yield finished;
      }
    } finally {
      for (const w of window) w.cancel();
      it.return?.();
    }
  }

  /** Queues one batch; `done` settles with its arrays, substitutions made. */
  #start<T extends { path: string; label: number }>(
    examples: readonly T[],
    outputs: number,
    example: (e: T) => WorkerJob["examples"][number],
  ): { done: Promise<Finished>; cancel: () => void } {
    const labels = Int32Array.from(examples, (e) => e.label);
    const paths = examples.map((e) => e.path);
    let run!: BatchRun;
    const reply = new Promise<{ outputs: Float32Array[]; errors: (string | null)[] }>((resolve, reject) => {
      run = {
        job: { id: this.#nextId++, examples: examples.map(example), outputs },
        labels,
        settled: false,
        resolve,
        reject,
      };
    });
    const stride = 3 * this.options.crop * this.options.crop;
    const done = reply.then((r) => substitute(r.outputs, labels, paths, r.errors, stride));
    const settle = (f: () => void) => {
      if (run.settled) return;
      run.settled = true;
      f();
    };
    if (this.#failure !== undefined) settle(() => run.reject(this.#failure!));
    else {
      this.#queue.push(run);
      this.#dispatch();
    }
    // A queued batch that is cancelled is skipped; one in preparation finishes unused.
    return { done, cancel: () => settle(() => run.reject(new Error("batch cancelled"))) };
  }

  /** Gives queued batches to idle workers. */
  #dispatch(): void {
    for (const t of this.#threads) {
      if (t.current !== undefined) continue;
      let run: BatchRun | undefined;
      while ((run = this.#queue.shift()) !== undefined && run.settled);
      if (run === undefined) return;
      t.current = run;
      t.worker.postMessage(run.job);
    }
  }

  #watch(t: Thread): void {
    t.worker.on("message", (reply: WorkerReply) => {
      const run = t.current;
      if (reply.type === "ready" || run === undefined || reply.id !== run.job.id) return;
      if (reply.type === "failed") {
        // While the batch is still this thread's current one, so that #fail rejects it too.
        this.#fail(new Error(`image loader worker ${t.index} failed on a batch: ${reply.message}`));
        return;
      }
      t.current = undefined;
      if (!run.settled) {
        run.settled = true;
        run.resolve(reply);
      }
      this.#dispatch();
    });
    const crash = (what: string) => this.#fail(new Error(`image loader worker ${t.index} ${what}`));
    t.worker.on("error", (error) => crash(`crashed: ${error.message}`));
    t.worker.on("messageerror", (error) =>
      crash(`sent a message that failed to deserialise: ${error.message}`),
    );
    t.worker.on("exit", (code) => {
      if (!this.#closed) crash(`exited unexpectedly (code ${code})`);
    });
  }

  /** Rejects every pending batch with `error` and refuses new ones; the first failure wins. */
  #fail(error: Error): void {
    this.#failure ??= error;
    const pending = [...this.#queue, ...this.#threads.map((t) => t.current)];
    this.#queue.length = 0;
    for (const t of this.#threads) t.current = undefined;
    for (const run of pending) {
      if (run === undefined || run.settled) continue;
      run.settled = true;
      run.reject(this.#failure);
    }
    // A broken loader holds no threads (the caller still calls close(), which then has none to stop).
    if (!this.#closed) for (const t of this.#threads) void t.worker.terminate();
  }
}

/**
 * Fills each failed slot with the next slot (cyclically) that decoded, input and label, so the
 * batch keeps its size and the choice depends only on which files failed. When none decoded, every
 * slot is reported with `from: -1` and its inputs left as they are: the caller decides (evaluation
 * leaves failed slots out of its counts; training asks for other images).
 */
function substitute(
  outputs: Float32Array[],
  labels: Int32Array,
  paths: readonly string[],
  errors: readonly (string | null)[],
  stride: number,
): Finished {
  const n = paths.length;
  const failed: FailedSlot[] = [];
  for (let slot = 0; slot < n; slot++) {
    const detail = errors[slot];
    if (detail === null) continue;
    let from = (slot + 1) % n;
    while (from !== slot && errors[from] !== null) from = (from + 1) % n;
    if (from === slot) {
      failed.push({ path: paths[slot], reason: "unreadable", detail, slot, from: -1 });
      continue;
    }
    for (const out of outputs) out.copyWithin(slot * stride, from * stride, (from + 1) * stride);
    labels[slot] = labels[from];
    failed.push({ path: paths[slot], reason: "unreadable", detail, slot, from });
  }
  return { outputs, labels, failed };
}

/** Resolves when the worker reports ready; rejects if it fails to start. */
function ready(t: Thread): Promise<void> {
  return new Promise((resolve, reject) => {
    const onMessage = (m: WorkerReply) => {
      if (m.type === "ready") done(resolve);
    };
    const onError = (e: Error) =>
      done(() => reject(new Error(`image loader worker ${t.index} failed to start: ${e.message}`)));
    const onExit = (code: number) =>
      done(() => reject(new Error(`image loader worker ${t.index} exited at start (code ${code})`)));
    const done = (f: () => void) => {
      t.worker.off("message", onMessage).off("error", onError).off("exit", onExit);
      f();
    };
    t.worker.on("message", onMessage).on("error", onError).on("exit", onExit);
  });
}
