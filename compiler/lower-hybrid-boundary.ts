// lower-hybrid-boundary: where the hybrid plan's data-parallel trunk hands X to its model-parallel
// head (lower-hybrid.ts), and its gradient back.
//
// At the boundary, forward: each device receives the other's half of X and concatenates both halves
// (device 0's first) into its head input; backward: each device sends the other the half of its
// partial gradient that belongs to the other's examples, and adds the received half to its own:
// ∂L/∂X for its examples.
import { type Node, elementCount } from "./graph.ts";
import { type PlanEmitter, copyKernel, onDevice } from "./lower-hybrid-emit.ts";
import type { ScheduleStep } from "./plan.ts";

/** The boundary as lowerTrainingHybrid lowered both sides of it. */
export interface Boundary {
  /** X, the value the first dense layer reads (pool5), and the node that computes it. */
  boundary: string;
  boundaryNode: Node;
  /** Examples per device per run of the schedule. */
  half: number;
  /** The trunk plan's tensor that `name` aliases, else `name`. */
  broot: (name: string) => string;
  /** Declares device d's copy of trunk tensor `name`; its name. */
  trunkTensor: (name: string, d: number) => string;
  /** The head's input `X@bD` of device d, and its declared name with a prefix (`eval:`, `grad:`). */
  headInput: (d: number) => string;
  headIn: (prefix: string, d: number) => string;
}

/** The boundary's schedule steps: `gather` X into the head's inputs, `scatter` its gradient back. */
export function boundarySteps(emit: PlanEmitter, at: Boundary) {
  const { tensors, declare, glue } = emit;
  const { boundary, boundaryNode, half, broot, trunkTensor, headInput, headIn } = at;
  const perExample = elementCount(boundaryNode.shape);
  const halfElems = half * perExample;
  const halfBytes = halfElems * 4;
  /** Forward: X's halves → every device's head input (device 0's half first). */
  const gather = (prefix: string): ScheduleStep[] => {
    const steps: ScheduleStep[] = [];
    const own = [0, 1].map((d) => onDevice(broot(`${prefix}${boundary}`), d));
    for (const d of [0, 1]) trunkTensor(broot(`${prefix}${boundary}`), d);
    const peers = [0, 1].map((d) => onDevice(`${prefix}${boundary}@from${1 - d}`, d));
    for (const d of [0, 1]) {
      declare({ ...tensors.get(own[d])!, name: peers[1 - d], device: 1 - d, role: "activation" });
      delete tensors.get(peers[1 - d])!.aliasOf;
      delete tensors.get(peers[1 - d])!.replicaOf;
      steps.push({
        kind: "transfer",
        tensor: own[d],
        peer: peers[1 - d],
        from: d,
        to: 1 - d,
        bytes: halfBytes,
      });
    }
    for (const d of [0, 1]) {
      const halves = d === 0 ? [own[0], peers[0]] : [peers[1], own[1]];
      const body = `  if (i < ${halfElems}u) { y[i] = a[i]; } else { y[i] = b[i - ${halfElems}u]; }`;
      const name = `h_${prefix ? "eval_" : ""}gather_d${d}`;
      steps.push(
        glue(
          name,
          boundary,
          "batch.concat",
          d,
          halves,
          headIn(prefix, d),
          copyKernel("batch concat", ["a", "b"], 2 * halfElems, body),
          0,
        ),
      );
    }
    return steps;
  };
  /** Backward: each device's partial ∂L/∂X (whole batch) → ∂L/∂X of its own half. */
  const scatter = (): ScheduleStep[] => {
    const steps: ScheduleStep[] = [];
    const partial = (d: number) => `grad:${headInput(d)}`;
    const sent = [0, 1].map((d) => `grad:${headInput(d)}@half${1 - d}`);
    const recv = [0, 1].map((d) => onDevice(`grad:${boundary}@from${1 - d}`, d));
    for (const d of [0, 1]) {
      const shape = [half, ...boundaryNode.shape];
      declare({ name: sent[d], shape, dtype: "f32", role: "gradient", bytes: halfBytes, device: d });
      declare({ name: recv[1 - d], shape, dtype: "f32", role: "gradient", bytes: halfBytes, device: 1 - d });
      const offset = (1 - d) * halfElems;
      steps.push(
        glue(
          `h_grad_slice_d${d}`,
          boundary,
          "batch.slice",
          d,
          [partial(d)],
          sent[d],
          copyKernel("batch slice", ["x"], halfElems, `  y[i] = x[i + ${offset}u];`),
          0,
        ),
        { kind: "transfer", tensor: sent[d], peer: recv[1 - d], from: d, to: 1 - d, bytes: halfBytes },
      );
    }
    for (const d of [0, 1]) {
      const out = trunkTensor(broot(`grad:${boundary}`), d);
      const offset = d * halfElems;
      steps.push(
        glue(
          `h_grad_sum_d${d}`,
          boundary,
          "gradient.sum",
          d,
          [partial(d), recv[d]],
          out,
          copyKernel("batch gradient sum", ["x", "r"], halfElems, `  y[i] = x[i + ${offset}u] + r[i];`),
          halfElems,
        ),
      );
    }
    return steps;
  };
  return { gather, scatter };
}
