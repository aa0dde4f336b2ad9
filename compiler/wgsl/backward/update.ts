// The paper's update rule (Krizhevsky et al. 2012, §5), for one parameter tensor (or one part of a
// split one), element-wise:
//   v ← μ·v − λ·ε·w − ε·g
//   w ← w + v
// μ momentum and λ weight decay are baked in as constants; ε (the learning rate) comes from the step
// uniform so that a schedule can change it without recompiling; g is the batch-mean gradient.
// Written as the formula reads, left to right, so the host can reproduce it in f32.
import { WORKGROUP, consts, f32, header, sections, shapeText } from "../common.ts";
import {
  type KernelIdentity,
  type TrainKernelSource,
  declare,
  elementwise,
  read,
  uniform,
  write,
} from "./util.ts";

export function updateKernel(
  id: KernelIdentity,
  spec: {
    shape: readonly number[];
    momentum: number;
    weightDecay: number;
    tensors: { w: string; v: string; g: string; step: string };
  },
): TrainKernelSource {
  const total = spec.shape.reduce((a, b) => a * b, 1);
  const t = spec.tensors;
  const bindings = [write("w", t.w), write("v", t.v), read("g", t.g), uniform(t.step)];
  const { code, dispatch } = elementwise(
    total,
    `  let lr = step.lr;
  let v_next = MOMENTUM * v[i] - WEIGHT_DECAY * lr * w[i] - lr * g[i];
  v[i] = v_next;
  w[i] = w[i] + v_next;`,
  );
  return {
    op: "sgd.update",
    wgsl: sections(
      header(id, "sgd update", [
        `v ← μ·v − λ·ε·w − ε·g; w ← w + v over ${t.w} ${shapeText(spec.shape)}, μ = ${spec.momentum}, λ = ${spec.weightDecay}, ε from the step uniform`,
      ]),
      consts({ MOMENTUM: f32(spec.momentum), WEIGHT_DECAY: f32(spec.weightDecay) }),
      declare(bindings),
      code,
    ),
    entryPoint: "main",
    bindings,
    workgroupSize: [WORKGROUP, 1, 1],
    dispatch,
    flops: 6 * total,
  };
}
