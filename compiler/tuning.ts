// tuning: the tile choices of the register-blocked convolution kernels (forward, data gradient,
// weight gradient) per kernel shape and adapter. The templates pick tiles by rule (conv-tiles.ts);
// what is fastest depends on the adapter, so runtime/autotune.ts measures a few candidates per shape
// on first use and caches the winners per adapter, and the lowerings take the table as an input:
// the compiler stays a pure function of its inputs, the measurement lives in the runtime.
//
// Tiles never change what a forward or data-gradient kernel sums or in which order (each output is
// its bias, then fma over c, ky, kx ascending), so those results are bitwise the same whatever the
// table says; a weight gradient's `splits` changes how its reduction is partitioned (fixed per table).
import { z } from "zod";
import type { ConvGeometry } from "./wgsl/conv-geometry.ts";

export type TunableKind = "conv" | "conv.dgrad" | "conv.wgrad";

/** What a tunable kernel's template needs to know of its shape: the convolution's (both directions). */
export type TunableShape = ConvGeometry;

const tilesSchema = z.object({
  channelsPerInvocation: z.number().int().positive().optional(),
  pixelsPerInvocation: z.number().int().positive().optional(),
  workgroupSize: z.number().int().positive().optional(),
  splits: z.number().int().positive().optional(),
});
export type Tiles = z.infer<typeof tilesSchema>;

export const tuningTableSchema = z.object({
  format: z.literal("alexc-tuning"),
  version: z.literal(1),
  /** The adapter the times were measured on (runtime/autotune.ts `adapterKey`). */
  adapter: z.string(),
  /** Kernel shape key → the fastest tiles measured, their median ms, and the default's. */
  entries: z.record(z.string(), z.object({ tiles: tilesSchema, ms: z.number(), defaultMs: z.number() })),
});
export type TuningTable = z.infer<typeof tuningTableSchema>;

/** A stable key for one kernel shape: everything its template's tiling depends on. */
export function tuningKey(kind: TunableKind, s: TunableShape): string {
  const p = s.pad;
  return [
    kind,
    `n${s.batch}`,
    `in${s.input.join("x")}`,
    `out${s.output.join("x")}`,
    `k${s.kernel.join("x")}`,
    `s${s.stride.join("x")}`,
    `p${p.top},${p.bottom},${p.left},${p.right}`,
    `g${s.groups}`,
    `oc${s.outBase}+${s.outCount}`,
  ].join(" ");
}

/** The tiles the table chose for this shape ({}: the templates' own rule). */
export function tilesFor(table: TuningTable | undefined, kind: TunableKind, s: TunableShape): Tiles {
  return table?.entries[tuningKey(kind, s)]?.tiles ?? {};
}

/**
 * A few candidates per shape, the templates' default first. Channel blocks must divide the group's
 * channels and the part (the templates throw otherwise; the tuner skips those), pixel blocks stay
 * within a row (a whole row when it is at most 16 wide: the 6×6 and 13×13 maps of late layers), and
 * accumulators per lane stay within 96: on lavapipe, 16 channels × 6 pixels ran alexnet-fmnist's
 * conv3 forward in 86–99 ms against 122 ms for the rule's 4 × 6 (bench/conv-kernels.ts, CONV_OCB).
 */
export function tileCandidates(kind: TunableKind, s: TunableShape): Tiles[] {
  const out: Tiles[] = [{}];
  const add = (t: Tiles) => {
    if (!out.some((o) => JSON.stringify(o) === JSON.stringify(t))) out.push(t);
  };
  const width = kind === "conv.dgrad" ? s.input[2] : s.output[2];
  const pixels = [4, 8, 16].filter((p) => p <= Math.max(4, width));
  if (width <= 16 && !pixels.includes(width)) pixels.push(width);
  for (const px of pixels)
    for (const cb of [2, 4, 8, 16])
      if (cb * px <= 96) add({ channelsPerInvocation: cb, pixelsPerInvocation: px });
  if (kind !== "conv.wgrad") for (const wg of [32, 128]) add({ workgroupSize: wg });
  if (kind === "conv.wgrad") for (const splits of [1, 2, 4]) add({ splits });
  return out;
}
