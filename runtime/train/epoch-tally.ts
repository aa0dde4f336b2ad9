// The running figures of the epoch in progress: steps, summed loss, top-1 and top-5 mistakes, and
// seconds spent. Each checkpoint's `metrics` summary carries them, so that an epoch resumed after a
// kill reports its training loss, errors and time over all of its steps, not just those after the
// resume. Checkpoints written before these fields existed resume with an empty tally, as before.

/** The epoch's figures so far; `steps` counts the steps whose loss and mistakes are summed here. */
export interface EpochTally {
  steps: number;
  lossSum: number;
  wrong1: number;
  wrong5: number;
  seconds: number;
}

export const emptyTally = (): EpochTally => ({ steps: 0, lossSum: 0, wrong1: 0, wrong5: 0, seconds: 0 });

const KEYS = {
  steps: "epochSteps",
  lossSum: "epochLossSum",
  wrong1: "epochWrong1",
  wrong5: "epochWrong5",
  seconds: "epochSeconds",
} as const satisfies Record<keyof EpochTally, string>;

/** The tally as checkpoint summary entries. */
export function tallySummary(t: EpochTally): Record<string, number> {
  return Object.fromEntries(Object.entries(KEYS).map(([k, name]) => [name, t[k as keyof EpochTally]]));
}

/**
 * The tally a checkpoint saved `stepInEpoch` steps into its epoch; empty at an epoch's start, when
 * the summary lacks a field, or when its figures cannot belong to those steps (a hand-edited file).
 */
export function tallyFromSummary(
  summary: Readonly<Record<string, number | null>> | undefined,
  stepInEpoch: number,
): EpochTally {
  if (!summary || stepInEpoch === 0) return emptyTally();
  const values = Object.entries(KEYS).map(([k, name]) => [k, summary[name]] as const);
  if (values.some(([, v]) => typeof v !== "number" || !Number.isFinite(v) || v < 0)) return emptyTally();
  const t = Object.fromEntries(values) as unknown as EpochTally;
  return Number.isInteger(t.steps) && t.steps <= stepInEpoch ? t : emptyTally();
}
