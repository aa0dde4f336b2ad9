// Parameters, velocities and gradients as the runtimes exchange them with callers: full tensors in
// PyTorch layout keyed by parameter name, whatever parts (`partOf`) and devices the plan split them
// into. Shared by the executor, the single-device trainer and the placed runtimes, so a bad file
// reads the same everywhere (AX4005) and the NaN scan blames layers in one order.
import { DiagnosticError, diag } from "../compiler/diagnostics.ts";
import { elementCount } from "../compiler/graph.ts";
import type { Plan, PlanTensor, PlanTraining } from "../compiler/plan.ts";

/** What a runtime offers to move named tensors in and out. */
export interface TensorAccess {
  readonly plan: Plan;
  /** The tensors holding `name`: itself, or its parts. */
  partsOf(name: string): PlanTensor[];
  write(t: PlanTensor, data: Float32Array): void;
  /** Whole tensors (parts reassembled), read in one submission per device. */
  readMany(names: string[]): Promise<Float32Array[]>;
}

/** Throws AX4005 (naming `file`) unless `values` holds each of `names` with its parameter's size. */
export function checkParamValues(
  plan: Plan,
  values: ReadonlyMap<string, Float32Array>,
  names: readonly string[],
  file: string,
): void {
  const problem = (text: string) => new DiagnosticError(diag("AX4005", { file, problem: text }, undefined));
  for (const name of names) {
    const param = plan.params.find((p) => p.name === name)!;
    const data = values.get(name);
    if (!data) throw problem(`missing parameter \`${name}\``);
    if (data.length !== elementCount(param.shape))
      throw problem(
        `\`${name}\` has ${data.length} values, expected ${elementCount(param.shape)} ([${param.shape.join(", ")}])`,
      );
  }
}

/** The slice of a full parameter tensor that part `t` holds. */
export function partOfValues(t: PlanTensor, whole: Float32Array): Float32Array {
  const offset = t.partOf?.offset ?? 0;
  return whole.subarray(offset, offset + elementCount(t.shape));
}

/** Checks, then writes full tensors keyed by parameter name into `tensorOf(param)` (or its parts). */
export function uploadByParam(
  io: TensorAccess,
  values: ReadonlyMap<string, Float32Array>,
  tensorOf: (param: string) => string,
  file: string,
  names: readonly string[],
): void {
  checkParamValues(io.plan, values, names, file);
  for (const name of names)
    for (const t of io.partsOf(tensorOf(name))) io.write(t, partOfValues(t, values.get(name)!));
}

/** Reads `tensorOf(param)` for each of `names`, keyed by parameter name. */
export async function readByParam(
  io: TensorAccess,
  names: readonly string[],
  tensorOf: (param: string) => string,
): Promise<Map<string, Float32Array>> {
  const values = await io.readMany(names.map(tensorOf));
  return new Map(names.map((n, i) => [n, values[i]]));
}

/** The trainer's state by kind: parameters, their momentum buffers, or their last gradients. */
export function readTrainingState(
  io: TensorAccess,
  training: PlanTraining,
  kind: "params" | "velocities" | "gradients",
): Promise<Map<string, Float32Array>> {
  if (kind === "params")
    return readByParam(
      io,
      io.plan.params.map((p) => p.name),
      (p) => p,
    );
  const map = training[kind];
  return readByParam(io, Object.keys(map), (p) => map[p]);
}

/**
 * The first layer holding a NaN/Inf after a step: activations in forward order, then gradients in
 * backward order, so the first place one appears in the schedule is the layer blamed. `layerName`
 * maps a plan layer to its source layer (a placed plan's tower copies).
 */
export async function firstNonFinite(
  io: Pick<TensorAccess, "readMany">,
  training: PlanTraining,
  layerName: (layer: string) => string = (l) => l,
): Promise<{ layer: string; kind: "activation" | "gradient" } | undefined> {
  const finite = (a: Float32Array) => a.every(Number.isFinite);
  const { layers } = training;
  const scans = [
    ...layers.map((l) => ({ layer: l.layer, kind: "activation" as const, tensors: l.activations })),
    ...[...layers]
      .reverse()
      .map((l) => ({ layer: l.layer, kind: "gradient" as const, tensors: l.gradients })),
  ];
  for (const scan of scans) {
    const values = await io.readMany(scan.tensors);
    if (!values.every(finite)) return { layer: layerName(scan.layer), kind: scan.kind };
  }
  return undefined;
}
