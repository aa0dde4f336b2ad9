// Device memory for a plan's tensors on one device. Without a memory plan every root tensor gets its
// own buffer. With one (compiler/memory.ts, attached by compiler/memory-bind.ts) the device gets the
// plan's arenas and every root tensor a range of one — the tensors whose lifetimes never overlap
// share bytes, so a training plan needs its liveness peak rather than the sum of its tensors.
// Kernels then bind ranges ({ buffer, offset, size }), and host writes and readbacks use the offset.
import { DiagnosticError, diag } from "../compiler/diagnostics.ts";
import type { Plan, PlanTensor } from "../compiler/plan.ts";
import type { OpenDevice } from "./devices.ts";

/** Where a root tensor's bytes are: a buffer and the range of it the tensor owns. */
export interface TensorRange {
  buffer: GPUBuffer;
  offset: number;
  size: number;
}

export interface TensorMemory {
  /** Root tensor → its range (an alias resolves to its root first). */
  ranges: Map<string, TensorRange>;
  buffers: GPUBuffer[];
  /** Bytes of every buffer created: what the plan costs the device. */
  allocatedBytes: number;
  /** Whether tensors share memory: after a run, only pinned tensors (parameters, optimizer state,
   * inputs and outputs) still hold their values; temporaries may have been overwritten. */
  shared: boolean;
}

const align4 = (n: number) => Math.ceil(n / 4) * 4;
const STORAGE = () => GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC;
const UNIFORM = () => GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC;

/** Creates the buffers of `plan`'s tensors on `dev` (the caller checks the out-of-memory scope). */
export function allocateTensors(dev: OpenDevice, plan: Plan): TensorMemory {
  const { device } = dev;
  const ranges = new Map<string, TensorRange>();
  const buffers: GPUBuffer[] = [];
  const create = (label: string, size: number, usage: number) => {
    const buffer = device.createBuffer({ label, size, usage });
    buffers.push(buffer);
    return buffer;
  };
  const memory = plan.memory?.devices.find((d) => d.device === dev.index);
  const roots = plan.tensors.filter((t) => t.device === dev.index && !t.aliasOf);
  if (!memory) {
    for (const t of roots) {
      const size = align4(t.bytes);
      ranges.set(t.name, {
        buffer: create(t.name, size, t.role === "uniform" ? UNIFORM() : STORAGE()),
        offset: 0,
        size,
      });
    }
    return { ranges, buffers, allocatedBytes: buffers.reduce((a, b) => a + b.size, 0), shared: false };
  }
  const arenas = memory.arenas.map((a) =>
    create(
      `arena ${a.index} (${a.lane}) of device ${a.device}`,
      Math.max(4, a.bytes),
      a.lane === "uniform" ? UNIFORM() : STORAGE(),
    ),
  );
  const placed = new Map(memory.placements.map((p) => [p.tensor, p]));
  for (const t of roots) {
    const p = placed.get(t.name);
    if (!p)
      throw new DiagnosticError(
        diag("AX9001", { message: `the memory plan has no place for tensor \`${t.name}\`` }, undefined),
      );
    ranges.set(t.name, { buffer: arenas[p.arena], offset: p.offset, size: align4(t.bytes) });
  }
  return { ranges, buffers, allocatedBytes: buffers.reduce((a, b) => a + b.size, 0), shared: true };
}

/** The range holding tensor `t`: its root's, or for a view (`aliasOffset`) its part of the root's. */
export function rangeOf(memory: TensorMemory, t: PlanTensor): TensorRange | undefined {
  return viewRange(memory.ranges.get(t.aliasOf ?? t.name), t);
}

/** `t`'s range in `buffer`, its root's own buffer (one buffer per root tensor, no memory plan). */
export function bufferRange(buffer: GPUBuffer, t: PlanTensor): TensorRange {
  return viewRange({ buffer, offset: 0, size: buffer.size }, t)!;
}

/** `root`, narrowed to view `t` when `t` is one (an alias with `aliasOffset`). */
export function viewRange(root: TensorRange | undefined, t: PlanTensor): TensorRange | undefined {
  if (!root || t.aliasOffset === undefined) return root;
  return { buffer: root.buffer, offset: root.offset + t.aliasOffset, size: align4(t.bytes) };
}
