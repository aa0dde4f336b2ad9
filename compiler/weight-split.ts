// How a plan fits WebGPU's per-binding limit (maxStorageBufferBindingSize, 128 MiB on lavapipe):
// a weight too large for one binding is split by output rows into parts that each fit (AlexNet's fc6
// weight is 151 MB), and a batch whose activations do not fit runs as micro-batches. Shared by the
// forward, training and placed lowerings.
import { type Diagnostic, DiagnosticError, diag } from "./diagnostics.ts";
import { type Graph, type Node, type Param, elementCount } from "./graph.ts";

/** A contiguous run of a weight's output rows, bound as its own tensor when the weight is split. */
export interface WeightPart {
  tensor: string;
  rowBase: number;
  rowCount: number;
}

/**
 * Splits `param` by output rows (dim 0) into the fewest near-equal parts of at most
 * `maxBindingBytes`, named `<param>.part<j>`; AX3001 when one row alone is larger.
 */
export function splitWeightRows(
  param: Param,
  elementBytes: number,
  maxBindingBytes: number,
  span: Node["span"] | undefined,
): WeightPart[] {
  const rows = param.shape[0];
  const rowBytes = elementCount(param.shape.slice(1)) * elementBytes;
  const maxRows = Math.floor(maxBindingBytes / rowBytes);
  if (maxRows < 1) {
    const d: Diagnostic = diag(
      "AX3001",
      { tensor: `${param.name}[0]`, bytes: rowBytes, device: "device 0", limit: maxBindingBytes },
      span,
      { help: "one output row of this weight is already larger than a binding; it cannot be split further" },
    );
    throw new DiagnosticError(d);
  }
  let perPart = Math.ceil(rows / Math.ceil(rows / maxRows));
  // Keep parts a multiple of 4 rows where that still fits, so conv blocks of 4 channels never straddle parts.
  if (Math.ceil(perPart / 4) * 4 <= maxRows) perPart = Math.ceil(perPart / 4) * 4;
  const parts: WeightPart[] = [];
  for (let rowBase = 0, j = 0; rowBase < rows; rowBase += perPart, j++) {
    parts.push({ tensor: `${param.name}.part${j}`, rowBase, rowCount: Math.min(perPart, rows - rowBase) });
  }
  return parts;
}

/**
 * The examples per micro-batch for `batch`: `batch` itself when every per-example value (graph input
 * or node output, and so its gradient) fits a binding at that batch; otherwise the largest divisor of
 * `batch` whose tensors all fit. When even one example does not fit it returns `batch`, so that the
 * lowering raises AX3001 for the offending tensor as before.
 */
export function microBatchFor(
  graph: Graph,
  batch: number,
  maxBindingBytes: number,
  bytesPerElement = 4,
): number {
  const perExample = Math.max(
    ...graph.inputs.map((i) => elementCount(i.shape) * bytesPerElement),
    ...graph.nodes.map((n) => elementCount(n.shape) * bytesPerElement),
  );
  if (!Number.isInteger(batch) || batch < 1 || perExample * batch <= maxBindingBytes) return batch;
  const most = Math.floor(maxBindingBytes / perExample);
  if (most < 1) return batch;
  for (let b = Math.min(most, batch); b > 1; b--) if (batch % b === 0) return b;
  return 1;
}
