// `npm run bench [-- --only SUBSTR[,SUBSTR…]] [--iters K] [--warmup W] [--kernel-reps R] [--peers LIST]
// [--autotune]` (--autotune: alexc runs the tiles its autotuner measured fastest on this adapter):
// alexc against TF.js WebGPU, ONNX Runtime WebGPU and the CPU references (onnxruntime-web wasm,
// onnxruntime-node), in one run on the same adapter, row by row (bench/README.md says what each row
// and column means). Every peer runs in its own process (bench/peers/), is checked against
// onnxruntime-node's logits before it is timed, and reports the median of K ≥ 5 timed runs after
// warm-up. Prints the table, the ratios against the issue's targets, the per-class GFLOP/s of alexc's
// kernels against its own GEMM ceiling and the CPU's native rate, and the memory per device; writes
// bench/results/<date>-bench.json and .txt. Not a test: wall-clock numbers vary.
import { spawn } from "node:child_process";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { availableParallelism, cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { compileSource } from "../compiler/frontend.ts";
import { median } from "./kernel-timer.ts";
import { RESULT_PREFIX, type Job, type PeerResult } from "./peers/common.ts";
import { formatReport, PEERS, type PeerName, type Report, type Row, type RowResult } from "./report.ts";

const ROWS: Row[] = [
  { id: "alexnet/forward/b1", network: "models/alexnet.net", mode: "forward", batch: 1, tfjsTarget: 2 },
  { id: "alexnet/forward/b8", network: "models/alexnet.net", mode: "forward", batch: 8, tfjsTarget: 3 },
  { id: "alexnet/train/b1", network: "models/alexnet.net", mode: "train", batch: 1, tfjsTarget: 3 },
  { id: "alexnet-67/forward/b1", network: "models/alexnet-67.net", mode: "forward", batch: 1, tfjsTarget: 2 },
  { id: "alexnet-67/forward/b8", network: "models/alexnet-67.net", mode: "forward", batch: 8, tfjsTarget: 2 },
  { id: "alexnet-67/train/b1", network: "models/alexnet-67.net", mode: "train", batch: 1, tfjsTarget: 2 },
  { id: "alexnet-67/train/b8", network: "models/alexnet-67.net", mode: "train", batch: 8, tfjsTarget: 2 },
];

const args = process.argv.slice(2);
const flag = (name: string) => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined);
const number = (name: string, fallback: number) => {
  const v = flag(name);
  const n = Number(v ?? fallback);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name} must be a non-negative integer, got ${v}`);
  return n;
};
const iters = number("--iters", 5);
const warmup = number("--warmup", 1);
const kernelReps = number("--kernel-reps", 3);
const only = flag("--only")?.split(",");
const tuned = args.includes("--autotune");
const peers = (flag("--peers")?.split(",") ?? [...PEERS]) as PeerName[];
for (const p of peers)
  if (!PEERS.includes(p)) throw new Error(`--peers: unknown peer ${p} (${PEERS.join(", ")})`);
const rows = ROWS.filter((r) => !only || only.some((o) => r.id.includes(o)));
if (rows.length === 0)
  throw new Error(`--only ${flag("--only")} matches no row: ${ROWS.map((r) => r.id).join(", ")}`);
if (iters < 5)
  console.error(`note: --iters ${iters} < 5, the issue's minimum: fine for a try, not for the record`);

const root = fileURLToPath(new URL("..", import.meta.url));
const scratch = join(tmpdir(), `alexc-bench-${process.pid}`);
mkdirSync(scratch, { recursive: true });
/** Per peer process: generous, the slowest (TF.js training step of AlexNet) takes minutes on a CPU. */
const PEER_TIMEOUT_MS = 30 * 60_000;

/** Runs one peer's job in its own Node process and parses its result line. */
function runPeer(file: string, job: Job): Promise<PeerResult> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [join(root, "bench/peers", file), JSON.stringify(job)], {
      cwd: root,
      stdio: ["ignore", "pipe", "pipe"],
      timeout: PEER_TIMEOUT_MS,
    });
    let out = "";
    let err = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (err += d));
    child.on("close", (code, signal) => {
      const line = out.split("\n").find((l) => l.startsWith(RESULT_PREFIX));
      if (line) return resolve(JSON.parse(line.slice(RESULT_PREFIX.length)) as PeerResult);
      const tail = err
        .split("\n")
        .filter((l) => l && !l.startsWith("Warning: maxDynamic"))
        .slice(-5)
        .join(" | ");
      resolve({ peer: job.peer, status: "failed", settings: [], note: `exit ${code ?? signal}: ${tail}` });
    });
  });
}

const fileOf: Record<PeerName, string> = {
  alexc: "alexc.ts",
  tfjs: "tfjs.ts",
  "ort-webgpu": "ort-web.ts",
  "ort-wasm": "ort-web.ts",
  "ort-node": "ort-node.ts",
};
const ms = (r: PeerResult) => (r.median !== undefined ? `${r.median.toFixed(1)} ms` : r.status);

const started = new Date();
const t0 = performance.now();
// The front end too (as the previous `npm run bench` did): parse + check of alexnet.net, median of 50.
const alexnetSource = readFileSync(join(root, "models/alexnet.net"), "utf8");
compileSource(alexnetSource); // warm the parser
const frontMs = Array.from({ length: 50 }, () => {
  const s = performance.now();
  compileSource(alexnetSource);
  return performance.now() - s;
});
console.error(`measuring alexc's GEMM ceiling (1024³) and the CPU's native rate…`);
const base = { network: "", mode: "forward" as const, batch: 1, iters, warmup, seed: 1, reference: "" };
const ceilingRun = await runPeer("alexc.ts", { ...base, peer: "alexc", task: "ceiling" });
console.error(`  ${ceilingRun.status === "timed" ? "done" : `failed: ${ceilingRun.note}`}`);

const results: RowResult[] = [];
for (const row of rows) {
  console.error(`${row.id} (${row.network}, ${row.mode}, batch ${row.batch}):`);
  const reference = join(scratch, `${row.id.replace(/\//g, "-")}.f32`);
  const job = (peer: PeerName): Job => ({
    ...{ ...base, ...row, peer, reference, kernelReps },
    ...(tuned && peer === "alexc" ? { autotune: true } : {}),
  });
  const cells: Partial<Record<PeerName, PeerResult>> = {};
  // onnxruntime-node first: it writes the reference every other peer is checked against.
  cells["ort-node"] = await runPeer(fileOf["ort-node"], job("ort-node"));
  console.error(`  ort-node     ${ms(cells["ort-node"])} (reference written)`);
  if (cells["ort-node"].status === "failed") console.error(`    ${cells["ort-node"].note}`);
  for (const peer of peers.filter((p) => p !== "ort-node")) {
    const noTraining = row.mode === "train" && (peer === "ort-webgpu" || peer === "ort-wasm");
    cells[peer] = noTraining
      ? { peer, status: "n/a", settings: [], note: "onnxruntime-web has no training API" }
      : await runPeer(fileOf[peer], job(peer));
    const r = cells[peer]!;
    const check = r.checks?.at(-1)?.check;
    console.error(
      `  ${peer.padEnd(12)} ${ms(r)}${check ? ` (check: relative error ${check.relError.toExponential(1)})` : ""}` +
        (r.status === "failed" || r.status === "wrong" ? ` — ${r.note ?? r.settings.join("; ")}` : ""),
    );
  }
  results.push({ row, cells });
}
rmSync(scratch, { recursive: true, force: true });

const report: Report = {
  date: started.toISOString(),
  command: `npm run bench${args.length ? ` -- ${args.join(" ")}` : ""}`,
  host: {
    cpu: cpus()[0]?.model ?? "unknown",
    cores: availableParallelism(),
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
  },
  iters,
  warmup,
  kernelReps,
  frontEndMs: median(frontMs),
  ceiling: ceilingRun.status === "timed" ? (ceilingRun.detail as Report["ceiling"]) : undefined,
  rows: results,
  minutes: (performance.now() - t0) / 60_000,
};
const text = formatReport(report);
console.log(text);
const stamp = started.toISOString().slice(0, 10);
const suffix = only ? `-${only.join("+").replace(/[^A-Za-z0-9+-]/g, "_")}` : "";
const out = new URL(`./results/${stamp}-bench${suffix}`, import.meta.url).pathname;
mkdirSync(new URL("./results/", import.meta.url), { recursive: true });
writeFileSync(`${out}.json`, JSON.stringify(report, null, 2) + "\n");
writeFileSync(`${out}.txt`, text + "\n");
console.log(`wrote ${out}.json and ${out}.txt`);
