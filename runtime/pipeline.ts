// Building one kernel of a plan on its device: the compute pipeline and its bind group. Shared by
// the single-device executor and trainer and the two-device runtime, so a WGSL rejection reads the
// same everywhere: AX4001 naming the kernel and layer, with the compiler's file:line:column.
import { DiagnosticError, diag } from "../compiler/diagnostics.ts";
import type { PlanKernel } from "../compiler/plan.ts";
import type { OpenDevice } from "./devices.ts";

export interface KernelStep {
  kernel: PlanKernel;
  pipeline: GPUComputePipeline;
  bindGroup: GPUBindGroup;
}

export const messageOf = (e: unknown): string => (e instanceof Error ? e.message : String(e));

/**
 * Compiles `kernel` on `dev` and binds its tensors. `bufferFor` resolves a binding's tensor to the
 * buffer (or buffer range, for an arena) holding it on this device (aliases to their root), or
 * undefined when it is not there.
 */
export async function buildKernelStep(
  dev: OpenDevice,
  kernel: PlanKernel,
  code: string | undefined,
  bufferFor: (tensor: string) => GPUBufferBinding | undefined,
): Promise<KernelStep> {
  const { device } = dev;
  const reject = (message: string) =>
    new DiagnosticError(diag("AX4001", { kernel: kernel.name, layer: kernel.layer, message }, undefined));
  if (code === undefined) throw reject("the plan has no WGSL for it");

  device.pushErrorScope("validation");
  const module = device.createShaderModule({ label: kernel.file, code });
  const pending = device.createComputePipelineAsync({
    label: kernel.name,
    layout: "auto",
    compute: { module, entryPoint: kernel.entryPoint },
  });
  const scope = device.popErrorScope();
  let pipeline: GPUComputePipeline;
  try {
    pipeline = await pending;
    const error = await scope;
    if (error) throw new Error(error.message);
  } catch (e) {
    // The compilation messages carry line:column; the rejection alone only says "invalid module".
    const info = await module.getCompilationInfo().catch(() => undefined);
    const located = (info?.messages ?? [])
      .filter((m) => m.type === "error")
      .map((m) => `${kernel.file}:${m.lineNum}:${m.linePos}: ${m.message}`);
    throw reject(located.length > 0 ? located.join("; ") : messageOf(e));
  }

  device.pushErrorScope("validation");
  const entries: GPUBindGroupEntry[] = kernel.bindings.map((b) => {
    const resource = bufferFor(b.tensor);
    if (!resource) throw reject(`binding ${b.binding}: tensor \`${b.tensor}\` is not on ${dev.label}`);
    return { binding: b.binding, resource };
  });
  const bindGroup = device.createBindGroup({
    label: kernel.name,
    layout: pipeline.getBindGroupLayout(0),
    entries,
  });
  const error = await device.popErrorScope();
  if (error) throw reject(`bind group: ${error.message}`);
  return { kernel, pipeline, bindGroup };
}
