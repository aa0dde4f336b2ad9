import { describe, expect, it } from "vitest";
import { paramStream } from "../../../runtime/init.ts";
import { Rng, RngStreams } from "../../../runtime/train/rng.ts";

describe("Rng", () => {
  it("is a pure function of (seed, purpose), and purposes are independent streams", () => {
    const a = Rng.derive(42, "data-order");
    const b = Rng.derive(42, "data-order");
    const c = Rng.derive(42, "augment");
    const d = Rng.derive(43, "data-order");
    const draw = (r: Rng) => Array.from({ length: 8 }, () => r.nextUint32());
    const first = draw(a);
    expect(draw(b)).toEqual(first);
    expect(draw(c)).not.toEqual(first);
    expect(draw(d)).not.toEqual(first);
    // Disjoint from the parameter-initialisation stream of a parameter with the same name.
    const init = paramStream(42, "data-order");
    expect(Array.from({ length: 8 }, () => init.nextUint32())).not.toEqual(first);
  });

  it("state survives JSON and continues the sequence bitwise", () => {
    const rng = Rng.derive(7, "dropout");
    for (let i = 0; i < 1000; i++) rng.nextUint32();
    const saved = JSON.parse(JSON.stringify(rng.state()));
    const expected = [rng.nextUint32(), rng.float(), rng.uniformInt(10), ...rng.permutation(20)];
    const restored = Rng.fromState(saved);
    expect(restored.purpose).toBe("dropout");
    expect([
      restored.nextUint32(),
      restored.float(),
      restored.uniformInt(10),
      ...restored.permutation(20),
    ]).toEqual(expected);
  });

  it("rejects anything that is not a state", () => {
    expect(() => Rng.fromState({ seed: 1, purpose: "p", words: [0, 0, 0, 0] })).toThrow(/all-zero/);
    expect(() => Rng.fromState({ seed: 1, purpose: "p", words: [1, 2, 3] })).toThrow(RangeError);
    expect(() => Rng.fromState({ seed: 1, purpose: "p", words: [1, 2, 3, 2 ** 32] })).toThrow(RangeError);
    expect(() => Rng.fromState("nope")).toThrow(RangeError);
  });

  it("uniformInt is in range and unbiased; float is in [0, 1)", () => {
    const rng = Rng.derive(1, "test");
    const counts = new Array(6).fill(0);
    const n = 60_000;
    for (let i = 0; i < n; i++) counts[rng.uniformInt(6)]++;
    // χ² with 5 degrees of freedom: 20.5 is the 0.999 quantile.
    const chi2 = counts.reduce((s, c) => s + (c - n / 6) ** 2 / (n / 6), 0);
    expect(chi2).toBeLessThan(20.5);
    expect(rng.uniformInt(1)).toBe(0);
    expect(rng.uniformInt(2 ** 32)).toBeLessThan(2 ** 32);
    expect(() => rng.uniformInt(0)).toThrow(RangeError);
    expect(() => rng.uniformInt(2.5)).toThrow(RangeError);
    for (let i = 0; i < 10_000; i++) {
      const x = rng.float();
      expect(x >= 0 && x < 1).toBe(true);
    }
  });

  it("permutation is a permutation, and every order of 3 is about equally likely", () => {
    const rng = Rng.derive(5, "data-order");
    const p = rng.permutation(1000);
    expect([...p].sort((a, b) => a - b)).toEqual(Array.from({ length: 1000 }, (_, i) => i));
    const seen = new Map<string, number>();
    for (let i = 0; i < 6000; i++) {
      const key = [...rng.permutation(3)].join("");
      seen.set(key, (seen.get(key) ?? 0) + 1);
    }
    expect(seen.size).toBe(6);
    for (const count of seen.values()) expect(Math.abs(count - 1000)).toBeLessThan(150);
    const items = ["a", "b", "c"];
    expect(rng.shuffle(items)).toBe(items);
  });
});

describe("RngStreams", () => {
  it("saves only touched streams and restores all of them exactly", () => {
    const streams = new RngStreams(9);
    streams.get("data-order").permutation(100);
    streams.get("augment").nextUint32();
    const state = JSON.parse(JSON.stringify(streams.state()));
    expect(Object.keys(state.streams)).toEqual(["augment", "data-order"]);
    const restored = RngStreams.fromState(state);
    for (const purpose of ["data-order", "augment", "dropout"]) {
      expect(restored.get(purpose).nextUint32()).toBe(streams.get(purpose).nextUint32());
    }
  });

  it("using one stream does not disturb another", () => {
    const quiet = new RngStreams(3);
    const busy = new RngStreams(3);
    for (let i = 0; i < 500; i++) busy.get("augment").nextUint32();
    expect([...busy.get("data-order").permutation(50)]).toEqual([...quiet.get("data-order").permutation(50)]);
  });

  it("rejects bad seeds and states", () => {
    expect(() => new RngStreams(-1)).toThrow(RangeError);
    expect(() => RngStreams.fromState({ seed: 1, streams: { a: [0, 0, 0, 0] } })).toThrow(/all-zero/);
  });
});
