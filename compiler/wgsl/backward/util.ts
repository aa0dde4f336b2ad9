// Shared pieces of the training kernels (forward-in-training, loss, backward, update): bindings that
// may be i32 (the labels) or the per-step uniform struct, the counter-based dropout hash, and the
// KernelSource shape they return (like ../common.ts, plus the uniform access).
import type { ActivationOp } from "../../graph.ts";
import { WORKGROUP, consts, foldGrid, u32, type KernelIdentity, type KernelSource } from "../common.ts";

export type { KernelIdentity };

/** A binding of a training kernel: storage of f32 (default) or i32, or the step uniform. */
export interface TrainBinding {
  name: string;
  tensor: string;
  access: "read" | "read_write" | "uniform";
  /** Element type of a storage binding; default f32. */
  type?: "f32" | "i32" | "u32";
}

export interface TrainKernelSource extends Omit<KernelSource, "bindings"> {
  bindings: TrainBinding[];
}

export const read = (name: string, tensor: string, type?: "i32" | "u32"): TrainBinding => ({
  name,
  tensor,
  access: "read",
  ...(type ? { type } : {}),
});
export const write = (name: string, tensor: string, type?: "u32"): TrainBinding => ({
  name,
  tensor,
  access: "read_write",
  ...(type ? { type } : {}),
});
export const uniform = (tensor: string): TrainBinding => ({ name: "step", tensor, access: "uniform" });

/**
 * The per-step uniform, written by the host before each step (16 bytes: WGSL's uniform layout rounds
 * a struct of four 4-byte members to 16, so no padding rules come into play).
 */
export const STEP_STRUCT = `struct Step {
  lr: f32,    // ε, the learning rate
  seed: u32,  // dropout seed of this step
  step: u32,  // step counter (informational; no arithmetic reads it, so resuming needs only lr and seed)
  micro: u32, // micro-batched plans: bit 0 = not the first micro-step, bit 1 = not the last, bits 2… = its index; else 0
}`;

export function declare(bindings: readonly TrainBinding[]): string {
  const lines = bindings.map((b, i) =>
    b.access === "uniform"
      ? `@group(0) @binding(${i}) var<uniform> ${b.name}: Step; // ${b.tensor}`
      : `@group(0) @binding(${i}) var<storage, ${b.access}> ${b.name}: array<${b.type ?? "f32"}>; // ${b.tensor}`,
  );
  return bindings.some((b) => b.access === "uniform")
    ? `${STEP_STRUCT}\n\n${lines.join("\n")}`
    : lines.join("\n");
}

/** Like ../common.ts elementwiseMain, but the caller names the extra constants. */
export function elementwise(
  total: number,
  body: string,
): { code: string; dispatch: [number, number, number] } {
  const dispatch = foldGrid(Math.ceil(total / WORKGROUP));
  const code = `${consts({ TOTAL: u32(total), GRID_X: u32(dispatch[0]) })}

@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = (wid.y * GRID_X + wid.x) * ${WORKGROUP}u + lid;
  if (i >= TOTAL) { return; }
${body}
}
`;
  return { code, dispatch };
}

/** Reductions at most this long run serially in one invocation; longer ones share a workgroup. */
export const SERIAL_REDUCTION_MAX = 2048;

/**
 * A sum per "row" (a channel, a weight element) over `length` terms, `count` sums at once.
 * Short rows: one invocation per row adds its terms in order. Long rows: one workgroup per row, its
 * WORKGROUP lanes stride over the terms and lane 0 adds the lane sums in lane order. Either way the
 * order of every addition is fixed by the constants, so results are bitwise the same run to run (no
 * atomics). `prologue` sees `r` (the row); `accumulate` sees `k` (the term) and adds into acc[s];
 * `epilogue` sees `r` and the totals `sum[s]`.
 */
export function reduceMain(opts: {
  rows: number;
  count: number;
  length: number;
  prologue: string;
  accumulate: string;
  epilogue: string;
}): { code: string; dispatch: [number, number, number]; serial: boolean } {
  const { count } = opts;
  const serial = opts.length <= SERIAL_REDUCTION_MAX;
  const dispatch = foldGrid(serial ? Math.ceil(opts.rows / WORKGROUP) : opts.rows);
  const constants = consts({
    ROWS: u32(opts.rows),
    LEN: u32(opts.length),
    GRID_X: u32(dispatch[0]),
    WG: u32(WORKGROUP),
    SUMS: u32(count),
  });
  const init = `  var acc: array<f32, SUMS>;
  for (var s = 0u; s < SUMS; s++) { acc[s] = 0.0; }`;
  if (serial) {
    return {
      serial,
      dispatch,
      code: `${constants}

@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let r = (wid.y * GRID_X + wid.x) * WG + lid;  // one invocation per row, terms in order
  if (r >= ROWS) { return; }
${opts.prologue}
${init}
  for (var k = 0u; k < LEN; k++) {
${opts.accumulate}
  }
  let sum = acc;
${opts.epilogue}
}
`,
    };
  }
  return {
    serial,
    dispatch,
    code: `${constants}

var<workgroup> partial: array<f32, ${WORKGROUP * count}>; // [SUMS][WG]

@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let r = wid.y * GRID_X + wid.x;  // one workgroup per row; workgroup-uniform, so the barrier is legal
  if (r >= ROWS) { return; }
${opts.prologue}
${init}
  for (var k = lid; k < LEN; k += WG) {
${opts.accumulate}
  }
  for (var s = 0u; s < SUMS; s++) { partial[s * WG + lid] = acc[s]; }
  workgroupBarrier();
  if (lid != 0u) { return; }
  var sum: array<f32, SUMS>;
  for (var s = 0u; s < SUMS; s++) {
    sum[s] = 0.0;
    for (var t = 0u; t < WG; t++) { sum[s] += partial[s * WG + t]; }
  }
${opts.epilogue}
}
`,
  };
}

// ---- dropout mask hash ----
//
// keep(seed, layer, i) = h ≥ T, with h = mix(mix(mix(seed) ^ layer) ^ i) and T = ⌊p · 2³²⌋, where
// mix is Chris Wellons' `lowbias32` integer hash (xorshift-multiply, full avalanche):
//   x ^= x >> 16; x *= 0x7feb352d; x ^= x >> 15; x *= 0x846ca68b; x ^= x >> 16.
// seed: the step's dropout seed (uniform; every micro-step of a step uses it); layer: the index in
// graph.nodes of the SOURCE dropout layer (a tower slice uses its source layer's); i: the element's
// linear index in the SOURCE layer's output over the WHOLE batch, i = e · S + j (mod 2³²), with e the
// global example index (the device's / micro-step's first example + the local one), S the source
// layer's per-example size and j the element's index within the source example (a slice maps its
// local index l to offset + l · stride). So the mask of an element is the same on one device and
// under model / data / hybrid placement and micro-batching. The forward and the backward both
// evaluate it, so the mask is never stored; P(keep) = 1 − T/2³² = 1 − p to within 2⁻³².

export const DROPOUT_HASH_WGSL = `fn mix32(v: u32) -> u32 {  // lowbias32 (C. Wellons)
  var x = v;
  x ^= x >> 16u; x *= 0x7feb352du; x ^= x >> 15u; x *= 0x846ca68bu; x ^= x >> 16u;
  return x;
}

fn dropout_hash(seed: u32, layer: u32, i: u32) -> u32 {
  return mix32(mix32(mix32(seed) ^ layer) ^ i);
}`;

function mix32(v: number): number {
  let x = v >>> 0;
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb352d) >>> 0;
  x ^= x >>> 15;
  x = Math.imul(x, 0x846ca68b) >>> 0;
  x ^= x >>> 16;
  return x >>> 0;
}

/** The host mirror of the WGSL hash, for tests and for checking a mask off the device. */
export function dropoutHash(seed: number, layer: number, index: number): number {
  return mix32(mix32(mix32(seed) ^ layer) ^ index);
}

/** The keep threshold T = ⌊p·2³²⌋ as a u32 (p = 1 drops everything: T saturates at 2³² − 1 and is checked). */
export function dropoutThreshold(p: number): number {
  if (!(p >= 0 && p < 1)) throw new Error(`dropout p must be in [0, 1), got ${p}`);
  return Math.min(Math.floor(p * 2 ** 32), 0xffff_ffff);
}

/** keep of element `index` = e · S + j of the source layer over the whole batch (see above). */
export function dropoutKeep(seed: number, layer: number, index: number, p: number): boolean {
  return dropoutHash(seed, layer, index) >= dropoutThreshold(p);
}

/** The hash index of element j (source per-example index) of global example e, S elements per example. */
export function dropoutIndex(example: number, perExample: number, j: number): number {
  return (Math.imul(example, perExample) + j) >>> 0;
}

/** dx from dy (g) and the saved output y, per activation. */
export const activationGradExpr: Record<ActivationOp, string> = {
  // y > 0 ⇔ x > 0, and at x = 0 the gradient is taken as 0 (PyTorch, TF.js).
  relu: "select(0.0, g, y[i] > 0.0)",
  tanh: "g * (1.0 - y[i] * y[i])",
  sigmoid: "g * y[i] * (1.0 - y[i])",
};

/**
 * A backward kernel's fused activation derivative (fusion of the activation after it in the forward
 * pass: compiler/lower-train.ts): instead of ∂L/∂y of the activation, the kernel stores
 * ∂L/∂x = ∂L/∂y · act'(y) at the same index, so the activation's own backward kernel disappears.
 * `y` is the activation's saved output.
 */
export interface GradEpilogue {
  op: ActivationOp;
  y: string;
}

/**
 * The binding the epilogue reads: none without one, nor when the kernel already binds y (LRN's
 * backward reads its input x, which is the activation's output) — binding a tensor twice would be
 * two writable bindings of one range once memory-planned kernels bind arenas read_write.
 */
export const epilogueBindings = (
  e: GradEpilogue | undefined,
  bound: readonly TrainBinding[],
): TrainBinding[] => (e && !bound.some((b) => b.tensor === e.y) ? [read("act_y", e.y)] : []);

/** The epilogue as a WGSL function of the gradient and its index: the activation kernel's expression. */
export function epilogueFunction(e: GradEpilogue | undefined, bindings: readonly TrainBinding[]): string[] {
  if (!e) return [];
  const y = bindings.find((b) => b.tensor === e.y)!.name;
  const expr = activationGradExpr[e.op].replaceAll("y[i]", "yi");
  return [`fn activation_grad(g: f32, i: u32) -> f32 {\n  let yi = ${y}[i];\n  return ${expr};\n}`];
}

/** `out[index] = value;`, through the epilogue when there is one. */
export function storeGrad(e: GradEpilogue | undefined, out: string, index: string, value: string): string {
  return e ? `${out}[${index}] = activation_grad(${value}, ${index});` : `${out}[${index}] = ${value};`;
}
