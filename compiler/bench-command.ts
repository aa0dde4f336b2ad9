// `alexc bench FILE [--batch N] [--mode forward|train] [--placement S] [--iters K] [--warmup W]
// [--init SEED] [--format json]`: compiles the network, loads it with the runtime (pipelines built
// once, one command encoder per step per device), warms up, times K steps in-process and prints the
// median ms per step, images/s, per-kernel times, per-class GFLOP/s against alexc's own GEMM ceiling
// (and the CPU's native rate where the adapter is a CPU) and the memory per device. The measuring
// lives in bench/measure.ts, bench/kernel-timer.ts and bench/ceiling.ts; this file parses and prints.
import type { TuningTable } from "./tuning.ts";
import { UsageError, VERSION, storageOption, type CommandContext } from "./command-context.ts";
import type { BenchMode, BenchPlacement, BenchResult } from "../bench/measure.ts";
import type { Ceiling } from "../bench/ceiling.ts";

function positiveInt(value: string | boolean | undefined, name: string, fallback: number, min = 1): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (typeof value !== "string" || !Number.isInteger(n) || n < min)
    throw new UsageError(`--${name} must be an integer ≥ ${min}, got \`${value}\``);
  return n;
}

function choice<T extends string>(
  value: string | boolean | undefined,
  name: string,
  options: readonly T[],
): T {
  if (value === undefined) return options[0];
  const found = options.find((o) => o === value);
  if (!found) throw new UsageError(`--${name} must be ${options.join(", ")}; got \`${value}\``);
  return found;
}

export interface BenchReport extends Omit<BenchResult, "logits"> {
  ceiling: Ceiling;
  /** Per class: achieved GFLOP/s as a fraction of the ceiling (and of the native CPU rate). */
  classes: (BenchResult["classes"][number] & { ofCeiling: number; ofNative?: number })[];
}

export async function benchCommand(ctx: CommandContext): Promise<number> {
  const graph = ctx.front.graph!;
  const recipe = ctx.front.recipe!;
  const mode = choice<BenchMode>(ctx.values.mode, "mode", ["forward", "train"]);
  const placement = choice<BenchPlacement>(ctx.values.placement, "placement", [
    "none",
    "model",
    "data",
    "hybrid",
  ]);
  if (mode === "forward" && (placement === "data" || placement === "hybrid"))
    throw new UsageError(
      `--mode forward places by --placement model only (data and hybrid are training placements)`,
    );
  const storage = storageOption(ctx.values.storage);
  if (storage === "f16" && (mode !== "forward" || placement !== "none"))
    throw new UsageError("--storage f16 applies to --mode forward on one device (training keeps f32)");
  const batch = positiveInt(ctx.values.batch, "batch", 1);
  const iters = positiveInt(ctx.values.iters, "iters", 5);
  const warmup = positiveInt(ctx.values.warmup, "warmup", 2, 0);
  const seed = positiveInt(ctx.values.init, "init", 1, 0);

  const { openDevices, closeDevices } = await import("../runtime/devices.ts");
  const { benchPlan, lowerForBench } = await import("../bench/measure.ts");
  const { measureCeiling } = await import("../bench/ceiling.ts");
  const t0 = performance.now();
  const devs = await openDevices({ count: placement === "none" ? 1 : 2, allowFewer: false });
  try {
    const meta = { source: ctx.file, compilerVersion: VERSION };
    const shape = { mode, batch, placement, maxBindingBytes: devs[0].maxBindingBytes, storage };
    // --autotune: the convolution tiles measured fastest on this adapter (cached per adapter)
    let tuning: TuningTable | undefined;
    if (ctx.values.autotune) {
      const { adapterKey, autotune, collectTunables, loadTuning, saveTuning } =
        await import("../runtime/autotune.ts");
      const cached = loadTuning(adapterKey(devs[0]));
      const wanted = collectTunables((onTunable) => lowerForBench(graph, recipe, shape, meta, { onTunable }));
      tuning = await autotune(devs[0], wanted, cached, {
        progress: (done, total, key) => ctx.err(`autotune: shape ${done + 1} of ${total}: ${key}`),
      });
      ctx.err(`autotune: ${saveTuning(tuning)}`);
    }
    const compiled = lowerForBench(graph, recipe, shape, meta, { tuning });
    const opts = {
      mode,
      batch,
      placement,
      iters,
      warmup,
      kernelReps: iters,
      seed,
      ...meta,
    };
    const result = await benchPlan(devs, graph, recipe, compiled, { ...opts, loadStartedAt: t0 });
    const ceiling = await measureCeiling(devs[0], Math.min(iters, 3), result.adapter.cpu);
    const report: BenchReport = {
      ...result,
      ceiling,
      classes: result.classes.map((c) => ({
        ...c,
        ofCeiling: c.gflops / ceiling.gflops,
        ...(ceiling.native ? { ofNative: c.gflops / ceiling.native.gflops } : {}),
      })),
    };
    ctx.out(ctx.format === "json" ? JSON.stringify(report, null, 2) : formatBench(report));
  } finally {
    closeDevices(devs);
  }
  return 0;
}

const fixed = (n: number, digits = 2) => (Number.isFinite(n) ? n.toFixed(digits) : "-");
const pct = (x: number) => (Number.isFinite(x) ? `${(100 * x).toFixed(0)}%` : "-");
const mib = (n: number) => `${(n / 2 ** 20).toFixed(1)} MiB`;

/** A table: the first row is the header; numeric-looking cells (or every cell but the first) right-aligned. */
export function table(rows: string[][], indent = "  ", rightAlign = false): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length)));
  const numeric = /^[-+]?[\d.,]+(%|x|×)?$|^-$/;
  const right = (c: string, i: number, row: number) => row > 0 && (rightAlign ? i > 0 : numeric.test(c));
  return rows
    .map((r, row) =>
      (
        indent + r.map((c, i) => (right(c, i, row) ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join("  ")
      ).trimEnd(),
    )
    .join("\n");
}

export function formatBench(r: BenchReport): string {
  const where = `${r.devices.join(" and ")}${r.adapter.cpu ? " — a CPU adapter" : ""}`;
  const place = r.placement === "none" ? "" : `, placement ${r.placement}`;
  const micro = r.microBatch ? ` in micro-batches of ${r.microBatch}` : "";
  const lines = [
    `alexc bench ${r.network}: ${r.mode}, batch ${r.batch}${micro}${place}, on ${where}`,
    `  median ${fixed(r.median)} ms per step over ${r.iters} timed steps (${r.warmup} warm-up; ` +
      `min ${fixed(Math.min(...r.stepsMs))}, max ${fixed(Math.max(...r.stepsMs))}) = ` +
      `${fixed(r.imagesPerSecond, 1)} images/s; lowered and loaded in ${fixed(r.loadMs / 1000)} s` +
      (r.loss !== undefined ? `; first step's loss ${r.loss.toFixed(4)}` : ""),
  ];
  const hasStamps = r.perKernel.some((k) => k.timestampMs !== undefined);
  if (r.perKernel.length) {
    lines.push(
      `  per kernel — ${r.perKernelMethod}; wall: host clock, incl. ~${fixed(r.submitOverheadMs ?? NaN, 3)} ms ` +
        `submit round trip` +
        (hasStamps
          ? `; ts: timestamp queries around the kernel's pass${r.adapter.cpu ? " (they under-report on a CPU adapter)" : ""}`
          : "") +
        `; GFLOP/s from ${r.rateSource} time`,
    );
    const rows = [
      [
        "kernel",
        "op",
        "class",
        ...(r.placement !== "none" ? ["dev"] : []),
        "MFLOP",
        "wall ms",
        ...(hasStamps ? ["ts ms"] : []),
        "GFLOP/s",
      ],
      ...r.perKernel.map((k) => [
        k.kernel,
        k.op,
        k.class,
        ...(r.placement !== "none" ? [String(k.device)] : []),
        fixed(k.flops / 1e6, 1),
        fixed(k.wallMs, 3),
        ...(hasStamps ? [k.timestampMs === undefined ? "-" : fixed(k.timestampMs, 3)] : []),
        fixed(k.gflops, 2),
      ]),
    ];
    lines.push(table(rows, "    "));
    const sum = r.perKernel.reduce((s, k) => s + k.wallMs, 0);
    const stamps = r.perKernel.reduce((s, k) => s + (k.timestampMs ?? 0), 0);
    lines.push(
      `    sum of kernels: ${fixed(sum)} ms wall${hasStamps ? `, ${fixed(stamps)} ms timestamps` : ""} (the step: ${fixed(r.median)} ms)`,
    );
  }
  const c = r.ceiling;
  const native = c.native ? `; native CPU = ${c.native.provider}, ${fixed(c.native.gflops, 1)} GFLOP/s` : "";
  lines.push(
    `  by class — ceiling = alexc's best ${c.shape} GEMM kernel, ${fixed(c.gflops, 1)} GFLOP/s ` +
      `(${c.kernels.map((k) => `${k.op} ${fixed(k.gflops, 1)}`).join(", ")})${native}:`,
  );
  lines.push(
    table(
      [
        [
          "class",
          "kernels",
          `${r.rateSource} ms`,
          "share",
          "GFLOP/s",
          "of ceiling",
          ...(c.native ? ["of native"] : []),
        ],
        ...r.classes.map((k) => [
          k.class,
          String(k.kernels),
          fixed(k.ms, 3),
          pct(k.share),
          fixed(k.gflops, 2),
          pct(k.ofCeiling),
          ...(c.native ? [pct(k.ofNative ?? NaN)] : []),
        ]),
      ],
      "    ",
    ),
  );
  lines.push(
    `  memory per device: ${r.memory
      .map(
        (m) =>
          `${m.label}: ${mib(m.bufferBytes)} in runtime buffers` +
          (m.plannedPeakBytes !== undefined
            ? `, ${mib(m.plannedPeakBytes)} planned arena peak (compiler/memory.ts)`
            : ""),
      )
      .join("; ")}`,
  );
  return lines.join("\n");
}
