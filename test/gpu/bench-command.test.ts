// `alexc bench`: the text and JSON reports on alexnet-small at --iters 2, and bad usage (exit 2).
import { describe, expect, it } from "vitest";
import { main } from "../../compiler/cli.ts";
import { useGpu } from "./adapter.ts";

const gpu = await useGpu();

async function alexc(...argv: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(argv, { out: (t) => void out.push(t), err: (t) => void err.push(t) });
  return { code, out: out.join("\n"), err: err.join("\n") };
}

const SMALL = "models/alexnet-small.net";

gpu.describe("alexc bench", () => {
  it("prints the median, images/s, per-kernel times, class rates and memory", async () => {
    const r = await alexc("bench", SMALL, "--iters", "2", "--warmup", "1");
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/alexc bench alexnet_small: forward, batch 1, on device 0/);
    expect(r.out).toMatch(/median \d+\.\d+ ms per step over 2 timed steps .* images\/s/);
    expect(r.out).toMatch(/k\d+_conv1_relu1\s+conv\+relu\s+conv forward/);
    expect(r.out).toMatch(/ceiling = alexc's best 1024×1024×1024 GEMM kernel/);
    expect(r.out).toMatch(/memory per device: device 0 .* MiB in runtime buffers/);
  });

  it("reports the same as JSON, training mode included", async () => {
    const r = await alexc(
      "bench",
      SMALL,
      "--mode",
      "train",
      "--batch",
      "2",
      "--iters",
      "2",
      "--format",
      "json",
    );
    expect(r.code).toBe(0);
    const report = JSON.parse(r.out);
    expect(report).toMatchObject({ network: "alexnet_small", mode: "train", batch: 2, iters: 2 });
    expect(report.median).toBeGreaterThan(0);
    expect(report.imagesPerSecond).toBeCloseTo((2 * 1000) / report.median, 6);
    expect(report.stepsMs).toHaveLength(2);
    expect(Number.isFinite(report.loss)).toBe(true);
    const classes = new Set(report.perKernel.map((k: { class: string }) => k.class));
    expect([...classes].sort()).toEqual(
      ["conv dgrad", "conv forward", "conv wgrad", "dense", "elementwise", "lrn", "pool"].sort(),
    );
    for (const k of report.perKernel) {
      expect(k.wallMs).toBeGreaterThan(0);
      expect(k.gflops).toBeCloseTo(k.flops / (k.wallMs * 1e6), 9);
    }
    expect(report.ceiling.gflops).toBeGreaterThan(0);
    expect(report.memory[0].bufferBytes).toBeGreaterThan(0);
  });
});

describe("alexc bench usage", () => {
  it.each([
    [["--mode", "sideways"], /--mode must be forward, train/],
    [["--iters", "0"], /--iters must be an integer ≥ 1/],
    [["--placement", "diagonal"], /--placement must be none, model, data, hybrid/],
    [["--placement", "data"], /--mode forward places by --placement model only/],
  ])("%j exits 2", async (extra, message) => {
    const r = await alexc("bench", SMALL, ...extra);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(message);
  });

  it("needs a file", async () => {
    expect((await alexc("bench")).code).toBe(2);
  });
});
