// What the forward fusion groups (fuse.ts) change in a training plan besides the anchors' kernels:
//  - which dropouts a group applies: its dropout epilogue only where that dropout is active in
//    training (an inactive one is an alias, as at inference);
//  - where a value the backward reads is no longer stored, and what stands in for it:
//      · a relu fused with the dropout after it: relu's derivative reads the dropout's output d.
//        Where the mask keeps a unit d = y/(1 − p), so d > 0 ⇔ y > 0; where it drops one, ∂L/∂y is
//        already 0 (the dropout backward's mask), so either test gives the same bits;
//      · an LRN fused into the max-pool after it: the pool's backward read the LRN's output only to
//        find each window's arg-max (wgsl/backward/pool.ts), so the fused forward kernel writes that
//        arg-max instead — the pool output's size, about a quarter of the LRN output's at stride 2
//        — and the backward's arg-max kernel is gone. The LRN's own backward reads its input and
//        ∂L/∂(its output) only (wgsl/backward/lrn.ts). Storing the LRN output as a second output
//        instead would save the LRN dispatch but keep the arg-max one, and write four times more;
//        the numbers are equal either way (the same lrn_at values, the same first-maximum rule).
import type { TrainingGraph } from "./autodiff.ts";
import type { Fusion } from "./fuse.ts";
import type { Node } from "./graph.ts";
import { STEP_UNIFORM } from "./lower-train-ops.ts";
import type { DropoutEpilogue } from "./wgsl/backward/elementwise.ts";
import type { TrainKernelSource } from "./wgsl/backward/util.ts";
import type { KernelIdentity } from "./wgsl/common.ts";
import { poolKernel } from "./wgsl/pool.ts";

export interface TrainingFusion {
  /** Whether `dropout` is applied in training (its group then applies the mask). */
  active(dropout: string): boolean;
  /** Saved value → the tensor the backward reads in its place, where fusion does not store it. */
  savedAs: Map<string, string>;
  /** A conv / dense anchor's fused dropout: the dropout layer's mask words (tg.dropout). */
  dropoutEpilogue(dropout: string): DropoutEpilogue;
}

export function trainingFusion(fusion: Fusion, tg: TrainingGraph): TrainingFusion {
  const activeSet = new Set(tg.dropout.filter((d) => d.active).map((d) => d.node));
  const active = (dropout: string) => activeSet.has(dropout);
  const hasDx = (node: string) =>
    tg.steps.some((s) => s.kind === "backward" && s.node === node && s.dx.length > 0);
  const savedAs = new Map<string, string>();
  for (const g of fusion.groups) {
    if (g.dropout && active(g.dropout.node) && g.epilogue) savedAs.set(g.epilogue.node, g.dropout.node);
    // the name lower-train-ops.ts poolGrad reads
    if (g.prologue && hasDx(g.anchor)) savedAs.set(g.prologue.node, `${g.anchor}:argmax`);
  }
  const dropoutEpilogue = (dropout: string) => {
    // tg.dropout as the lowering holds it when the kernel is emitted (placement's slices applied)
    const d = tg.dropout.find((x) => x.node === dropout);
    if (!d) throw new Error(`no dropout layer \`${dropout}\` in the training graph`);
    const { p, layer, perExample, offset, stride } = d;
    return { p, layer, perExample, offset, stride, step: STEP_UNIFORM };
  };
  return { active, savedAs, dropoutEpilogue };
}

/** An LRN + max-pool group's training forward kernel: the pool over lrn_at of the LRN's input. */
export function lrnPoolTrainKernel(
  id: KernelIdentity,
  spec: { batch: number; lrn: Node; pool: Node; argmax?: string },
): TrainKernelSource {
  const { lrn, pool } = spec;
  if (lrn.attrs.op !== "lrn" || pool.attrs.op !== "maxpool")
    throw new Error(`\`${lrn.name}\` + \`${pool.name}\` is not an LRN + max-pool group`);
  const { window, stride, pad } = pool.attrs;
  return poolKernel(id, {
    ...{ op: "maxpool", batch: spec.batch, input: lrn.shape, output: pool.shape, window, stride, pad },
    tensors: { x: lrn.inputs[0], y: pool.name, ...(spec.argmax ? { argmax: spec.argmax } : {}) },
    lrn: { layer: lrn.name, attrs: lrn.attrs },
  });
}
