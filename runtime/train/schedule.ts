// Learning-rate schedules with plain-data state, so a checkpoint can carry them and a resumed run
// continues with the same learning rate, patience counter and best error.
//
//  - plateau: Krizhevsky et al. (2012), §5: "divide the learning rate by 10 when the validation
//    error rate stopped improving with the current learning rate". An evaluation improves when its
//    error is below the best so far by more than `minDelta`; after `patience` evaluations in a row
//    without improvement the rate is divided by `factor` and the count restarts (the best error is
//    kept: the new rate must beat what the old one reached). `maxDrops` caps the divisions (the
//    paper's run made three).
//  - step: divide by `factor` after every `every` epochs.
//  - constant: never changes (for smoke runs and fine-tuning).
//
// Epochs are counted from 1: `observe(e, …)` is called once after the e-th epoch, with strictly
// increasing e, and `lr()` is then the rate for epoch e + 1. The validation error is undefined for an
// epoch that was not evaluated (`--eval-every`, no validation images): a plateau's patience counts
// evaluations, so such an epoch leaves it alone, while a step schedule still drops on its epoch.
// NaN is an evaluation that diverged, which is never an improvement.
import { z } from "zod";

export type ScheduleConfig =
  | {
      kind: "plateau";
      lr0: number;
      /** Default 10. */
      factor?: number;
      /** Evaluations without improvement before a drop; default 1. */
      patience?: number;
      /** Default unlimited. */
      maxDrops?: number;
      /** Default 0: any decrease counts as an improvement. */
      minDelta?: number;
    }
  | { kind: "step"; lr0: number; factor?: number; every: number }
  | { kind: "constant"; lr0: number };

/** Plain data (JSON-safe: no Infinity, `best` is null before the first evaluation). */
export interface ScheduleState {
  kind: ScheduleConfig["kind"];
  lr: number;
  drops: number;
  /** The last epoch observed; 0 before the first. */
  epoch: number;
  best: number | null;
  /** Evaluations since the last improvement or drop (plateau only). */
  sinceImprovement: number;
}

export interface Schedule {
  readonly config: ScheduleConfig;
  /** The learning rate to use now. */
  lr(): number;
  /**
   * Records the end of epoch `epoch` and its validation error (undefined: not evaluated); says
   * whether the rate was just divided.
   */
  observe(epoch: number, valError: number | undefined): { dropped: boolean };
  state(): ScheduleState;
  /** Replaces the state with one from `state()` of a schedule with the same kind. */
  restore(state: unknown): void;
}

const stateSchema = z.object({
  kind: z.enum(["plateau", "step", "constant"]),
  lr: z.number().positive(),
  drops: z.number().int().min(0),
  epoch: z.number().int().min(0),
  best: z.number().nullable(),
  sinceImprovement: z.number().int().min(0),
});

export function createSchedule(config: ScheduleConfig): Schedule {
  const checked = checkConfig(config);
  let s: ScheduleState = {
    kind: checked.kind,
    lr: checked.lr0,
    drops: 0,
    epoch: 0,
    best: null,
    sinceImprovement: 0,
  };

  const drop = (): { dropped: boolean } => {
    s.lr = s.lr / checked.factor;
    s.drops++;
    s.sinceImprovement = 0;
    return { dropped: true };
  };

  return {
    config,
    lr: () => s.lr,
    observe(epoch, valError) {
      if (!Number.isInteger(epoch) || epoch <= s.epoch) {
        // A repeated epoch would double-count patience: a resume bug, not a user error.
        throw new RangeError(`schedule: epoch ${epoch} observed after epoch ${s.epoch}`);
      }
      s.epoch = epoch;
      if (checked.kind === "constant") return { dropped: false };
      if (checked.kind === "step") {
        // Exact in epochs: drops = ⌊epoch / every⌋ however often observe is called.
        const due = Math.floor(epoch / checked.every);
        let dropped = false;
        while (s.drops < due) dropped = drop().dropped;
        return { dropped };
      }
      // plateau: patience counts evaluations, however many epochs apart they are. NaN (a diverged
      // run) is never an improvement, so it leads to a drop, which is what a diverging run needs.
      if (valError === undefined) return { dropped: false };
      const improved = !Number.isNaN(valError) && (s.best === null || valError < s.best - checked.minDelta);
      if (improved) {
        s.best = valError;
        s.sinceImprovement = 0;
        return { dropped: false };
      }
      s.sinceImprovement++;
      if (s.sinceImprovement >= checked.patience && s.drops < checked.maxDrops) return drop();
      return { dropped: false };
    },
    state: () => ({ ...s }),
    restore(state) {
      const parsed = stateSchema.safeParse(state);
      if (!parsed.success) throw new RangeError(`not a schedule state: ${parsed.error.issues[0].message}`);
      if (parsed.data.kind !== checked.kind) {
        throw new RangeError(
          `schedule state is for \`${parsed.data.kind}\`, this schedule is \`${checked.kind}\``,
        );
      }
      s = { ...parsed.data };
    },
  };
}

/**
 * The end of epoch `epoch` for a runner, whose validation ran (`valError`) or not (undefined, under
 * `--eval-every` or without validation images). A plateau schedule observes evaluations only; a
 * step or constant one every epoch, so that its drops fall on their epochs however seldom
 * validation runs. Returns the line to print when the rate was divided.
 */
export function endEpoch(
  schedule: Schedule,
  epoch: number,
  valError: number | undefined,
): string | undefined {
  const lr = schedule.lr();
  if (!schedule.observe(epoch, valError).dropped) return undefined;
  const why =
    schedule.config.kind === "plateau"
      ? "validation error stopped improving"
      : `step schedule, after epoch ${epoch}`;
  return `${why}: learning rate ${lr} → ${schedule.lr()}`;
}

interface Checked {
  kind: ScheduleConfig["kind"];
  lr0: number;
  factor: number;
  patience: number;
  maxDrops: number;
  minDelta: number;
  every: number;
}

function checkConfig(config: ScheduleConfig): Checked {
  const bad = (what: string): never => {
    throw new RangeError(`${config.kind} schedule: ${what}`);
  };
  if (!(config.lr0 > 0) || !Number.isFinite(config.lr0))
    bad(`lr0 must be a finite number > 0, got ${config.lr0}`);
  const out: Checked = {
    kind: config.kind,
    lr0: config.lr0,
    factor: 10,
    patience: 1,
    maxDrops: Infinity,
    minDelta: 0,
    every: Infinity,
  };
  if (config.kind === "constant") return out;
  out.factor = config.factor ?? 10;
  if (!(out.factor > 1) || !Number.isFinite(out.factor))
    bad(`factor must be a finite number > 1, got ${out.factor}`);
  if (config.kind === "step") {
    if (!Number.isInteger(config.every) || config.every < 1)
      bad(`every must be an integer ≥ 1, got ${config.every}`);
    out.every = config.every;
    return out;
  }
  out.patience = config.patience ?? 1;
  out.maxDrops = config.maxDrops ?? Infinity;
  out.minDelta = config.minDelta ?? 0;
  if (!Number.isInteger(out.patience) || out.patience < 1)
    bad(`patience must be an integer ≥ 1, got ${out.patience}`);
  if (out.maxDrops !== Infinity && (!Number.isInteger(out.maxDrops) || out.maxDrops < 0)) {
    bad(`maxDrops must be an integer ≥ 0, got ${out.maxDrops}`);
  }
  if (!(out.minDelta >= 0) || !Number.isFinite(out.minDelta))
    bad(`minDelta must be a finite number ≥ 0, got ${out.minDelta}`);
  return out;
}
