import { describe, expect, it } from "vitest";
import type { Graph, Init, Param } from "../../compiler/graph.ts";
import {
  Xoshiro128ss,
  deterministicLog,
  deterministicSqrt,
  fillNormal,
  fnv1a64,
  initParams,
  mix64,
  paramStream,
} from "../../runtime/init.ts";

function param(name: string, shape: number[], init: Init): Param {
  return { name, shape, init, trainable: true, layer: name.split(".")[0] };
}

function graphWith(params: Param[]): Graph {
  return {
    name: "g",
    towers: 1,
    classes: 10,
    inputs: [],
    nodes: [],
    params,
    logits: "fc",
    loss: "loss",
  };
}

const normal = (mean: number, std: number): Init => ({ kind: "normal", mean, std });
const bits = (a: Float32Array) => [...new Uint32Array(a.buffer, a.byteOffset, a.length)];

describe("building blocks match their published reference values", () => {
  it("xoshiro128** from state (1, 2, 3, 4)", () => {
    // The reference C implementation's first outputs (also rand_xoshiro's test vector).
    const rng = new Xoshiro128ss([1, 2, 3, 4]);
    const expected = [
      11520, 0, 5927040, 70819200, 2031721883, 1637235492, 1287239034, 3734860849, 3729100597, 4258142804,
    ];
    expect(expected.map(() => rng.nextUint32())).toEqual(expected);
  });

  it("SplitMix64's mixer and FNV-1a 64", () => {
    // SplitMix64 seeded with 0: the first output is mix64(golden gamma).
    expect(mix64(0x9e3779b97f4a7c15n)).toBe(0xe220a8397b1dcdafn);
    expect(fnv1a64("")).toBe(0xcbf29ce484222325n);
    expect(fnv1a64("a")).toBe(0xaf63dc4c8601ec8cn);
    expect(fnv1a64("foobar")).toBe(0x85944171f73967e8n);
  });

  it("rejects the all-zero state and bad seeds", () => {
    expect(() => new Xoshiro128ss([0, 0, 0, 0])).toThrow(RangeError);
    expect(() => paramStream(-1, "w")).toThrow(/seed must be an integer/);
    expect(() => paramStream(1.5, "w")).toThrow(/seed must be an integer/);
  });

  it("log and sqrt from basic operations are within 2 ulp of Math's", () => {
    const rng = paramStream(7, "log-test");
    let logErr = 0;
    let sqrtErr = 0;
    for (let i = 0; i < 200_000; i++) {
      const x = ((rng.nextUint32() + 1) / 2 ** 32) * 2 ** ((i % 200) - 100);
      const l = Math.log(x);
      if (l !== 0) logErr = Math.max(logErr, Math.abs(deterministicLog(x) - l) / Math.abs(l));
      sqrtErr = Math.max(sqrtErr, Math.abs(deterministicSqrt(x) - Math.sqrt(x)) / Math.sqrt(x));
    }
    expect(logErr).toBeLessThanOrEqual(2 * Number.EPSILON);
    expect(sqrtErr).toBeLessThanOrEqual(Number.EPSILON);
    expect(deterministicLog(1)).toBe(0);
    expect(deterministicSqrt(0)).toBe(0);
    expect(deterministicSqrt(4)).toBe(2);
    expect(() => deterministicLog(0)).toThrow(RangeError);
  });
});

describe("initParams", () => {
  const graph = graphWith([
    param("conv1.weight", [8, 3, 5, 5], normal(0, 0.01)),
    param("conv1.bias", [8], { kind: "constant", value: 0 }),
    param("fc.weight", [10, 33], normal(0.5, 2)),
    param("fc.bias", [10], { kind: "constant", value: 1 }),
  ]);

  it("pins the generated values (a change here changes every checkpoint's starting point)", () => {
    const w = initParams(graph, 42).get("conv1.weight")!;
    expect(bits(w.subarray(0, 6))).toEqual([
      0x3bac6194, 0x3b65aabf, 0x3c4ed8c8, 0x3b7461de, 0xbc263b4f, 0x3c120158,
    ]);
  });

  it("is deterministic: the same seed gives bitwise the same weights", () => {
    const a = initParams(graph, 1234);
    const b = initParams(graph, 1234);
    expect([...a.keys()]).toEqual(["conv1.weight", "conv1.bias", "fc.weight", "fc.bias"]);
    for (const [name, values] of a) expect(bits(b.get(name)!)).toEqual(bits(values));
  });

  it("gives different weights for different seeds and different parameters", () => {
    const a = initParams(graph, 1).get("conv1.weight")!;
    const b = initParams(graph, 2).get("conv1.weight")!;
    expect(bits(a)).not.toEqual(bits(b));
    const twin = initParams(
      graphWith([param("a.weight", [64], normal(0, 1)), param("b.weight", [64], normal(0, 1))]),
      1,
    );
    expect(bits(twin.get("a.weight")!)).not.toEqual(bits(twin.get("b.weight")!));
  });

  it("keeps every parameter's values when layers are added, removed or reordered", () => {
    const base = initParams(graph, 9);
    const changed = initParams(
      graphWith([
        param("fc.weight", [10, 33], normal(0.5, 2)),
        param("conv0.weight", [4, 3, 3, 3], normal(0, 0.01)),
        param("conv1.weight", [8, 3, 5, 5], normal(0, 0.01)),
      ]),
      9,
    );
    expect(bits(changed.get("conv1.weight")!)).toEqual(bits(base.get("conv1.weight")!));
    expect(bits(changed.get("fc.weight")!)).toEqual(bits(base.get("fc.weight")!));
  });

  it("fills constants exactly", () => {
    const p = initParams(graph, 0);
    expect(p.get("conv1.bias")!.every((x) => Object.is(x, 0))).toBe(true);
    expect(p.get("fc.bias")!.every((x) => x === 1)).toBe(true);
  });

  it("draws N(mean, std²): moments, tails and the shape of the distribution", () => {
    const n = 1_000_000;
    const mean = 0.25;
    const std = 0.01;
    const x = initParams(graphWith([param("big.weight", [n], normal(mean, std))]), 3).get("big.weight")!;
    let sum = 0;
    for (const v of x) sum += v;
    const m = sum / n;
    let m2 = 0;
    let m3 = 0;
    let m4 = 0;
    let within1 = 0;
    let within2 = 0;
    for (const v of x) {
      const z = (v - m) / std;
      m2 += z * z;
      m3 += z * z * z;
      m4 += z ** 4;
      if (Math.abs(z) < 1) within1++;
      if (Math.abs(z) < 2) within2++;
    }
    const s = Math.sqrt(m2 / n) * std;
    // Standard errors: mean σ/√n, std ≈ σ/√(2n), skewness √(6/n), kurtosis √(24/n); 5 SE bounds.
    expect(Math.abs(m - mean)).toBeLessThan((5 * std) / Math.sqrt(n));
    expect(Math.abs(s - std)).toBeLessThan((5 * std) / Math.sqrt(2 * n));
    expect(Math.abs(m3 / n)).toBeLessThan(5 * Math.sqrt(6 / n));
    expect(Math.abs(m4 / n - 3)).toBeLessThan(5 * Math.sqrt(24 / n));
    // Φ(1) − Φ(−1) and Φ(2) − Φ(−2), binomial SE < 0.0005.
    expect(Math.abs(within1 / n - 0.682689)).toBeLessThan(0.0025);
    expect(Math.abs(within2 / n - 0.9545)).toBeLessThan(0.0015);
  });

  it("fills odd lengths and std 0", () => {
    const out = new Float32Array(7);
    fillNormal(out, 3, 0, paramStream(1, "x"));
    expect([...out]).toEqual([3, 3, 3, 3, 3, 3, 3]);
  });

  it("reports a parameter declared twice as an internal error", () => {
    const dup = graphWith([param("a.weight", [1], normal(0, 1)), param("a.weight", [1], normal(0, 1))]);
    expect(() => initParams(dup, 0)).toThrow(/AX9001/);
  });
});
