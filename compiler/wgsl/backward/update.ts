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
    /**
     * A micro-batched plan: the step is K runs of the schedule, each g one micro-batch's share of the
     * batch-mean gradient. The uniform's `micro` word says where this run is: bit 0 set = not the first
     * micro-step, bit 1 set = not the last (0 = a whole step). The first applies v ← μ·v − λ·ε·w − ε·g,
     * later ones v ← v − ε·g, and only the last w ← w + v: the same update as one big batch, summed in
     * another order.
     */
    micro?: boolean;
    /** A fused update over a flat arena: the parameters it covers, one header line each. */
    covers?: readonly string[];
  },
): TrainKernelSource {
  const total = spec.shape.reduce((a, b) => a * b, 1);
  const t = spec.tensors;
  const bindings = [write("w", t.w), write("v", t.v), read("g", t.g), uniform(t.step)];
  const { code, dispatch } = elementwise(
    total,
    spec.micro
      ? `  let lr = step.lr;
  var v_next: f32;
  if ((step.micro & 1u) == 0u) {
    v_next = MOMENTUM * v[i] - WEIGHT_DECAY * lr * w[i] - lr * g[i];
  } else {
    v_next = v[i] - lr * g[i];
  }
  v[i] = v_next;
  if ((step.micro & 2u) == 0u) { w[i] = w[i] + v_next; }`
      : `  let lr = step.lr;
  let v_next = MOMENTUM * v[i] - WEIGHT_DECAY * lr * w[i] - lr * g[i];
  v[i] = v_next;
  w[i] = w[i] + v_next;`,
  );
  return {
    // A distinct op, so that a plan built from micro-batched updates can be recognised (plan.ts).
    op: spec.micro ? "sgd.update.micro" : "sgd.update",
    wgsl: sections(
      header(id, "sgd update", [
        `v ← μ·v − λ·ε·w − ε·g; w ← w + v${spec.micro ? " accumulated over micro-steps" : ""} over ${t.w} ${shapeText(spec.shape)}, μ = ${spec.momentum}, λ = ${spec.weightDecay}, ε from the step uniform`,
        ...(spec.covers?.length
          ? [
              "one kernel for every parameter of the device, each a view into the arena:",
              ...spec.covers.map((c) => `  ${c}`),
            ]
          : []),
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
