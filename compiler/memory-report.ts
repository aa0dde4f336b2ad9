// `alexc info FILE --memory`: the training plan at the recipe's batch (or --batch), lowered for one
// device or placed over two, planned by compiler/memory.ts; per device the peak, the no-reuse total,
// the liveness lower bound, their ratio, the arenas and the in-place tensors. The JSON form is the
// MemoryReport record.
import type { Recipe } from "./check/recipe.ts";
import type { Graph } from "./graph.ts";
import { lowerTrainingHybrid } from "./lower-hybrid.ts";
import { lowerTrainingData, lowerTrainingPlaced } from "./lower-placed.ts";
import { lowerTraining } from "./lower-train.ts";
import { type InPlace, type Lane, type MemoryLimits, planMemory } from "./memory.ts";
import type { LowerOptions } from "./lower.ts";
import type { CompiledPlan, Plan } from "./plan.ts";

export type MemoryPlacement = "model" | "data" | "hybrid";

export interface MemoryReport {
  network: string;
  batch: number;
  microBatch?: number;
  /** `none`: the one-device plan. */
  placement: MemoryPlacement | "none";
  limits: { maxBindingBytes: number; maxBufferBytes: number; alignment: number };
  devices: {
    device: number;
    label: string;
    peakBytes: number;
    noReuseBytes: number;
    lowerBoundBytes: number;
    pinnedBytes: number;
    /** peak / lower bound. */
    ratio: number;
    arenas: { lane: Lane; bytes: number }[];
    inPlace: InPlace[];
  }[];
}

/** The training plan of `graph` as `alexc compile` lowers it, at `batch`, placed when asked. */
export function trainingPlanFor(graph: Graph, recipe: Recipe, opts: TrainingPlanOptions): Plan {
  return lowerTrainingFor(graph, recipe, opts).plan;
}

export interface TrainingPlanOptions {
  batch: number;
  placement?: MemoryPlacement;
  maxBindingBytes: number;
  source: string;
  version: string;
  /** Measured tiles (tuning.ts) and the hook that reports tunable shapes. */
  tuning?: LowerOptions["tuning"];
  onTunable?: LowerOptions["onTunable"];
}

/** The training plan with the recipe's optimizer settings, on one device or placed over two. */
export function lowerTrainingFor(graph: Graph, recipe: Recipe, opts: TrainingPlanOptions): CompiledPlan {
  const lowerOptions = {
    batch: opts.batch,
    maxBindingBytes: opts.maxBindingBytes,
    source: opts.source,
    compilerVersion: opts.version,
    momentum: recipe.momentum,
    weightDecay: recipe.weightDecay,
    activeDropout: recipe.dropout,
    tuning: opts.tuning,
    onTunable: opts.onTunable,
  };
  const lowering = {
    none: lowerTraining,
    model: lowerTrainingPlaced,
    data: lowerTrainingData,
    hybrid: lowerTrainingHybrid,
  }[opts.placement ?? "none"];
  return lowering(graph, lowerOptions);
}

/** Plans `plan`'s memory (AX3007 when `limits.deviceMemoryBytes` is exceeded) and summarises it. */
export function memoryReport(plan: Plan, limits: MemoryLimits): MemoryReport {
  const memory = planMemory(plan, limits);
  return {
    network: plan.network,
    batch: plan.batch,
    ...(plan.microBatch ? { microBatch: plan.microBatch } : {}),
    placement: plan.placement?.strategy ?? "none",
    limits: {
      maxBindingBytes: memory.maxBindingBytes,
      maxBufferBytes: memory.maxBufferBytes,
      alignment: memory.alignment,
    },
    devices: memory.devices.map((d) => ({
      device: d.device,
      label: plan.devices.find((x) => x.index === d.device)?.label ?? `device ${d.device}`,
      peakBytes: d.stats.peakBytes,
      noReuseBytes: d.stats.noReuseBytes,
      lowerBoundBytes: d.stats.lowerBoundBytes,
      pinnedBytes: d.stats.pinnedBytes,
      ratio: d.stats.lowerBoundBytes > 0 ? d.stats.peakBytes / d.stats.lowerBoundBytes : 1,
      arenas: d.arenas.map((a) => ({ lane: a.lane, bytes: a.bytes })),
      inPlace: d.stats.inPlace,
    })),
  };
}

const num = (n: number) => n.toLocaleString("en-US");
const mib = (n: number) =>
  (n / 2 ** 20).toLocaleString("en-US", { minimumFractionDigits: 1, maximumFractionDigits: 1 });
const bytes = (n: number) => `${num(n)} (${mib(n)} MiB)`;

export function formatMemory(r: MemoryReport): string {
  const header = [
    "device",
    "peak bytes",
    "no-reuse bytes",
    "lower-bound bytes",
    "peak/lower",
    "arenas",
    "in place",
  ];
  const rows = r.devices.map((d) => [
    d.label,
    bytes(d.peakBytes),
    bytes(d.noReuseBytes),
    bytes(d.lowerBoundBytes),
    d.ratio.toFixed(3),
    String(d.arenas.length),
    String(d.inPlace.length),
  ]);
  if (r.devices.length > 1) {
    const sum = (f: (d: MemoryReport["devices"][number]) => number) =>
      r.devices.reduce((s, d) => s + f(d), 0);
    rows.push([
      "total",
      bytes(sum((d) => d.peakBytes)),
      bytes(sum((d) => d.noReuseBytes)),
      bytes(sum((d) => d.lowerBoundBytes)),
      "",
      String(sum((d) => d.arenas.length)),
      String(sum((d) => d.inPlace.length)),
    ]);
  }
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i])))
      .join("  ")
      .trimEnd();
  const rule = line(widths.map((w) => "-".repeat(w)));
  const body = rows.map(line);
  if (r.devices.length > 1) body.splice(body.length - 1, 0, rule);
  const run = r.microBatch ? `batch ${r.batch} in micro-batches of ${r.microBatch}` : `batch ${r.batch}`;
  const where =
    r.placement === "none" ? "one device" : `placement ${r.placement} over ${r.devices.length} devices`;
  const { maxBindingBytes, maxBufferBytes, alignment } = r.limits;
  return [
    `memory — ${r.network}, training plan at ${run}, ${where}`,
    `  bindings ≤ ${num(maxBindingBytes)} B, arenas ≤ ${num(maxBufferBytes)} B, offsets aligned to ${alignment} B`,
    "",
    line(header),
    rule,
    ...body,
    "",
    "peak: the arenas the plan allocates (parameters and optimizer state included); no reuse: one buffer",
    "per tensor; lower bound: the most bytes live at any one step, which no plan can go below",
  ].join("\n");
}
