// The one way GPU tests get a device. Without an adapter a GPU test skips with the reason shown, except
// on CI (`CI=true`), where a missing adapter is a broken runner and must fail loudly rather than let a
// green build hide that no kernel ran.
//
//   const gpu = await useGpu();              // top level of the test file
//   gpu.describe("kernels", () => { it(...) }) // tests inside skip (or fail on CI) without a device
import { afterAll, beforeEach, describe } from "vitest";
import { DiagnosticError } from "../../compiler/diagnostics.ts";
import { type OpenDevice, closeDevices, openDevices } from "../../runtime/devices.ts";

export interface TestGpu {
  /** The open device; tests inside `gpu.describe` may use it with `!`. */
  dev?: OpenDevice;
  /** Why there is no device. */
  reason?: string;
  /** A describe block whose tests skip with `reason` when there is no device. */
  describe(name: string, body: () => void): void;
}

/** Opens one device for this test file and closes it after; throws on CI when there is none. */
export async function useGpu(): Promise<TestGpu> {
  let dev: OpenDevice | undefined;
  let reason: string | undefined;
  try {
    [dev] = await openDevices({ count: 1 });
  } catch (e) {
    const why =
      e instanceof DiagnosticError
        ? e.diagnostics.map((d) => [d.message, d.help].filter(Boolean).join(" — ")).join("; ")
        : String(e);
    if (process.env.CI === "true") throw new Error(`CI=true but no WebGPU adapter is usable: ${why}`);
    reason = `no WebGPU adapter: ${why}`;
    console.warn(`[GPU tests skipped] ${reason}`);
  }
  afterAll(() => {
    if (dev) closeDevices([dev]);
  });
  return {
    dev,
    reason,
    describe(name, body) {
      describe(dev ? name : `${name} (skipped: no WebGPU adapter)`, () => {
        beforeEach((ctx) => {
          if (!dev) ctx.skip(reason);
        });
        body();
      });
    },
  };
}

/** Like useGpu, with `count` devices (one adapter each, as openDevices opens them). */
export async function useGpus(count: number): Promise<TestGpu & { devs?: OpenDevice[] }> {
  let devs: OpenDevice[] | undefined;
  let reason: string | undefined;
  try {
    devs = await openDevices({ count });
  } catch (e) {
    const why =
      e instanceof DiagnosticError
        ? e.diagnostics.map((d) => [d.message, d.help].filter(Boolean).join(" — ")).join("; ")
        : String(e);
    if (process.env.CI === "true") throw new Error(`CI=true but no WebGPU adapter is usable: ${why}`);
    reason = `no WebGPU adapter: ${why}`;
    console.warn(`[GPU tests skipped] ${reason}`);
  }
  afterAll(() => {
    if (devs) closeDevices(devs);
  });
  return {
    dev: devs?.[0],
    devs,
    reason,
    describe(name, body) {
      describe(devs ? name : `${name} (skipped: no WebGPU adapter)`, () => {
        beforeEach((ctx) => {
          if (!devs) ctx.skip(reason);
        });
        body();
      });
    },
  };
}
