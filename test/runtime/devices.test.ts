// Adapter listing and selection in runtime/devices.ts: against a fake Dawn (create(flags) answering as
// dawn.node does) for the multi-adapter cases no test machine has, and against the real adapter
// through test/gpu/adapter.ts's convention (skips without one, fails on CI).
import { describe, expect, it } from "vitest";
import { main } from "../../compiler/cli.ts";
import { DiagnosticError, type Diagnostic } from "../../compiler/diagnostics.ts";
import { devicesCommand } from "../../compiler/devices-command.ts";
import {
  closeDevices,
  listAdapters,
  openDevices,
  parseAdapterList,
  type GpuFactory,
} from "../../runtime/devices.ts";
import { useGpu } from "../gpu/adapter.ts";

interface FakeAdapterSpec {
  backend: string;
  name: string;
  vendor: string;
  /** requestDevice fails from this call on (1-based), to provoke the fallback. */
  failFrom?: number;
}

/** A fake dawn.node: `adapter=NAME` picks the first adapter whose name contains NAME, else rejects with the list. */
function fakeDawn(specs: FakeAdapterSpec[], opts: { listsAdapters?: boolean } = {}) {
  const calls: string[][] = [];
  let devicesMade = 0;
  const adapterOf = (spec: FakeAdapterSpec) =>
    ({
      info: { vendor: spec.vendor, architecture: "arch", description: `${spec.name} driver`, device: "" },
      limits: { maxStorageBufferBindingSize: 1 << 30, maxBufferSize: 1 << 31 },
      features: new Set(["timestamp-query", "shader-f16"]),
      async requestDevice(desc: GPUDeviceDescriptor) {
        devicesMade++;
        if (spec.failFrom !== undefined && devicesMade >= spec.failFrom)
          throw new Error("out of device memory");
        return {
          label: desc.label,
          limits: { maxStorageBufferBindingSize: 1 << 30 },
          lost: new Promise(() => {}),
          addEventListener() {},
          destroy() {},
        };
      },
    }) as unknown as GPUAdapter;
  const create: GpuFactory = (flags) => {
    calls.push(flags);
    const wanted = flags.find((f) => f.startsWith("adapter="))?.slice("adapter=".length);
    return {
      async requestAdapter() {
        if (wanted === undefined || opts.listsAdapters === false) return adapterOf(specs[0]);
        const spec = specs.find((s) => s.name.includes(wanted));
        if (spec) return adapterOf(spec);
        const list = specs.map((s) => ` * backend: '${s.backend}', name: '${s.name}'`).join("\n");
        throw new Error(`no suitable backends found\nAvailable adapters:\n${list}`);
      },
    } as Pick<GPU, "requestAdapter">;
  };
  return { create, calls };
}

const h200 = { backend: "vulkan", name: "NVIDIA H200", vendor: "nvidia" };
const lavapipe = { backend: "vulkan", name: "llvmpipe (LLVM 15.0.6, 256 bits)", vendor: "mesa" };

describe("adapter listing", () => {
  it("parses dawn.node's list of available adapters", () => {
    const message =
      "no adapter with backend 'vulkan' and name 'x' found\nAvailable adapters:\n" +
      " * backend: 'vulkan', name: 'llvmpipe (LLVM 15.0.6, 256 bits)'\n * backend: 'opengl', name: 'NVIDIA H200'";
    expect(parseAdapterList(message)).toEqual([
      { index: 0, backend: "vulkan", name: "llvmpipe (LLVM 15.0.6, 256 bits)" },
      { index: 1, backend: "opengl", name: "NVIDIA H200" },
    ]);
    expect(parseAdapterList("some other error")).toEqual([]);
  });

  it("lists every adapter with limits and features; flags a name Dawn cannot tell apart", async () => {
    const { create } = fakeDawn([h200, lavapipe, h200]);
    const listing = await listAdapters(create);
    expect(listing.enumerated).toBe(true);
    expect(listing.adapters.map((a) => [a.index, a.name, a.vendor, a.sameNameAs])).toEqual([
      [0, "NVIDIA H200", "nvidia", undefined],
      [1, lavapipe.name, "mesa", undefined],
      [2, "NVIDIA H200", "nvidia", 0],
    ]);
    expect(listing.adapters[0].features).toEqual({
      "shader-f16": true,
      "timestamp-query": true,
      subgroups: false,
    });
    const text = (await run((out, err) => devicesCommand("text", out, err, create))).out;
    expect(text).toContain("adapter 1: llvmpipe (LLVM 15.0.6, 256 bits) (vulkan)");
    expect(text).toMatch(/maxStorageBufferBindingSize\s+1,073,741,824 \(1024 MiB\)/);
    expect(text).toContain("same name as adapter 0");
  });

  it("says plainly when only the default adapter is reachable", async () => {
    const { create } = fakeDawn([lavapipe], { listsAdapters: false });
    const listing = await listAdapters(create);
    expect(listing.enumerated).toBe(false);
    expect(listing.adapters).toHaveLength(1);
    const text = (await run((out, err) => devicesCommand("text", out, err, create))).out;
    expect(text).toContain("only the default adapter is reachable");
    expect(text).toContain("one adapter: alexc opens two devices from it");
  });
});

describe("device selection", () => {
  it("opens devices by index and by name substring, through Dawn's backend and adapter flags", async () => {
    const { create, calls } = fakeDawn([h200, lavapipe]);
    const devices = await openDevices({ count: 2, select: [1, "h200"], create });
    expect(devices.map((d) => [d.index, d.adapterIndex, d.label])).toEqual([
      [0, 1, `device 0 (${lavapipe.name} driver)`],
      [1, 0, "device 1 (NVIDIA H200 driver)"],
    ]);
    expect(calls).toContainEqual(["backend=vulkan", `adapter=${lavapipe.name}`]);
    expect(calls).toContainEqual(["backend=vulkan", "adapter=NVIDIA H200"]);
    closeDevices(devices);
  });

  it("reuses the last selected adapter for the remaining devices (two devices on one adapter)", async () => {
    const { create } = fakeDawn([h200, lavapipe]);
    const devices = await openDevices({ count: 2, select: ["llvmpipe"], create });
    expect(devices.map((d) => d.adapterIndex)).toEqual([1, 1]);
    closeDevices(devices);
  });

  it("a selector that matches nothing is AX3004 listing what there is", async () => {
    const { create } = fakeDawn([h200, lavapipe]);
    const e = await openDevices({ count: 1, select: ["radeon"], create }).catch((x) => x);
    expect(e).toBeInstanceOf(DiagnosticError);
    expect(e.diagnostics[0].code).toBe("AX3004");
    expect(e.diagnostics[0].message).toContain("0: NVIDIA H200 (vulkan), 1: llvmpipe");
    const byIndex = await openDevices({ count: 1, select: [5], create }).catch((x) => x);
    expect(byIndex.diagnostics[0].code).toBe("AX3004");
  });

  it("falls back to one device with a visible AX3005 warning when the second cannot be opened", async () => {
    const { create } = fakeDawn([{ ...h200, failFrom: 2 }]);
    const warnings: Diagnostic[] = [];
    const devices = await openDevices({ count: 2, select: [0], create, onWarning: (d) => warnings.push(d) });
    expect(devices).toHaveLength(1);
    expect(warnings.map((w) => w.code)).toEqual(["AX3005"]);
    expect(warnings[0].message).toContain("opened 1 of 2 WebGPU devices");
    expect(warnings[0].message).toContain("out of device memory");
    closeDevices(devices);

    const strict = fakeDawn([{ ...h200, failFrom: 2 }]);
    const e = await openDevices({ count: 2, select: [0], create: strict.create, allowFewer: false }).catch(
      (x) => x,
    );
    expect(e.diagnostics[0].code).toBe("AX4004");
  });

  it("the first device failing is still an error, never a silent zero-device run", async () => {
    const { create } = fakeDawn([{ ...h200, failFrom: 1 }]);
    const e = await openDevices({ count: 2, select: [0], create }).catch((x) => x);
    expect(e.diagnostics[0].code).toBe("AX4004");
  });
});

async function run(body: (out: (t: string) => void, err: (t: string) => void) => Promise<number>) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await body(
    (t) => void out.push(t),
    (t) => void err.push(t),
  );
  return { code, out: out.join("\n"), err: err.join("\n") };
}

const gpu = await useGpu();

gpu.describe("the real adapter", () => {
  it("is listed, and two devices open on it by index and by name", async () => {
    const listing = await listAdapters();
    expect(listing.adapters.length).toBeGreaterThanOrEqual(1);
    const first = listing.adapters[0];
    expect(first.maxStorageBufferBindingSize).toBeGreaterThanOrEqual(134_217_728);
    const byIndex = await openDevices({ count: 2, select: [first.index] });
    expect(byIndex.map((d) => d.adapterIndex)).toEqual([first.index, first.index]);
    closeDevices(byIndex);
    const byName = await openDevices({ count: 1, select: [first.name.slice(0, 6).toUpperCase()] });
    expect(byName).toHaveLength(1);
    closeDevices(byName);
  });

  it("alexc devices prints it (text and json)", async () => {
    const text = await run((out, err) => main(["devices"], { out, err }));
    expect(text.code).toBe(0);
    expect(text.out).toMatch(/^adapter 0: /);
    expect(text.out).toContain("timestamp-query");
    const json = JSON.parse(
      (await run((out, err) => main(["devices", "--format", "json"], { out, err }))).out,
    );
    expect(json.adapters[0]).toHaveProperty("maxBufferSize");
  });
});

describe("alexc devices usage", () => {
  it("takes no FILE", async () => {
    const r = await run((out, err) => main(["devices", "x.net"], { out, err }));
    expect(r.code).toBe(2);
    expect(r.err).toContain("usage: alexc devices");
  });
});
