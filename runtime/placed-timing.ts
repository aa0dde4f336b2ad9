// Per-kernel GPU times of a placed run: one timestamp query set per device, one compute pass per
// kernel (timestamps are per pass), resolved after the schedule walk and read with the outputs.
// Only when every device that runs a kernel has timestamp queries, so that a run's times are all
// of one kind.
import type { PlanKernel } from "../compiler/plan.ts";
import type { OpenDevice } from "./devices.ts";
import { type KernelTiming, encodeTimestampReadback } from "./submit.ts";

/** One kernel's GPU time (its device's timestamp queries), with the device it ran on. */
export interface PlacedKernelTiming extends KernelTiming {
  device: number;
}

export interface PlacedTimestamps {
  /** A pass of its own for `kernel`, writing its begin and end timestamps; undefined when untimed. */
  timedPass(encoder: GPUCommandEncoder, kernel: PlanKernel): GPUComputePassEncoder | undefined;
  /** Encodes device `d`'s resolve and readback (after its last timed pass has ended). */
  encodeResolve(d: number, encoder: GPUCommandEncoder): void;
  /** The times in walk order, after the submits; undefined when the run was not timed. */
  read(): Promise<PlacedKernelTiming[] | undefined>;
  /** Whether device `d` has anything to resolve. */
  has(d: number): boolean;
}

export function placedTimestamps(
  devs: readonly OpenDevice[],
  kernels: readonly PlanKernel[],
  what: string,
  timing: boolean,
): PlacedTimestamps {
  const perDevice = devs.map((_, d) => kernels.filter((k) => k.device === d).length);
  const timed =
    timing &&
    perDevice.some((c) => c > 0) &&
    perDevice.every((c, d) => c === 0 || (devs[d].timestamps && 2 * c <= 4096));
  const querySets = perDevice.map((c, d) =>
    timed && c > 0
      ? devs[d].device.createQuerySet({ label: `${what} timing`, type: "timestamp", count: 2 * c })
      : undefined,
  );
  const slots = devs.map(() => 0);
  const order: { kernel: PlanKernel; slot: number }[] = [];
  const reads: ((() => Promise<BigInt64Array>) | undefined)[] = devs.map(() => undefined);
  return {
    timedPass(encoder, kernel) {
      const querySet = querySets[kernel.device];
      if (!querySet) return undefined;
      const slot = slots[kernel.device]++;
      order.push({ kernel, slot });
      return encoder.beginComputePass({
        label: kernel.name,
        timestampWrites: { querySet, beginningOfPassWriteIndex: 2 * slot, endOfPassWriteIndex: 2 * slot + 1 },
      });
    },
    has: (d) => querySets[d] !== undefined,
    encodeResolve(d, encoder) {
      const querySet = querySets[d];
      if (querySet) reads[d] = encodeTimestampReadback(devs[d], encoder, querySet, what);
    },
    async read() {
      if (!timed) return undefined;
      const ns = await Promise.all(reads.map((r) => r?.()));
      return order.map(({ kernel, slot }) => {
        const t = ns[kernel.device]!;
        return {
          kernel: kernel.name,
          layer: kernel.layer,
          ms: Number(t[2 * slot + 1] - t[2 * slot]) / 1e6,
          device: kernel.device,
        };
      });
    },
  };
}
