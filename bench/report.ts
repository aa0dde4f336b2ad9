// The text report of `npm run bench` (bench/run.ts): the side-by-side table, the ratios against the
// issue's targets (met / not met, never rounded into a pass), the settings each peer needed, alexc's
// kernel classes against its GEMM ceiling and the CPU's native rate, and memory per device.
import { table } from "../compiler/bench-command.ts";
import type { Ceiling } from "./ceiling.ts";
import type { BenchResult } from "./measure.ts";
import type { PeerResult } from "./peers/common.ts";

export const PEERS = ["alexc", "tfjs", "ort-webgpu", "ort-wasm", "ort-node"] as const;
export type PeerName = (typeof PEERS)[number];
const TITLE: Record<PeerName, string> = {
  alexc: "alexc",
  tfjs: "TF.js WebGPU",
  "ort-webgpu": "ORT WebGPU",
  "ort-wasm": "ORT wasm",
  "ort-node": "ORT node CPU",
};

export interface Row {
  id: string;
  network: string;
  mode: "forward" | "train";
  batch: number;
  /** alexc must be at least this many times faster than TF.js WebGPU. */
  tfjsTarget: number;
}

export interface RowResult {
  row: Row;
  cells: Partial<Record<PeerName, PeerResult>>;
}

export interface Report {
  date: string;
  command: string;
  host: { cpu: string; cores: number; node: string; platform: string };
  iters: number;
  warmup: number;
  kernelReps: number;
  /** Parse + check of models/alexnet.net, median ms. */
  frontEndMs?: number;
  ceiling?: { ceiling: Ceiling; device: string };
  rows: RowResult[];
  minutes: number;
}

/** The conv classes' target: at least this share of the GEMM ceiling. */
export const CONV_TARGET = 0.6;

const cell = (r: PeerResult | undefined) =>
  !r ? "-" : r.status === "timed" ? r.median!.toFixed(1) : r.status === "wrong" ? "WRONG" : r.status;
const ratio = (peer: PeerResult | undefined, alexc: PeerResult | undefined) =>
  peer?.status === "timed" && alexc?.status === "timed" ? peer.median! / alexc.median! : undefined;
const times = (x: number | undefined) => (x === undefined ? "-" : `${x.toFixed(2)}×`);
const pct = (x: number) => `${(100 * x).toFixed(0)}%`;
const mib = (n: number) => `${(n / 2 ** 20).toFixed(1)} MiB`;
const label = (row: Row) => row.id.replace(/\//g, " ");

interface Target {
  what: string;
  value: string;
  met: boolean | undefined;
}

function targets(r: Report): Target[] {
  const out: Target[] = [];
  for (const { row, cells } of r.rows) {
    const tf = ratio(cells.tfjs, cells.alexc);
    out.push({
      what: `alexc ≥ ${row.tfjsTarget}× faster than TF.js WebGPU, ${label(row)}`,
      value: times(tf),
      met: tf === undefined ? undefined : tf >= row.tfjsTarget,
    });
    const ort = ratio(cells["ort-webgpu"], cells.alexc);
    if (row.mode === "forward")
      out.push({
        what: `alexc faster than ORT WebGPU, ${label(row)}`,
        value: times(ort),
        met: ort === undefined ? undefined : ort > 1,
      });
    const detail = cells.alexc?.detail as BenchResult | undefined;
    const ceiling = r.ceiling?.ceiling.gflops;
    for (const c of detail?.classes ?? []) {
      if (!c.class.startsWith("conv") || !ceiling) continue;
      out.push({
        what: `${c.class} kernels ≥ ${pct(CONV_TARGET)} of the GEMM ceiling, ${label(row)}`,
        value: pct(c.gflops / ceiling),
        met: c.gflops / ceiling >= CONV_TARGET,
      });
    }
  }
  return out;
}

/** Per peer: each distinct outcome of its settings tried in order, with the rows it was seen on. */
function settings(r: Report): string[] {
  const lines: string[] = [];
  for (const peer of PEERS) {
    const seen = new Map<string, string[]>();
    for (const { row, cells } of r.rows) {
      const c = cells[peer];
      if (!c || c.status === "n/a" || c.status === "failed") continue;
      const key = c.checks?.length
        ? c.checks
            .map(
              (k) =>
                `${k.settings} → ${k.check.ok ? "match" : "WRONG"} (${k.check.relError.toExponential(1)})`,
            )
            .join("; then ")
        : c.settings.join("; ");
      seen.set(key, [...(seen.get(key) ?? []), row.id]);
    }
    for (const [key, rows] of seen) lines.push(`  ${TITLE[peer]} — ${rows.join(", ")}: ${key}`);
  }
  return lines;
}

export function formatReport(r: Report): string {
  const first = r.rows.map((x) => x.cells.alexc?.detail as BenchResult | undefined).find(Boolean);
  const adapter = first?.adapter ?? {
    description: r.ceiling?.device ?? "?",
    vendor: "",
    architecture: "",
    cpu: false,
  };
  const ceiling = r.ceiling?.ceiling;
  const lines = [
    `alexc benchmark — ${r.date} — ${r.command} (${r.minutes.toFixed(1)} min)`,
    `adapter: ${adapter.description} (vendor ${adapter.vendor || "?"}, architecture ${adapter.architecture || "?"}` +
      `${adapter.cpu ? ': a CPU adapter, the "GPU" is this machine\'s CPU' : ""}); every WebGPU peer asks the same Dawn adapter`,
    `host: ${r.host.cpu}, ${r.host.cores} cores, Node ${r.host.node}, ${r.host.platform}` +
      (r.frontEndMs !== undefined
        ? `; alexc's front end (parse + check alexnet.net): ${r.frontEndMs.toFixed(2)} ms`
        : ""),
    `cells: median ms per step of ${r.iters} timed runs after ${r.warmup} warm-up run(s) and the check run, each peer in its own process;`,
    `  forward = one batch in, logits back on the host; train = one SGD step (forward, loss, backward, momentum update)`,
    "",
  ];
  const header = ["row", ...PEERS.map((p) => TITLE[p]), "TF.js ÷ alexc", "target", "ORT WebGPU ÷ alexc"];
  lines.push(
    table(
      [
        header,
        ...r.rows.map(({ row, cells }) => [
          label(row),
          ...PEERS.map((p) => cell(cells[p])),
          times(ratio(cells.tfjs, cells.alexc)),
          `≥ ${row.tfjsTarget}×`,
          row.mode === "forward" ? times(ratio(cells["ort-webgpu"], cells.alexc)) : "n/a",
        ]),
      ],
      "  ",
      true,
    ),
  );
  lines.push("  (a ratio is the peer's time over alexc's: above 1, alexc is faster)", "");

  lines.push("targets (issue #5):");
  for (const t of targets(r))
    lines.push(
      `  ${t.met === undefined ? "NOT MEASURED" : t.met ? "met    " : "NOT MET"}  ${t.what}: ${t.value}`,
    );
  lines.push(
    "",
    "peer settings, tried in order until the checks pass — inference logits vs onnxruntime-node's (max |Δ| ≤ 2e-3 · max |logit|),",
    "  for TF.js training rows also one step's gradients vs TF.js's CPU backend (≤ 1e-2 of each variable's largest); relative errors in ():",
  );
  lines.push(...settings(r));
  lines.push(
    "  ONNX Runtime training rows: n/a — neither onnxruntime-web nor onnxruntime-node has a training API",
    "",
  );

  if (ceiling) {
    const native = ceiling.native;
    lines.push(
      `alexc kernel classes (GFLOP/s = plan FLOPs / per-kernel ${first?.rateSource ?? "wall"} time, each kernel submitted alone and awaited, median of ${r.kernelReps}):`,
      `  ceiling: alexc's best ${ceiling.shape} GEMM kernel ${ceiling.gflops.toFixed(2)} GFLOP/s (${ceiling.kernels
        .map((k) => `${k.op} ${k.gflops.toFixed(2)}`)
        .join(", ")})` +
        (native
          ? `; native CPU rate (${native.provider}, same GEMM): ${native.gflops.toFixed(1)} GFLOP/s`
          : ""),
    );
    const classes = ["conv forward", "conv dgrad", "conv wgrad", "dense", "pool", "lrn", "elementwise"];
    const rows = r.rows.filter((x) => x.cells.alexc?.status === "timed");
    lines.push(
      table([
        ["row", ...classes],
        ...rows.map(({ row, cells }) => {
          const d = cells.alexc!.detail as BenchResult;
          return [
            label(row),
            ...classes.map((c) => {
              const k = d.classes.find((x) => x.class === c);
              if (!k) return "-";
              const of = `${pct(k.gflops / ceiling.gflops)}${native ? `/${pct(k.gflops / native.gflops)}` : ""}`;
              return `${k.gflops.toFixed(2)} (${of})`;
            }),
          ];
        }),
      ]),
    );
    lines.push(
      `  each: GFLOP/s (share of the ceiling${native ? " / of the native CPU rate" : ""}); pool, lrn and elementwise kernels are memory-bound: low rates are expected`,
      "",
    );
  }

  const trainRows = r.rows.filter((x) => x.row.mode === "train");
  if (trainRows.length) {
    lines.push("first training step's loss (initial weights; alexc and TF.js with their own dropout masks):");
    for (const { row, cells } of trainRows) {
      const ref = (cells["ort-node"]?.detail as { referenceLoss?: number } | undefined)?.referenceLoss;
      const f = (x: number | undefined) => (x === undefined ? "-" : x.toFixed(4));
      lines.push(
        `  ${label(row)}: alexc ${f(cells.alexc?.loss)}, TF.js ${f(cells.tfjs?.loss)}; ` +
          `onnxruntime-node logits without dropout ${f(ref)}`,
      );
    }
    lines.push("");
  }
  lines.push("memory per device:");
  for (const { row, cells } of r.rows) {
    const d = cells.alexc?.detail as BenchResult | undefined;
    const parts = (d?.memory ?? []).map(
      (m) =>
        `alexc ${mib(m.bufferBytes)} runtime buffers` +
        (m.plannedPeakBytes !== undefined ? ` (${mib(m.plannedPeakBytes)} planned arena peak)` : ""),
    );
    const tf = cells.tfjs?.memory;
    if (tf) parts.push(`TF.js ${mib(tf.bytes)} (${tf.what})`);
    lines.push(`  ${label(row)}: ${parts.join("; ") || "-"}`);
  }
  const failures = r.rows.flatMap(({ row, cells }) =>
    PEERS.flatMap((p) => {
      const c = cells[p];
      return c && c.status === "failed" ? [`  ${TITLE[p]}, ${label(row)}: ${c.note}`] : [];
    }),
  );
  if (failures.length) lines.push("", "failures:", ...failures);
  return lines.join("\n");
}
