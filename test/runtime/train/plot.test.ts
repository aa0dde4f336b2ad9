import { describe, expect, it } from "vitest";
import type { EpochRecord } from "../../../runtime/train/metrics.ts";
import { niceTicks, plotCurves } from "../../../runtime/train/plot.ts";

function records(n: number): EpochRecord[] {
  return Array.from({ length: n }, (_, i) => ({
    epoch: i + 1,
    trainLoss: 2.3 * Math.exp(-i / 8) + 0.1,
    trainTop1: 0.8 * Math.exp(-i / 6) + 0.05,
    trainTop5: 0.3 * Math.exp(-i / 6),
    valTop1: i === 3 ? null : 0.8 * Math.exp(-i / 7) + 0.09,
    valTop5: 0.3 * Math.exp(-i / 7),
    lr: i < 12 ? 0.01 : i < 20 ? 0.001 : 0.0001,
    seconds: 30,
  }));
}

describe("plotCurves", () => {
  const svg = plotCurves(records(25), { title: "alexnet <fashion>" });

  it("is a standalone SVG document with both panels, axes and legend", () => {
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    expect(svg.trimEnd().endsWith("</svg>")).toBe(true);
    for (const text of [
      "Training loss",
      "Top-1 error",
      "epoch",
      "error (%)",
      ">train<",
      ">validation<",
      ">lr change<",
    ]) {
      expect(svg).toContain(text);
    }
    expect(svg).toContain("alexnet &#60;fashion&#62;"); // escaped
    expect(svg).not.toMatch(/NaN|Infinity|undefined/);
  });

  it("breaks the validation line where an epoch was not evaluated, and marks lr changes", () => {
    // Loss: one line; train top-1: one; validation: two (split at the null).
    expect(svg.match(/<polyline/g)).toHaveLength(4);
    expect(svg.match(/stroke-dasharray="4 3"\/>/g)!.length).toBe(2 * 2 + 2); // 2 changes × 2 panels + 2 legends
    expect(svg).toContain(">lr 0.001<");
    expect(svg).toContain(">lr 1.0e-4<");
  });

  it("copes with no data, one epoch and non-finite values", () => {
    const empty = plotCurves([]);
    expect(empty).toContain("no data yet");
    expect(empty).not.toMatch(/NaN|Infinity/);
    const one = plotCurves([{ ...records(1)[0], trainLoss: NaN }]);
    expect(one).not.toMatch(/NaN|Infinity/);
    expect(one.match(/<circle/g)).toHaveLength(2);
  });
});

describe("niceTicks", () => {
  it("uses 1, 2, 5 steps that cover the range", () => {
    expect(niceTicks(0, 2.4, 6, false)).toMatchObject({
      lo: 0,
      hi: 2.5,
      step: 0.5,
      ticks: [0, 0.5, 1, 1.5, 2, 2.5],
    });
    expect(niceTicks(1, 90, 8, true)).toMatchObject({ lo: 0, hi: 100, step: 20 });
    expect(niceTicks(1, 3, 8, true).step).toBe(1);
    expect(niceTicks(5, 5, 6, false).ticks.length).toBeGreaterThan(1);
    expect(niceTicks(0, 0.3, 6, false).ticks).toEqual([0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3]);
  });
});
