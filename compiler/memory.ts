// memory: Plan → MemoryPlan. Liveness over each device's schedule, every root tensor placed at an
// aligned offset in one of its device's arenas, and the peak set against the liveness lower bound.
//
// compiler/memory-liveness.ts computes each root tensor's lifetime over one run of [schedule,
// evalSchedule] and the pinned tensors (parameters, optimizer state, whatever the host reads or
// writes, whatever carries state into a run); compiler/memory-pack.ts shares buffers in place and
// packs them. Three lanes of arenas per device, each arena at most maxBufferBytes:
//  - `persistent`: the pinned storage tensors, packed end to end (they never share);
//  - `temporary`: everything else, packed by lifetime;
//  - `uniform`: tensors bound as `var<uniform>` (WebGPU rejects a buffer bound as uniform and as
//    writable storage in one dispatch, which every kernel reading the step uniform does).
// The result is plain data (memoryPlanSchema); compiler/memory-check.ts checks one independently.
//
// What the runtime must honour when it binds arena ranges (measured with Dawn on lavapipe):
//  - a buffer bound as read-only storage and as writable storage in one dispatch is a validation
//    error even when the ranges are disjoint, so kernels bound to arenas must declare every storage
//    binding `read_write` (disjoint writable ranges of one buffer are allowed);
//  - two overlapping writable bindings are an error ("writable storage buffer binding aliasing"), so
//    an in-place kernel must bind its shared buffer once (or plan with `inPlace: false`);
//  - offsets are multiples of `alignment` (minStorageBufferOffsetAlignment, 256 by default).
import { z } from "zod";
import { DiagnosticError, diag, type Diagnostic } from "./diagnostics.ts";
import { internal, liveness, pinnedRoots, rootOf } from "./memory-liveness.ts";
import { type Block, type Spot, lowerBound, pack, shareInPlace } from "./memory-pack.ts";
import type { Plan } from "./plan.ts";

export { liveness, pinnedRoots, rootOf, type Liveness, type Uses } from "./memory-liveness.ts";
export { IN_PLACE_OPS } from "./memory-pack.ts";

/** WebGPU's default minStorageBufferOffsetAlignment (and minUniformBufferOffsetAlignment). */
export const DEFAULT_ALIGNMENT = 256;

const int = z.number().int().nonnegative();

export const LANES = ["persistent", "temporary", "uniform"] as const;
export type Lane = (typeof LANES)[number];

export const arenaSchema = z.object({
  device: int,
  /** Index among the device's arenas (the arena field of a placement). */
  index: int,
  lane: z.enum(LANES),
  bytes: int,
});

export const tensorPlacementSchema = z.object({
  /** A root tensor of the plan (an alias is bound at its root's offset). */
  tensor: z.string(),
  arena: int,
  offset: int,
  /** The tensor's own size: the binding's size. */
  bytes: int,
  /** Live at every position, sharing memory with nothing. */
  pinned: z.boolean(),
  /** First and last position whose step uses the tensor; absent when no step does. */
  live: z.tuple([int, int]).optional(),
});

export const inPlaceSchema = z.object({
  /** The output written over `sharesWith`, the kernel's input, by `kernel`. */
  tensor: z.string(),
  sharesWith: z.string(),
  kernel: z.string(),
});

export const deviceMemorySchema = z.object({
  device: int,
  arenas: z.array(arenaSchema),
  placements: z.array(tensorPlacementSchema),
  stats: z.object({
    /** The memory the plan needs: the sum of the device's arenas. */
    peakBytes: int,
    /** Every root tensor in its own buffer (sizes aligned). */
    noReuseBytes: int,
    /** The most bytes live at any one position (after in-place sharing): no packing needs less. */
    lowerBoundBytes: int,
    /** Of the peak, the pinned tensors (persistent and uniform lanes). */
    pinnedBytes: int,
    inPlace: z.array(inPlaceSchema),
  }),
});

export const memoryPlanSchema = z.object({
  format: z.literal("alexc-memory"),
  version: z.literal(1),
  alignment: z.number().int().positive(),
  maxBindingBytes: z.number().int().positive(),
  maxBufferBytes: z.number().int().positive(),
  /** Positions 0 … scheduleSteps − 1 are `schedule`, the rest (up to `positions`) the eval schedule. */
  scheduleSteps: int,
  positions: int,
  devices: z.array(deviceMemorySchema),
});

export type Arena = z.infer<typeof arenaSchema>;
export type TensorPlacement = z.infer<typeof tensorPlacementSchema>;
export type InPlace = z.infer<typeof inPlaceSchema>;
export type DeviceMemory = z.infer<typeof deviceMemorySchema>;
export type MemoryPlan = z.infer<typeof memoryPlanSchema>;

export interface MemoryLimits {
  /** maxStorageBufferBindingSize: no tensor may be larger (the lowerings guarantee it; checked). */
  maxBindingBytes: number;
  /** maxBufferSize: no arena is larger. */
  maxBufferBytes: number;
  /** Offsets are multiples of this; default 256. */
  alignment?: number;
  /** The device's memory budget: a plan whose peak exceeds it on some device fails with AX3007. */
  deviceMemoryBytes?: number;
}

export interface MemoryOptions {
  /** Share the buffers of element-wise kernels' inputs and outputs (default true). */
  inPlace?: boolean;
  /** More tensors to keep readable after a run (pinned), e.g. for debugging. */
  pin?: readonly string[];
}

const alignUp = (n: number, alignment: number) => Math.ceil(Math.max(n, 1) / alignment) * alignment;

/** Plans the memory of every device of `plan` (see the file comment). */
export function planMemory(plan: Plan, limits: MemoryLimits, options: MemoryOptions = {}): MemoryPlan {
  const alignment = limits.alignment ?? DEFAULT_ALIGNMENT;
  const { maxBindingBytes, maxBufferBytes } = limits;
  if (!Number.isInteger(alignment) || alignment < 4 || alignment % 4 !== 0)
    throw internal(`memory alignment must be a positive multiple of 4, got ${alignment}`);
  if (!(maxBufferBytes >= alignment))
    throw internal(`maxBufferBytes ${maxBufferBytes} is below the alignment`);
  const live = liveness(plan);
  const pinned = pinnedRoots(plan, live, options.pin);
  const tensors = new Map(plan.tensors.map((t) => [t.name, t]));
  const uniformBound = new Set(
    plan.kernels.flatMap((k) =>
      k.bindings.filter((b) => b.access === "uniform").map((b) => rootOf(tensors, b.tensor)),
    ),
  );

  const tooBig: Diagnostic[] = [];
  const buffers = new Map<string, Block>();
  for (const t of plan.tensors) {
    if (t.aliasOf !== undefined) continue;
    const limit = Math.min(maxBindingBytes, maxBufferBytes);
    if (t.bytes > limit)
      tooBig.push(
        diag(
          "AX3001",
          { tensor: t.name, bytes: t.bytes, device: deviceLabel(plan, t.device), limit },
          undefined,
        ),
      );
    const u = live.uses.get(t.name);
    const isPinned = pinned.has(t.name);
    buffers.set(t.name, {
      tensors: [t.name],
      bytes: t.bytes,
      size: alignUp(t.bytes, alignment),
      start: isPinned || !u ? 0 : u.first,
      end: isPinned || !u ? Math.max(0, live.steps.length - 1) : u.last,
      pinned: isPinned,
      lane:
        uniformBound.has(t.name) || t.role === "uniform" ? "uniform" : isPinned ? "persistent" : "temporary",
      unused: !isPinned && !u,
    });
  }
  if (tooBig.length) throw new DiagnosticError(tooBig);
  const bufferOf = new Map(buffers);
  const inPlace = options.inPlace === false ? [] : shareInPlace(plan, live, buffers, bufferOf);

  const devices = plan.devices.map(({ index: device }): DeviceMemory => {
    const mine = [...buffers.values()].filter((b) => tensors.get(b.tensors[0])!.device === device);
    const arenas: Arena[] = [];
    const spots = new Map<Block, Spot>();
    for (const lane of LANES) {
      const inLane = mine.filter((b) => b.lane === lane);
      if (inLane.length === 0) continue;
      const { sizes, at } = pack(inLane, maxBufferBytes);
      const base = arenas.length;
      sizes.forEach((bytes, i) => arenas.push({ device, index: base + i, lane, bytes }));
      for (const [b, spot] of at) spots.set(b, { arena: base + spot.arena, offset: spot.offset });
    }
    const placements: TensorPlacement[] = [];
    for (const b of mine) {
      const spot = spots.get(b)!;
      for (const name of b.tensors) {
        const u = live.uses.get(name);
        placements.push({
          tensor: name,
          arena: spot.arena,
          offset: spot.offset,
          bytes: tensors.get(name)!.bytes,
          pinned: b.pinned,
          ...(u ? { live: [u.first, u.last] as [number, number] } : {}),
        });
      }
    }
    const order = new Map(plan.tensors.map((t, i) => [t.name, i]));
    placements.sort((a, b) => order.get(a.tensor)! - order.get(b.tensor)!);
    const peakBytes = arenas.reduce((s, a) => s + a.bytes, 0);
    const noReuseBytes = plan.tensors
      .filter((t) => t.device === device && t.aliasOf === undefined)
      .reduce((s, t) => s + alignUp(t.bytes, alignment), 0);
    const pinnedBytes = arenas.filter((a) => a.lane !== "temporary").reduce((s, a) => s + a.bytes, 0);
    const mineNames = new Set(mine.flatMap((b) => b.tensors));
    return {
      device,
      arenas,
      placements,
      stats: {
        peakBytes,
        noReuseBytes,
        lowerBoundBytes: lowerBound(mine, live.steps.length),
        pinnedBytes,
        inPlace: inPlace.filter((x) => mineNames.has(x.tensor)),
      },
    };
  });

  const memory: MemoryPlan = {
    format: "alexc-memory",
    version: 1,
    alignment,
    maxBindingBytes,
    maxBufferBytes,
    scheduleSteps: live.scheduleSteps,
    positions: live.steps.length,
    devices,
  };
  if (limits.deviceMemoryBytes !== undefined) {
    const over = budgetDiagnostics(plan, memory, limits.deviceMemoryBytes);
    if (over.length) throw new DiagnosticError(over);
  }
  return memory;
}

const deviceLabel = (plan: Plan, device: number) =>
  plan.devices.find((d) => d.index === device)?.label ?? `device ${device}`;

/** `1,234,567 bytes (1.2 MiB)`. */
export function bytesText(n: number): string {
  const mib = (n / 2 ** 20).toLocaleString("en-US", { minimumFractionDigits: 1, maximumFractionDigits: 1 });
  return `${n.toLocaleString("en-US")} bytes (${mib} MiB)`;
}

/** AX3007 for every device whose peak exceeds `budget`, with the numbers and the ways out. */
export function budgetDiagnostics(plan: Plan, memory: MemoryPlan, budget: number): Diagnostic[] {
  const strategy = plan.placement?.strategy;
  const others = (["model", "data", "hybrid"] as const).filter((s) => s !== strategy);
  const batch = `a smaller --batch (this plan's is ${plan.batch}${plan.microBatch ? `, run in micro-batches of ${plan.microBatch}` : ""})`;
  const help = strategy
    ? `compile with ${batch}, or try another placement (${others.map((s) => `--placement ${s}`).join(", ")})`
    : `compile with ${batch}, or split the network over two devices with --placement model or --placement data`;
  return memory.devices
    .filter((d) => d.stats.peakBytes > budget)
    .map((d) =>
      diag(
        "AX3007",
        {
          peak: bytesText(d.stats.peakBytes),
          device: deviceLabel(plan, d.device),
          budget: bytesText(budget),
        },
        undefined,
        {
          notes: [
            `${bytesText(d.stats.pinnedBytes)} of it are parameters, optimizer state and tensors the host reads or writes`,
            `no memory plan needs less than the ${bytesText(d.stats.lowerBoundBytes)} live at once`,
          ],
          help,
        },
      ),
    );
}

/** Where tensor `name` (an alias: its root) lives on its device. */
export function placementOf(
  plan: Plan,
  memory: MemoryPlan,
  name: string,
): TensorPlacement & { device: number } {
  const tensors = new Map(plan.tensors.map((t) => [t.name, t]));
  const t = tensors.get(name);
  if (!t) throw internal(`no tensor \`${name}\` in the plan`);
  const root = rootOf(tensors, name);
  const device = tensors.get(root)!.device;
  const p = memory.devices.find((d) => d.device === device)?.placements.find((x) => x.tensor === root);
  if (!p) throw internal(`tensor \`${root}\` has no placement`);
  return { ...p, bytes: t.bytes, device };
}
