// Winograd F(2×2, 3×3) in the training step (wgsl/winograd.ts, winograd-plan.ts) for a 3×3 stride-1
// convolution: its forward; its data gradient, itself a 3×3 stride-1 convolution of dy with the
// weights transposed per group and turned 180° (padding 2 − pad); and its weight gradient
// (wgsl/backward/winograd-wgrad.ts). The weights change every step, so their transforms are step
// kernels here, not the forward plan's once-per-upload ones; the scratch (U, V, M, W, Z) are step
// tensors named after the layer or, for U, the weight. Where the forward transformed the whole batch
// in one pass, the weight gradient reads its V, which then lives from the forward into the backward
// (more peak memory under a packed memory plan, one kernel less per step). Each function emits
// nothing and returns false where Winograd does not apply, fit or pay: the caller then emits the
// direct kernel.
import { DiagnosticError, diag } from "./diagnostics.ts";
import type { NodeAttrs } from "./graph.ts";
import { convKernels, winogradPays } from "./lower-conv.ts";
import type { OpContext, Part } from "./lower-train-ops.ts";
import type { GradEpilogue } from "./wgsl/backward/util.ts";
import {
  winogradDyKernel,
  winogradWgradGemmKernel,
  winogradWgradOutputKernel,
  winogradWgradScratchBytes,
} from "./wgsl/backward/winograd-wgrad.ts";
import { type WinogradSpec, winogradApplies, winogradInputKernel } from "./wgsl/winograd.ts";
import { winogradPlan } from "./wgsl/winograd-plan.ts";

type ConvAttrs = NodeAttrs & { op: "conv" };

function internal(message: string, c: OpContext): DiagnosticError {
  return new DiagnosticError(diag("AX9001", { message }, c.node.span));
}

/**
 * A conv part's forward, as lower-conv.ts would choose it for inference. Not where a fused dropout
 * follows: the output transform has no mask epilogue.
 */
export function winogradForward(
  attrs: ConvAttrs,
  c: OpContext,
  part: Part,
  tensors: { x: string; w: string; b?: string; y: string },
  partIndex: number | undefined,
): boolean {
  if (!c.winograd || c.dropout) return false;
  const name = partIndex === undefined ? c.node.name : `${c.node.name}_p${partIndex}`;
  const context = { batch: c.batch, maxBindingBytes: c.maxBindingBytes, winograd: true, input: c.inShape };
  const conv = convKernels({ ...context, tiles: c.tiles }, { ...c.id, name }, c.node, attrs, part, {
    tensors,
    activation: c.activation,
  });
  if (conv.kernels.length === 1) return false; // the direct kernel: emitted by the caller, with its dropout
  for (const t of conv.tensors) c.add(t.name, t.shape, "activation");
  if (conv.wholeBatchV) c.wholeBatchV.set(part.tensor, conv.wholeBatchV);
  for (const k of conv.kernels) c.emit(`fwd_${k.name.slice(name.length + 1)}`, k.source);
  return true;
}

/**
 * ∂L/∂x of a conv whose weight is one part (a split weight's parts each add their share to dx, which
 * the output transform does not do), the layer below's activation derivative folded into the store.
 */
export function winogradDataGrad(
  attrs: ConvAttrs,
  c: OpContext,
  part: Part,
  t: { dy: string; dx: string; fold?: GradEpilogue },
): boolean {
  if (!c.winograd || part.rowBase !== 0 || part.rowCount !== c.node.shape[0]) return false;
  if (!winogradApplies(attrs) || !winogradPays(c.batch, c.inShape)) return false;
  const { top, bottom, left, right } = attrs.pad;
  if (Math.max(top, bottom, left, right) > 2) return false; // the gradient's padding 2 − pad would be negative
  const name = `${c.node.name}_dgrad`;
  const spec: WinogradSpec = {
    ...{ batch: c.batch, input: c.node.shape, output: c.inShape, groups: attrs.groups },
    ...{ kernel: [3, 3], stride: [1, 1], outBase: 0, outCount: c.inShape[0] },
    pad: { top: 2 - top, bottom: 2 - bottom, left: 2 - left, right: 2 - right },
    tensors: {
      ...{ x: t.dy, w: part.tensor, y: t.dx },
      ...{ u: `${part.tensor}.winograd_dgrad`, v: `${name}.winograd_v`, m: `${name}.winograd_m` },
    },
    transposedWeights: true,
    fold: t.fold,
    gradient: "dgrad",
  };
  let plan;
  try {
    plan = winogradPlan({ ...c.id, name }, spec, { maxBindingBytes: c.maxBindingBytes });
  } catch {
    return false; // one image's scratch exceeds a binding
  }
  for (const s of plan.scratch) c.add(s.name, [s.bytes / 4], "activation");
  for (const k of plan.kernels) c.emit(`dgrad_${k.id.name.slice(name.length + 1)}`, k.source);
  return true;
}

/**
 * ∂L/∂w of a conv whose weight is one part, and its bias gradient `db` where fusion folds it into
 * the weight gradient (here the GEMM's). All images in one pass: where V, W or Z would exceed a
 * binding, the direct kernel.
 */
export function winogradWeightGrad(
  attrs: ConvAttrs,
  c: OpContext,
  part: Part,
  t: { x: string; dy: string; dw: string; db?: string },
): boolean {
  if (!c.winograd || part.rowBase !== 0 || part.rowCount !== c.node.shape[0]) return false;
  if (!winogradApplies(attrs) || !winogradPays(c.batch, c.node.shape)) return false;
  const name = `${c.node.name}_wgrad`;
  const spec: WinogradSpec = {
    ...{ batch: c.batch, input: c.inShape, output: c.node.shape, groups: attrs.groups },
    ...{ kernel: [3, 3], stride: [1, 1], pad: attrs.pad, outBase: 0, outCount: c.node.shape[0] },
    tensors: {
      ...{ x: t.x, y: t.dy, w: t.dw, b: t.db },
      ...{ v: `${name}.winograd_v`, m: `${name}.winograd_w`, u: `${name}.winograd_z` },
    },
    gradient: "wgrad",
  };
  let bytes;
  try {
    bytes = winogradWgradScratchBytes(spec);
  } catch {
    return false; // no Winograd geometry for this shape
  }
  if (Math.max(bytes.v, bytes.m, bytes.u) > c.maxBindingBytes) return false;
  // Where the forward ran as Winograd in one pass, its V holds every image's Bᵀ x B, laid out as
  // this spec's: it is read, not recomputed.
  const forwardV = c.wholeBatchV.get(part.tensor);
  if (forwardV !== undefined && c.bytesOf(forwardV) !== bytes.v)
    throw internal(`${forwardV} holds ${c.bytesOf(forwardV)} bytes; the weight gradient reads ${bytes.v}`, c);
  const reuse = forwardV !== undefined;
  if (reuse) spec.tensors.v = forwardV;
  else c.add(spec.tensors.v, [bytes.v / 4], "activation");
  c.add(spec.tensors.m, [bytes.m / 4], "activation");
  c.add(spec.tensors.u, [bytes.u / 4], "activation");
  const id = { ...c.id, name };
  if (!reuse) c.emit("wgrad_in", winogradInputKernel(id, spec));
  c.emit("wgrad_dy", winogradDyKernel(id, spec));
  c.emit("wgrad_mm", winogradWgradGemmKernel(id, spec));
  c.emit("wgrad_out", winogradWgradOutputKernel(id, spec));
  return true;
}
