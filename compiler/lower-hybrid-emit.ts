// lower-hybrid-emit: the tensors, kernels and WGSL a hybrid plan (lower-hybrid.ts) is assembled
// into. Its trunk, head and boundary all declare into one table, so that a tensor two of them declare
// differently is an internal error rather than one silently replacing the other.
import { DiagnosticError, diag } from "./diagnostics.ts";
import type { PlanKernel, PlanTensor, ScheduleStep } from "./plan.ts";
import { elementwiseMain } from "./wgsl/common.ts";

export function internal(message: string): DiagnosticError {
  return new DiagnosticError(diag("AX9001", { message }, undefined));
}

const canonical = (t: PlanTensor) => JSON.stringify(Object.entries(t).sort(([a], [b]) => (a < b ? -1 : 1)));
/** Device d's copy of trunk tensor X (device 0 keeps the plain name), as in lowerTrainingData. */
export const onDevice = (name: string, d: number) => (d === 0 ? name : `${name}@dev${d}`);

/** A copy kernel over `total` elements: bindings in order, `body` indexes them (WGSL). */
export function copyKernel(what: string, reads: string[], total: number, body: string) {
  const { code, dispatch } = elementwiseMain(total, body);
  const decls = [
    ...reads.map((r, i) => `@group(0) @binding(${i}) var<storage, read> ${r}: array<f32>;`),
    `@group(0) @binding(${reads.length}) var<storage, read_write> y: array<f32>;`,
  ];
  return { wgsl: `// alexc kernel (${what})\n${decls.join("\n")}\n\n${code}`, dispatch };
}

/** The plan under construction, and the glue kernels lowerTrainingHybrid adds to it. */
export function planEmitter() {
  const kernels: PlanKernel[] = [];
  const wgsl: Record<string, string> = {};
  const tensors = new Map<string, PlanTensor>();
  const declare = (t: PlanTensor) => {
    const had = tensors.get(t.name);
    if (had && canonical(had) !== canonical(t))
      throw internal(`hybrid placement declared tensor \`${t.name}\` twice, differently`);
    tensors.set(t.name, t);
  };
  const dispatch = (kernel: string): ScheduleStep => ({ kind: "dispatch", kernel });
  const glue = (
    name: string,
    layer: string,
    op: string,
    d: number,
    reads: string[],
    out: string,
    k: { wgsl: string; dispatch: [number, number, number] },
    flops: number,
  ): ScheduleStep => {
    kernels.push({
      name,
      file: `kernels/${name}.wgsl`,
      layer,
      op,
      group: [layer],
      device: d,
      entryPoint: "main",
      bindings: [
        ...reads.map((tensor, binding) => ({ binding, tensor, access: "read" as const })),
        { binding: reads.length, tensor: out, access: "read_write" as const },
      ],
      workgroupSize: [64, 1, 1],
      dispatch: k.dispatch,
      flops,
    });
    wgsl[name] = k.wgsl;
    return dispatch(name);
  };
  return { kernels, wgsl, tensors, declare, dispatch, glue };
}

export type PlanEmitter = ReturnType<typeof planEmitter>;
