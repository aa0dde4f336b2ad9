// The forward plan's input, activation and parameter tensors on its one device. Each must fit one
// binding (maxBindingBytes), or the plan is refused (AX3001), except a conv/dense weight, which is
// split by output rows (weight-split.ts). compiler/lower.ts records what these return.
import { type Code, type Diagnostic, DiagnosticError, diag } from "./diagnostics.ts";
import { type Graph, type Node, elementCount } from "./graph.ts";
import type { PlanTensor } from "./plan.ts";
import { type WeightPart, splitWeightRows } from "./weight-split.ts";

/** How and where the forward plan stores its tensors. */
export interface TensorStorage {
  /** Examples per run: every activation is [batch, ...]. */
  batch: number;
  maxBindingBytes: number;
  dtype: "f32" | "f16";
  /** Bytes per stored element. */
  elementBytes: number;
  device: number;
}

/** Bytes per stored element. */
export function elementBytes(storage: TensorStorage["dtype"] | undefined): number {
  return storage === "f16" ? 2 : 4;
}

function fail(
  code: Code,
  args: Record<string, string | number>,
  span: Node["span"] | undefined,
  help?: string,
): never {
  const d: Diagnostic = diag(code, args, span, help ? { help } : {});
  throw new DiagnosticError(d);
}

/** An input/activation tensor, refusing one that cannot be bound (AX3001). */
export function activationTensor(
  s: TensorStorage,
  name: string,
  shape: number[],
  role: "input" | "activation",
  span: Node["span"] | undefined,
  aliasOf?: string,
): PlanTensor {
  const full = [s.batch, ...shape];
  const bytes = elementCount(full) * s.elementBytes;
  if (bytes > s.maxBindingBytes && aliasOf === undefined) {
    const perExample = elementCount(shape) * s.elementBytes;
    fail(
      "AX3001",
      { tensor: name, bytes, device: `device ${s.device}`, limit: s.maxBindingBytes },
      span,
      perExample > s.maxBindingBytes
        ? `\`${name}\` holds ${perExample} bytes per example: even one example does not fit`
        : `\`${name}\` holds ${perExample} bytes per example: a batch of at most ${Math.floor(s.maxBindingBytes / perExample)} fits`,
    );
  }
  return {
    name,
    shape: full,
    dtype: s.dtype,
    role,
    bytes,
    device: s.device,
    ...(aliasOf ? { aliasOf } : {}),
  };
}

/** Every parameter becomes a tensor; a conv/dense weight over the limit becomes row parts. */
export function paramTensors(
  graph: Graph,
  s: TensorStorage,
): { tensors: PlanTensor[]; weightParts: Map<string, WeightPart[]> } {
  const tensors: PlanTensor[] = [];
  const weightParts = new Map<string, WeightPart[]>();
  const splittable = new Set<string>();
  for (const node of graph.nodes) {
    if (node.attrs.op === "conv" || node.attrs.op === "dense") {
      const weight = node.params.find((p) => p.endsWith(".weight"));
      if (weight) splittable.add(weight);
    }
  }
  for (const param of graph.params) {
    const bytes = elementCount(param.shape) * s.elementBytes;
    const base = { shape: param.shape, dtype: s.dtype, role: "param" as const, device: s.device };
    if (bytes <= s.maxBindingBytes) {
      tensors.push({ name: param.name, bytes, ...base });
      continue;
    }
    const span = graph.nodes.find((n) => n.name === param.layer)?.span;
    if (!splittable.has(param.name)) {
      fail(
        "AX3001",
        { tensor: param.name, bytes, device: `device ${s.device}`, limit: s.maxBindingBytes },
        span,
      );
    }
    const parts = splitWeightRows(param, s.elementBytes, s.maxBindingBytes, span);
    const rowElements = elementCount(param.shape.slice(1));
    for (const part of parts) {
      const shape = [part.rowCount, ...param.shape.slice(1)];
      tensors.push({
        name: part.tensor,
        bytes: elementCount(shape) * s.elementBytes,
        ...base,
        shape,
        partOf: { tensor: param.name, offset: part.rowBase * rowElements },
      });
    }
    weightParts.set(param.name, parts);
  }
  return { tensors, weightParts };
}
