// The autotuner: for every tunable kernel shape of a plan (compiler/tuning.ts), measure the tile
// candidates on this adapter and keep the fastest, cached per adapter so that only the first use of
// a shape pays. Each candidate is compiled and run alone on scratch buffers of the kernel's sizes:
// one warm-up dispatch, then the median of `reps` dispatches timed from submit to
// onSubmittedWorkDone (on lavapipe, timestamp queries under-report; wall time is what a step costs).
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import type { PlanKernel } from "../compiler/plan.ts";
import {
  type Tiles,
  type TunableKind,
  type TunableShape,
  type TuningTable,
  tileCandidates,
  tuningKey,
  tuningTableSchema,
} from "../compiler/tuning.ts";
import { convDataGradKernel, convWeightGradKernel } from "../compiler/wgsl/backward/conv.ts";
import { convKernel } from "../compiler/wgsl/conv.ts";
import type { OpenDevice } from "./devices.ts";
import { replaceFileAtomically } from "./durable.ts";
import { buildKernelStep } from "./pipeline.ts";

/** What identifies an adapter's performance: vendor, architecture, device and driver description. */
export function adapterKey(dev: OpenDevice): string {
  const i = dev.adapter.info;
  return [i?.vendor, i?.architecture, i?.device, i?.description].filter(Boolean).join(" / ") || dev.label;
}

/** `$XDG_CACHE_HOME/alexc/tuning/<adapter>.json` (default ~/.cache), or `dir` when given. */
export function tuningCachePath(key: string, dir?: string): string {
  const base = dir ?? join(process.env.XDG_CACHE_HOME || join(homedir(), ".cache"), "alexc", "tuning");
  return join(base, `${key.replace(/[^A-Za-z0-9._-]+/g, "_").slice(0, 120)}.json`);
}

/** The cached table for `key`; undefined when absent or unreadable (a warning says which). */
export function loadTuning(
  key: string,
  dir?: string,
  warn = (m: string) => console.error(m),
): TuningTable | undefined {
  const file = tuningCachePath(key, dir);
  if (!existsSync(file)) return undefined;
  try {
    const table = tuningTableSchema.parse(JSON.parse(readFileSync(file, "utf8")));
    if (table.adapter === key) return table;
    warn(`warning: ${file} was measured on another adapter (${table.adapter}); measuring again`);
  } catch (e) {
    warn(`warning: ignoring the unreadable tuning cache ${file}: ${(e as Error).message}`);
  }
  return undefined;
}

export function saveTuning(table: TuningTable, dir?: string): string {
  const file = tuningCachePath(table.adapter, dir);
  mkdirSync(dirname(file), { recursive: true });
  replaceFileAtomically(file, JSON.stringify(table, null, 2) + "\n");
  return file;
}

/** The shapes a lowering reported (LowerOptions.onTunable), each once. */
export function collectTunables(lowering: (onTunable: (k: TunableKind, s: TunableShape) => void) => void) {
  const found = new Map<string, { kind: TunableKind; shape: TunableShape }>();
  lowering((kind, shape) => found.set(tuningKey(kind, shape), { kind, shape }));
  return [...found.values()];
}

/**
 * `table` completed with every shape in `wanted` it lacks, measured on `dev`. `progress` hears each
 * shape as it starts. Shapes already in the table are not measured again.
 */
export async function autotune(
  dev: OpenDevice,
  wanted: { kind: TunableKind; shape: TunableShape }[],
  table: TuningTable | undefined,
  opts: { reps?: number; progress?: (done: number, total: number, key: string) => void } = {},
): Promise<TuningTable> {
  const out: TuningTable = table ?? {
    format: "alexc-tuning",
    version: 1,
    adapter: adapterKey(dev),
    entries: {},
  };
  const todo = wanted.filter((w) => !out.entries[tuningKey(w.kind, w.shape)]);
  for (const [i, { kind, shape }] of todo.entries()) {
    const key = tuningKey(kind, shape);
    opts.progress?.(i, todo.length, key);
    let best: { tiles: Tiles; ms: number } | undefined;
    let defaultMs = Infinity;
    for (const tiles of tileCandidates(kind, shape)) {
      const ms = await measure(dev, kind, shape, tiles, opts.reps ?? 3).catch(() => undefined);
      if (ms === undefined) continue; // a block the shape does not divide: the template refused it
      if (Object.keys(tiles).length === 0) defaultMs = ms;
      if (!best || ms < best.ms) best = { tiles, ms };
    }
    if (!best) continue;
    // Keep the rule's choice unless a candidate is clearly faster: timings on a busy CPU are noisy.
    const chosen = defaultMs <= best.ms * 1.05 ? { tiles: {}, ms: defaultMs } : best;
    out.entries[key] = { ...chosen, defaultMs };
  }
  return out;
}

function source(kind: TunableKind, shape: TunableShape, tiles: Tiles) {
  const id = { name: "autotune", layer: "autotune", group: ["autotune"] };
  if (kind === "conv")
    return convKernel(id, { ...shape, ...tiles, tensors: { x: "x", w: "w", b: "b", y: "y" } });
  if (kind === "conv.dgrad")
    return convDataGradKernel(id, {
      ...shape,
      ...tiles,
      accumulate: false,
      tensors: { dy: "dy", w: "w", dx: "dx" },
    });
  // with the bias gradient folded in, as fused training plans run it (AlexNet's convs all have biases)
  return convWeightGradKernel(id, { ...shape, ...tiles, tensors: { x: "x", dy: "dy", dw: "dw", db: "db" } });
}

/** Median wall ms of one dispatch of the candidate, on zeroed scratch buffers. */
async function measure(dev: OpenDevice, kind: TunableKind, s: TunableShape, tiles: Tiles, reps: number) {
  const src = source(kind, s, tiles);
  const [ci, h, w] = s.input;
  const [co, oh, ow] = s.output;
  const weights = s.outCount * (ci / s.groups) * s.kernel[0] * s.kernel[1];
  const elements: Record<string, number> = {
    x: s.batch * ci * h * w,
    dx: s.batch * ci * h * w,
    y: s.batch * co * oh * ow,
    dy: s.batch * co * oh * ow,
    w: weights,
    dw: weights,
    b: co,
    db: co,
  };
  const { device } = dev;
  const buffers = new Map<string, GPUBuffer>();
  try {
    for (const b of src.bindings)
      buffers.set(
        b.tensor,
        device.createBuffer({ size: 4 * Math.max(1, elements[b.tensor]), usage: GPUBufferUsage.STORAGE }),
      );
    const kernel: PlanKernel = {
      name: "autotune",
      file: "kernels/autotune.wgsl",
      layer: "autotune",
      op: src.op,
      group: ["autotune"],
      device: dev.index,
      entryPoint: src.entryPoint,
      bindings: src.bindings.map((b, binding) => ({ binding, tensor: b.tensor, access: b.access })),
      workgroupSize: src.workgroupSize,
      dispatch: src.dispatch,
      flops: src.flops,
    };
    const step = await buildKernelStep(dev, kernel, src.wgsl, (t) => {
      const buffer = buffers.get(t);
      return buffer && { buffer };
    });
    const once = async () => {
      const encoder = device.createCommandEncoder();
      const pass = encoder.beginComputePass();
      pass.setPipeline(step.pipeline);
      pass.setBindGroup(0, step.bindGroup);
      pass.dispatchWorkgroups(...kernel.dispatch);
      pass.end();
      const t0 = performance.now();
      device.queue.submit([encoder.finish()]);
      await device.queue.onSubmittedWorkDone();
      return performance.now() - t0;
    };
    await once();
    const times: number[] = [];
    for (let r = 0; r < reps; r++) times.push(await once());
    return times.sort((a, b) => a - b)[Math.floor(times.length / 2)];
  } finally {
    for (const b of buffers.values()) b.destroy();
  }
}
