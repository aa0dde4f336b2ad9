// Element-wise training kernels: activation backward (from the saved output), dropout in training
// (forward and backward share the hashed mask, util.ts; conv / dense kernels apply it as a fused
// epilogue, dropoutEpilogueWgsl), gradient accumulation, and concat backward.
// One invocation per element; each output element is written by exactly one invocation.
import type { ActivationOp } from "../../graph.ts";
import { WORKGROUP, consts, f32, header, sections, shapeText, u32 } from "../common.ts";
import {
  type GradEpilogue,
  epilogueBindings,
  epilogueFunction,
  storeGrad,
  DROPOUT_HASH_WGSL,
  type KernelIdentity,
  type TrainKernelSource,
  declare,
  dropoutThreshold,
  elementwise,
  read,
  uniform,
  write,
  activationGradExpr,
} from "./util.ts";

export { activationGradExpr };

const count = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

export function activationGradKernel(
  id: KernelIdentity,
  spec: { op: ActivationOp; shape: readonly number[]; tensors: { y: string; dy: string; dx: string } },
): TrainKernelSource {
  const total = count(spec.shape);
  const bindings = [read("y", spec.tensors.y), read("dy", spec.tensors.dy), write("dx", spec.tensors.dx)];
  const { code, dispatch } = elementwise(
    total,
    `  let g = dy[i];\n  dx[i] = ${activationGradExpr[spec.op]};`,
  );
  return {
    op: `${spec.op}.grad`,
    wgsl: sections(
      header(id, `${spec.op} backward`, [
        `dx = ${activationGradExpr[spec.op]} over ${shapeText(spec.shape)}, g = dy, y the saved output`,
      ]),
      declare(bindings),
      code,
    ),
    entryPoint: "main",
    bindings,
    workgroupSize: [WORKGROUP, 1, 1],
    dispatch,
    flops: 3 * total,
  };
}

/** The words of a dropout mask: the source layer's index, per-example size, and this tensor's slice. */
export interface DropoutMask {
  p: number;
  layer: number;
  perExample: number;
  offset: number;
  stride: number;
  /** The global index of this tensor's first example (a device's half of the batch). */
  exampleBase?: number;
}

/** A conv / dense kernel's fused dropout (compiler/fuse.ts): the mask and the step uniform's tensor. */
export interface DropoutEpilogue extends DropoutMask {
  step: string;
}

/**
 * The mask's constants for a [batch, per] output: the names withExampleBase / withSplitExamples
 * rewrite, shared by the dropout kernel and the fused epilogue.
 */
function maskConsts(d: DropoutMask, batch: number, per: number): string {
  return consts({
    LAYER: u32(d.layer),
    EXAMPLE_BASE: u32(d.exampleBase ?? 0),
    // Examples per device per micro-step, and the global index of the second device's first
    // example: a hybrid head's micro-batch is both devices' chunks (withSplitExamples); else
    // CHUNK = the batch and SECOND_BASE is never reached.
    CHUNK: u32(batch),
    SECOND_BASE: u32(batch),
    PER: u32(per),
    SRC_PER: u32(d.perExample),
    SRC_OFFSET: u32(d.offset),
    SRC_STRIDE: u32(d.stride),
    THRESHOLD: u32(dropoutThreshold(d.p)),
    SCALE: f32(1 / (1 - d.p)),
  });
}

/** `keep` of output element i (local example i / PER): the lines both kernels evaluate. */
const MASK_LINES = [
  "  let n = i / PER;",
  "  let e = EXAMPLE_BASE + select(n, n - CHUNK + SECOND_BASE, n >= CHUNK) + (step.micro >> 2u) * CHUNK;",
  "  let j = SRC_OFFSET + (i % PER) * SRC_STRIDE;",
  "  let keep = dropout_hash(step.seed, LAYER, e * SRC_PER + j) >= THRESHOLD;",
];
const masked = (v: string) => `select(0.0, ${v} * SCALE, keep)`;

/** The dropout mask as a fused epilogue `dropout_epilogue(v, i)` of a [batch, per] output. */
export function dropoutEpilogueWgsl(d: DropoutEpilogue, batch: number, per: number): string[] {
  const fn = `fn dropout_epilogue(v: f32, i: u32) -> f32 {\n${MASK_LINES.join("\n")}\n  return ${masked("v")};\n}`;
  return [maskConsts(d, batch, per), DROPOUT_HASH_WGSL, fn];
}

/** The header line of a kernel with a fused dropout epilogue. */
export const dropoutEpilogueLine = (d: DropoutMask) =>
  `fused epilogue in training: y = that · mask / (1 − p), p = ${d.p}: the dropout kernel's hashed mask, the same bits`;

/**
 * Inverted dropout in training, forward (x → y) or backward (dy → dx): the same expression, since
 * both multiply by mask/(1 − p). The mask is dropout_hash(seed, LAYER, e · SRC_PER + j) ≥ THRESHOLD
 * (util.ts), e the global example (EXAMPLE_BASE + micro-step index · CHUNK + local example n, or for
 * n ≥ CHUNK, a hybrid head's second half, SECOND_BASE + micro-step index · CHUNK + n − CHUNK) and
 * j = SRC_OFFSET + l · SRC_STRIDE the source per-example index of local per-example index l.
 * A conv / dense kernel with a fused dropout evaluates the same lines (dropoutEpilogueWgsl).
 */
export function dropoutKernel(
  id: KernelIdentity,
  spec: DropoutMask & {
    direction: "forward" | "backward";
    shape: readonly number[];
    tensors: { x: string; y: string; step: string };
    /** backward only: the activation derivative of the layer before (util.ts GradEpilogue) */
    fold?: GradEpilogue;
  },
): TrainKernelSource {
  const total = count(spec.shape);
  const per = count(spec.shape.slice(1));
  const bound = [read("x", spec.tensors.x), write("y", spec.tensors.y), uniform(spec.tensors.step)];
  const bindings = [...bound, ...epilogueBindings(spec.fold, bound)];
  const { code, dispatch } = elementwise(
    total,
    [...MASK_LINES, `  ${storeGrad(spec.fold, "y", "i", masked("x[i]"))}`].join("\n"),
  );
  return {
    op: spec.direction === "forward" ? "dropout.train" : "dropout.grad",
    wgsl: sections(
      header(id, spec.direction === "forward" ? "dropout (training)" : "dropout backward", [
        `${spec.direction === "forward" ? "y = x" : "dx = dy"} · mask / (1 − p) over ${shapeText(spec.shape)}, p = ${spec.p}`,
        "mask = lowbias32(lowbias32(lowbias32(seed) ^ layer) ^ (e·S + j)) ≥ ⌊p·2³²⌋: regenerated, never stored",
        "layer, e (global example), S and j (per-example index) of the source layer over the whole batch",
      ]),
      maskConsts(spec, spec.shape[0], per),
      declare(bindings),
      ...epilogueFunction(spec.fold, bindings),
      DROPOUT_HASH_WGSL,
      code,
    ),
    entryPoint: "main",
    bindings,
    workgroupSize: [WORKGROUP, 1, 1],
    dispatch,
    flops: total,
  };
}

/** Whether a kernel's WGSL hashes a dropout mask (a dropout kernel, or a fused dropout epilogue). */
export const hashesDropout = (wgsl: string) => /^const EXAMPLE_BASE *: u32 = /m.test(wgsl);

/** A dropout-hashing kernel's WGSL (hashesDropout) for a copy whose first example is global example `base`. */
export function withExampleBase(wgsl: string, base: number): string {
  const re = /^(const EXAMPLE_BASE *: u32 = )0u;$/m;
  if (!re.test(wgsl)) throw new Error("not a dropout kernel: no EXAMPLE_BASE");
  return wgsl.replace(re, `$1${u32(base)};`);
}

/**
 * A dropout kernel's WGSL for a hybrid head micro-batch: its first `chunk` examples are device 0's
 * chunk of the micro-step, the next `chunk` device 1's, whose global indices start at `secondBase`.
 */
export function withSplitExamples(wgsl: string, chunk: number, secondBase: number): string {
  const set = (code: string, name: string, value: number) => {
    const re = new RegExp(`^(const ${name} *: u32 = )\\d+u;$`, "m");
    if (!re.test(code)) throw new Error(`not a dropout kernel: no ${name}`);
    return code.replace(re, `$1${u32(value)};`);
  };
  return set(set(wgsl, "CHUNK", chunk), "SECOND_BASE", secondBase);
}

/** At most this many terms per accumulate kernel (+1 output ≤ the 8 storage buffers WebGPU guarantees). */
export const ACCUMULATE_MAX_TERMS = 6;

/**
 * out = t0 + t1 + … left to right; with `into`, out = out + t0 + … (how more than
 * ACCUMULATE_MAX_TERMS terms chain over several kernels, keeping the same left-to-right order).
 */
export function accumulateKernel(
  id: KernelIdentity,
  spec: { shape: readonly number[]; terms: string[]; out: string; into: boolean },
): TrainKernelSource {
  if (spec.terms.length < 1 || spec.terms.length > ACCUMULATE_MAX_TERMS)
    throw new Error(`accumulate: ${spec.terms.length} terms`);
  const total = count(spec.shape);
  const bindings = [...spec.terms.map((t, j) => read(`t${j}`, t)), write("out", spec.out)];
  const sum = [...(spec.into ? ["out[i]"] : []), ...spec.terms.map((_, j) => `t${j}[i]`)].join(" + ");
  const { code, dispatch } = elementwise(total, `  out[i] = ${sum};`);
  return {
    op: "grad.accumulate",
    wgsl: sections(
      header(id, "gradient accumulation", [
        `${spec.out} ${spec.into ? "+=" : "="} ${spec.terms.join(" + ")} over ${shapeText(spec.shape)}, left to right`,
      ]),
      declare(bindings),
      code,
    ),
    entryPoint: "main",
    bindings,
    workgroupSize: [WORKGROUP, 1, 1],
    dispatch,
    flops: total * spec.terms.length,
  };
}

/** dx_j = dy[:, offset .. offset + C_j]: input j's channel slice of a concat's output gradient. */
export function concatGradKernel(
  id: KernelIdentity,
  spec: {
    batch: number;
    input: readonly number[];
    outChannels: number;
    channelOffset: number;
    tensors: { dy: string; dx: string };
  },
): TrainKernelSource {
  const [c, ...rest] = spec.input;
  const inner = count(rest);
  const total = spec.batch * c * inner;
  const bindings = [read("dy", spec.tensors.dy), write("dx", spec.tensors.dx)];
  const { code, dispatch } = elementwise(
    total,
    `  let p = i % INNER;
  let ch = (i / INNER) % C_IN;
  let n = i / (INNER * C_IN);
  dx[i] = dy[(n * C_OUT + C_OFFSET + ch) * INNER + p];`,
  );
  return {
    op: "concat.grad",
    wgsl: sections(
      header(id, "concat backward", [
        `dx ${shapeText([spec.batch, ...spec.input])} = channels [${spec.channelOffset}, ${spec.channelOffset + c}) of dy (${spec.outChannels} channels)`,
      ]),
      consts({
        C_IN: u32(c),
        C_OUT: u32(spec.outChannels),
        C_OFFSET: u32(spec.channelOffset),
        INNER: u32(inner),
      }),
      declare(bindings),
      code,
    ),
    entryPoint: "main",
    bindings,
    workgroupSize: [WORKGROUP, 1, 1],
    dispatch,
    flops: 0,
  };
}
