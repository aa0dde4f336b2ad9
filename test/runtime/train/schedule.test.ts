import { describe, expect, it } from "vitest";
import { createSchedule, endEpoch } from "../../../runtime/train/schedule.ts";

describe("plateau schedule", () => {
  it("divides by 10 when the validation error stops improving (patience 1)", () => {
    const s = createSchedule({ kind: "plateau", lr0: 0.01 });
    expect(s.lr()).toBe(0.01);
    expect(s.observe(1, 0.5).dropped).toBe(false);
    expect(s.observe(2, 0.4).dropped).toBe(false);
    expect(s.observe(3, 0.4).dropped).toBe(true); // equal is not better
    expect(s.lr()).toBeCloseTo(0.001, 15);
    expect(s.observe(4, 0.39).dropped).toBe(false);
    expect(s.lr()).toBeCloseTo(0.001, 15);
  });

  it("honours patience, minDelta and maxDrops", () => {
    const s = createSchedule({
      kind: "plateau",
      lr0: 1,
      factor: 2,
      patience: 2,
      minDelta: 0.01,
      maxDrops: 1,
    });
    s.observe(1, 0.5);
    expect(s.observe(2, 0.495).dropped).toBe(false); // within minDelta: no improvement, 1 of 2
    expect(s.observe(3, 0.495).dropped).toBe(true); // 2 of 2
    expect(s.lr()).toBe(0.5);
    s.observe(4, 0.6);
    expect(s.observe(5, 0.6).dropped).toBe(false); // maxDrops reached
    expect(s.lr()).toBe(0.5);
    // The best error survives the drop: 0.495 does not count as better than 0.5 − 0.01.
    expect(s.state().best).toBe(0.5);
  });

  it("treats NaN as no improvement", () => {
    const s = createSchedule({ kind: "plateau", lr0: 1 });
    expect(s.observe(1, NaN).dropped).toBe(true);
    expect(s.state().best).toBeNull();
  });

  it("state is plain JSON and a restored schedule continues identically", () => {
    const config = { kind: "plateau", lr0: 0.01, patience: 3 } as const;
    const a = createSchedule(config);
    a.observe(1, 0.3);
    a.observe(2, 0.31);
    const b = createSchedule(config);
    b.restore(JSON.parse(JSON.stringify(a.state())));
    expect(b.state()).toEqual(a.state());
    for (const [e, err] of [
      [3, 0.32],
      [4, 0.33],
      [5, 0.2],
    ])
      expect(b.observe(e, err)).toEqual(a.observe(e, err));
    expect(b.lr()).toBe(a.lr());
  });

  it("rejects a state of another kind or malformed, a repeated epoch, and bad configs", () => {
    const s = createSchedule({ kind: "plateau", lr0: 0.01 });
    expect(() => s.restore(createSchedule({ kind: "step", lr0: 1, every: 2 }).state())).toThrow(
      /is for `step`/,
    );
    expect(() => s.restore({ lr: -1 })).toThrow(RangeError);
    s.observe(1, 0.5);
    expect(() => s.observe(1, 0.4)).toThrow(/epoch 1 observed after epoch 1/);
    expect(() => createSchedule({ kind: "plateau", lr0: 0 })).toThrow(/lr0/);
    expect(() => createSchedule({ kind: "plateau", lr0: 1, factor: 1 })).toThrow(/factor/);
    expect(() => createSchedule({ kind: "plateau", lr0: 1, patience: 0 })).toThrow(/patience/);
    expect(() => createSchedule({ kind: "plateau", lr0: 1, maxDrops: -1 })).toThrow(/maxDrops/);
    expect(() => createSchedule({ kind: "plateau", lr0: 1, minDelta: -1 })).toThrow(/minDelta/);
    expect(() => createSchedule({ kind: "step", lr0: 1, every: 0 })).toThrow(/every/);
  });
});

describe("step schedule", () => {
  it("divides every `every` epochs, ignoring the validation error", () => {
    const s = createSchedule({ kind: "step", lr0: 0.1, every: 2 });
    const lrs = [];
    for (let e = 1; e <= 6; e++) {
      s.observe(e, 0.1);
      lrs.push(s.lr());
    }
    expect(lrs.map((x) => Number(x.toPrecision(6)))).toEqual([0.1, 0.01, 0.01, 0.001, 0.001, 0.0001]);
  });

  it("catches up when epochs are skipped", () => {
    const s = createSchedule({ kind: "step", lr0: 1, factor: 2, every: 3 });
    expect(s.observe(7, undefined).dropped).toBe(true);
    expect(s.lr()).toBe(0.25);
  });
});

it("constant schedule never changes", () => {
  const s = createSchedule({ kind: "constant", lr0: 0.5 });
  expect(s.observe(1, 1).dropped).toBe(false);
  expect(s.lr()).toBe(0.5);
});

describe("endEpoch (the runner's end of an epoch)", () => {
  it("drops a step schedule on its epoch when validation did not run", () => {
    const s = createSchedule({ kind: "step", lr0: 0.05, every: 2 });
    expect(endEpoch(s, 1, undefined)).toBeUndefined();
    expect(endEpoch(s, 2, undefined)).toBe("step schedule, after epoch 2: learning rate 0.05 → 0.005");
    expect(s.lr()).toBeCloseTo(0.005, 15);
    expect(endEpoch(s, 3, 0.1)).toBeUndefined();
  });

  it("lets a plateau schedule see evaluations only", () => {
    const s = createSchedule({ kind: "plateau", lr0: 0.01 });
    expect(endEpoch(s, 1, 0.5)).toBeUndefined();
    expect(endEpoch(s, 2, undefined)).toBeUndefined(); // not evaluated: patience untouched
    expect(s.state()).toMatchObject({ epoch: 2, sinceImprovement: 0, best: 0.5 });
    expect(endEpoch(s, 3, 0.5)).toBe("validation error stopped improving: learning rate 0.01 → 0.001");
  });
});
