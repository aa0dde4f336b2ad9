import { describe, expect, it } from "vitest";
import { emptyTally, tallyFromSummary, tallySummary } from "../../../runtime/train/epoch-tally.ts";

describe("epoch tally in checkpoint summaries", () => {
  const tally = { steps: 7, lossSum: 12.5, wrong1: 40, wrong5: 3, seconds: 81.25 };

  it("round-trips through a summary mid-epoch, next to other entries", () => {
    const summary = { loss: 1.75, ...tallySummary(tally) };
    expect(tallyFromSummary(summary, 7)).toEqual(tally);
    expect(tallyFromSummary(summary, 9)).toEqual(tally); // saved before the last steps: still its own figures
  });

  it("is empty at an epoch's start and for checkpoints written without it", () => {
    expect(tallyFromSummary(tallySummary(tally), 0)).toEqual(emptyTally());
    expect(tallyFromSummary({ loss: 1.75 }, 5)).toEqual(emptyTally());
    expect(tallyFromSummary(undefined, 5)).toEqual(emptyTally());
  });

  it("is refused when its figures cannot belong to the steps done", () => {
    expect(tallyFromSummary(tallySummary(tally), 6)).toEqual(emptyTally()); // more steps than done
    expect(tallyFromSummary({ ...tallySummary(tally), epochWrong1: null }, 7)).toEqual(emptyTally());
    expect(tallyFromSummary({ ...tallySummary(tally), epochLossSum: -1 }, 7)).toEqual(emptyTally());
    expect(tallyFromSummary({ ...tallySummary(tally), epochSteps: 2.5 }, 7)).toEqual(emptyTally());
  });
});
