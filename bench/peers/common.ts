// What every peer of `npm run bench` shares. bench/run.ts starts each peer as its own Node process
// (`node bench/peers/<peer>.ts '<job JSON>'`), so that one framework's device, shader caches, polling
// threads and memory never weigh on another's timing, and a crash costs one cell of the table. Every
// peer rebuilds the identical network, weights (runtime/init.ts, the job's seed) and input batch
// (bench/measure.ts benchBatch), checks its inference logits against onnxruntime-node's (the
// reference file bench/peers/ort-node.ts wrote) before timing anything, and prints one line
// `BENCH-RESULT {json}` on stdout (frameworks print their own chatter there too).
import { readFileSync } from "node:fs";
import { compileSource } from "../../compiler/frontend.ts";
import type { Recipe } from "../../compiler/check/recipe.ts";
import type { Graph } from "../../compiler/graph.ts";
import { initParams } from "../../runtime/init.ts";
import { median } from "../kernel-timer.ts";
import { benchBatch, type BenchMode } from "../measure.ts";

export const RESULT_PREFIX = "BENCH-RESULT ";

export interface Job {
  peer: string;
  /** Path of the .net file. */
  network: string;
  mode: BenchMode;
  batch: number;
  iters: number;
  warmup: number;
  seed: number;
  /** Raw little-endian f32 logits of onnxruntime-node on the job's input ([batch, classes]). */
  reference: string;
  /** ort-node: write the reference there. alexc: "ceiling" measures the GEMM ceiling instead. */
  task?: "reference" | "ceiling";
  /** alexc: per-kernel repetitions (0: none). */
  kernelReps?: number;
  /** alexc: run the autotuner's tiles (measured on first use, cached per adapter). */
  autotune?: boolean;
}

export interface Check {
  /** max |peer − reference| / max |reference|. */
  relError: number;
  tolerance: number;
  ok: boolean;
}

export interface PeerResult {
  peer: string;
  /** timed, wrong (outputs failed the check in every setting tried), n/a (the peer cannot), failed. */
  status: "timed" | "wrong" | "n/a" | "failed";
  /** The settings the timed runs used, and why (e.g. a default that failed the check). */
  settings: string[];
  checks?: { settings: string; check: Check }[];
  runsMs?: number[];
  median?: number;
  /** The first timed training step's loss. */
  loss?: number;
  /** What the peer reports of its device memory, when it reports any. */
  memory?: { bytes: number; what: string };
  note?: string;
  /** Anything peer-specific (alexc: its BenchResult; the ceiling). */
  detail?: unknown;
}

/** Logits pass when they are within 0.2 % of the reference's largest magnitude (f32 sums over 9,216). */
export const TOLERANCE = 2e-3;

export function check(got: ArrayLike<number>, ref: Float32Array): Check {
  let maxErr = got.length === ref.length ? 0 : Infinity;
  let maxRef = 0;
  for (let i = 0; i < ref.length && maxErr !== Infinity; i++) {
    const d = Math.abs(got[i] - ref[i]);
    maxErr = Number.isNaN(d) ? Infinity : Math.max(maxErr, d);
    maxRef = Math.max(maxRef, Math.abs(ref[i]));
  }
  const relError = maxErr / Math.max(maxRef, 1e-30);
  return { relError, tolerance: TOLERANCE, ok: relError <= TOLERANCE };
}

export function readReference(path: string): Float32Array {
  const bytes = readFileSync(path);
  return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
}

export interface Problem {
  graph: Graph;
  recipe: Recipe;
  params: Map<string, Float32Array>;
  images: Float32Array;
  labels: Int32Array;
  /** [batch, ...input shape] */
  inputDims: number[];
}

export function loadProblem(job: Job): Problem {
  const { graph, recipe } = compileSource(readFileSync(job.network, "utf8"));
  if (!graph || !recipe) throw new Error(`${job.network} does not check clean`);
  const { images, labels } = benchBatch(graph, job.batch, job.seed);
  const params = initParams(graph, job.seed);
  return { graph, recipe, params, images, labels, inputDims: [job.batch, ...graph.inputs[0].shape] };
}

/** Warm-up runs, then `iters` timed runs of `run` (which must wait for its device to finish). */
export async function timeRuns(
  job: Job,
  run: () => Promise<unknown>,
): Promise<{ runsMs: number[]; median: number }> {
  for (let i = 0; i < job.warmup; i++) await run();
  const runsMs: number[] = [];
  for (let i = 0; i < job.iters; i++) {
    const t0 = performance.now();
    await run();
    runsMs.push(performance.now() - t0);
  }
  return { runsMs, median: median(runsMs) };
}

/**
 * Makes Dawn's WebGPU visible as `navigator.gpu` (what TF.js and onnxruntime-web look for), using the
 * same Dawn instance alexc opens its devices from (runtime/devices.ts defaultGpu), so every peer asks
 * the same adapter. Must run before those frameworks are imported.
 */
export async function installNavigatorGpu(): Promise<void> {
  const { defaultGpu } = await import("../../runtime/devices.ts");
  const gpu = await defaultGpu();
  // Keep Node's own navigator (userAgent "Node.js/…": onnxruntime-web reads it) and add `gpu`.
  const nav = (globalThis as { navigator?: object }).navigator;
  if (nav) Object.defineProperty(nav, "gpu", { value: gpu, configurable: true });
  else Object.defineProperty(globalThis, "navigator", { value: { gpu }, configurable: true, writable: true });
}

/** The peer process's main: parses the job, runs `body`, prints the result line; exit 0 either way. */
export async function peerMain(peer: string, body: (job: Job) => Promise<PeerResult>): Promise<void> {
  const job = JSON.parse(process.argv[2] ?? "{}") as Job;
  let result: PeerResult;
  try {
    result = await body(job);
  } catch (e) {
    result = { peer, status: "failed", settings: [], note: e instanceof Error ? e.message : String(e) };
    process.stderr.write(`${peer}: ${e instanceof Error ? e.stack : e}\n`);
  }
  process.stdout.write(`\n${RESULT_PREFIX}${JSON.stringify(result)}\n`);
  // Dawn and the frameworks keep handles open; the result is out, so leave now.
  process.exit(0);
}

/** The batch-mean softmax cross-entropy of `logits` ([batch, classes]) against `labels`. */
export function crossEntropy(logits: Float32Array, labels: Int32Array, classes: number): number {
  let sum = 0;
  for (let n = 0; n < labels.length; n++) {
    const row = logits.subarray(n * classes, (n + 1) * classes);
    const max = row.reduce((m, v) => Math.max(m, v), -Infinity);
    const lse = max + Math.log(row.reduce((s, v) => s + Math.exp(v - max), 0));
    sum += lse - row[labels[n]];
  }
  return sum / labels.length;
}
