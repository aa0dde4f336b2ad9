// What a lowering needs to run one convolution with Winograd F(2×2, 3×3) (winograd.ts): the kernels
// in order and the scratch buffers they share, as plain data.
//
//   weights  U = G g Gᵀ        once per weight upload (inference); every step in training
//   per pass of images [n0, n0 + nb):
//     input   V = Bᵀ d B        x → V
//     gemm    M = U·V           U, V → M
//     output  y = Aᵀ M A + b    M → y (+ activation)
//
// V and M grow with the batch; a pass covers as many images as keep both within the binding limit
// (AlexNet's conv4 at batch 128 needs 154 MB of V in one pass, over lavapipe's 128 MiB), and the
// passes run one after the other on the same V and M. U does not depend on the batch.
import type { TrainKernelSource } from "./backward/util.ts";
import type { KernelIdentity } from "./common.ts";
import {
  type WinogradSpec,
  directFlops,
  winogradApplies,
  winogradGeometry,
  winogradInputKernel,
  winogradOutputKernel,
  winogradWeightKernel,
} from "./winograd.ts";
import { winogradGemmKernel, winogradGemmTiles } from "./winograd-gemm.ts";

export type WinogradTiles = Pick<WinogradSpec, "tilesPerInvocation" | "channelsPerInvocation">;

export type WinogradStage = "weights" | "input" | "gemm" | "output";

export interface WinogradKernel {
  stage: WinogradStage;
  /** The kernel's identity: the convolution's, its name suffixed by stage (and pass). */
  id: KernelIdentity;
  source: TrainKernelSource;
  /**
   * True for the weight transform: a forward plan runs it after every weight upload, not in the
   * schedule (a training step runs it every step, as its weights change).
   */
  once: boolean;
}

export interface WinogradScratch {
  /** The tensor name (spec.tensors.u / v / m). */
  name: string;
  bytes: number;
  /**
   * `weights`: U, kept while the weights are (written by the once kernel); `step`: V and M, written
   * by this convolution's input and gemm kernels (a training step's weight gradient may read V
   * later: lower-train-winograd.ts).
   */
  lifetime: "weights" | "step";
}

export interface WinogradPlan {
  /** In execution order: the weight transform, then input, gemm, output per pass. */
  kernels: WinogradKernel[];
  scratch: WinogradScratch[];
  /** Images per pass (the last pass may hold fewer) and the number of passes. */
  imagesPerPass: number;
  passes: number;
  /** 2 × the direct convolution's multiply-adds: the figure effective GFLOP/s are quoted against. */
  directFlops: number;
}

/**
 * GEMM tiles worth measuring for `spec` (the autotuner's candidates), the rule's choice first: tiles
 * per lane 4–12, channel blocks 8–32 where they divide the group and the part. On lavapipe at
 * AlexNet's conv3–5 the rule (8 tiles × 16 channels) was best or within noise of it.
 */
export function winogradTileCandidates(spec: WinogradSpec): WinogradTiles[] {
  const cog = spec.output[0] / spec.groups;
  const rule = winogradGemmTiles(spec);
  const out: WinogradTiles[] = [{}];
  for (const tiles of [4, 8, 12])
    for (const channels of [8, 16, 32]) {
      const divides = [cog, spec.outCount, spec.outBase].every((v) => v % channels === 0);
      const isRule = tiles === rule.tpi && channels === rule.ocb;
      if (divides && !isRule && tiles * channels <= 256)
        out.push({ tilesPerInvocation: tiles, channelsPerInvocation: channels });
    }
  return out;
}

/** Bytes of U, and of V and M for a pass of `images` images. */
export function winogradScratchBytes(spec: WinogradSpec, images: number) {
  const g = winogradGeometry({ ...spec, batchBase: 0, batchCount: Math.min(images, spec.batch) });
  return {
    u: 16 * spec.outCount * g.cig * 4,
    v: 16 * g.ci * g.p4 * 4,
    m: 16 * spec.outCount * g.p4 * 4,
  };
}

/**
 * The Winograd kernels and scratch of `spec` (its batchBase/batchCount are ignored: the plan chooses
 * the passes). Throws when the convolution is not 3×3 stride 1, or when U, or V and M for one image,
 * exceed `maxBindingBytes`: the caller then lowers the direct kernel instead.
 */
export function winogradPlan(
  id: KernelIdentity,
  spec: WinogradSpec,
  opts: { maxBindingBytes: number },
): WinogradPlan {
  if (!winogradApplies(spec)) throw new Error("winograd: needs a 3x3 stride-1 convolution");
  const fits = (images: number) => {
    const b = winogradScratchBytes(spec, images);
    return Math.max(b.u, b.v, b.m) <= opts.maxBindingBytes;
  };
  if (!fits(1)) throw new Error(`winograd: scratch for one image exceeds ${opts.maxBindingBytes} bytes`);
  // The fewest passes whose (equal, but for the last) share of the batch fits.
  let tries = 1;
  while (!fits(Math.ceil(spec.batch / tries))) tries++;
  const images = Math.ceil(spec.batch / tries);
  const passes = Math.ceil(spec.batch / images);
  const whole: WinogradSpec = { ...spec, batchBase: 0, batchCount: spec.batch };
  const named = (suffix: string): KernelIdentity => ({ ...id, name: `${id.name}_${suffix}` });
  const kernels: WinogradKernel[] = [
    { stage: "weights", id: named("wt"), source: winogradWeightKernel(named("wt"), whole), once: true },
  ];
  for (let k = 0; k < passes; k++) {
    const part: WinogradSpec = {
      ...spec,
      batchBase: k * images,
      batchCount: Math.min(images, spec.batch - k * images),
    };
    const at = passes > 1 ? String(k) : "";
    for (const [stage, suffix, make] of [
      ["input", "in", winogradInputKernel],
      ["gemm", "mm", winogradGemmKernel],
      ["output", "out", winogradOutputKernel],
    ] as const) {
      const kid = named(suffix + at);
      kernels.push({ stage, id: kid, source: make(kid, part), once: false });
    }
  }
  const bytes = winogradScratchBytes(spec, images);
  return {
    kernels,
    scratch: [
      { name: spec.tensors.u, bytes: bytes.u, lifetime: "weights" },
      { name: spec.tensors.v, bytes: bytes.v, lifetime: "step" },
      { name: spec.tensors.m, bytes: bytes.m, lifetime: "step" },
    ],
    imagesPerPass: images,
    passes,
    directFlops: directFlops(whole),
  };
}
