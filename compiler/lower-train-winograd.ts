// Winograd F(2×2, 3×3) in the training step (wgsl/winograd.ts, winograd-plan.ts): a 3×3 stride-1
// convolution's forward, and its data gradient, which is itself a 3×3 stride-1 convolution of dy
// with the weights transposed per group and turned 180° (padding 2 − pad). The weights change every
// step, so their transforms are step kernels here, not the forward plan's once-per-upload ones; U, V
// and M are step tensors named after the layer. Each function emits nothing and returns false where
// Winograd does not apply, fit or pay: the caller then emits the direct kernel.
import type { NodeAttrs } from "./graph.ts";
import { convKernels, winogradPays } from "./lower-conv.ts";
import type { OpContext, Part } from "./lower-train-ops.ts";
import type { GradEpilogue } from "./wgsl/backward/util.ts";
import { type WinogradSpec, winogradApplies } from "./wgsl/winograd.ts";
import { winogradPlan } from "./wgsl/winograd-plan.ts";

type ConvAttrs = NodeAttrs & { op: "conv" };

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
