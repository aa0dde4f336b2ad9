// The `train { … }` recipe: hyper-parameters far from anything that trains, a learning-rate
// schedule that can never act within the recipe's epochs, and device settings the runner rejects.
// Every finding points at the entry as written; values the recipe leaves out are the paper's.
import type { Span } from "../../../grammar/ast.ts";
import { diag } from "../../diagnostics.ts";
import type { Range } from "../config.ts";
import { deleteLines, num, trainEntries } from "../model.ts";
import type { GraphContext, LintCode, LintRule } from "../rule.ts";

const slice = (source: string, span: Span) => source.slice(span.start.offset, span.end.offset);
const showRange = ([lo, hi]: Range) => `${num(lo)} to ${num(hi)}`;

function rangeRule(
  code: LintCode & ("AX5016" | "AX5017" | "AX5018"),
  name: string,
  entry: "lr" | "momentum" | "weight_decay",
  setting: "learningRate" | "momentum" | "weightDecay",
  value: (ctx: GraphContext) => number,
  why: (v: number, range: Range, ctx: GraphContext) => string,
  summary: string,
  explanation: string,
): LintRule {
  return {
    code,
    name,
    needs: "graph",
    summary,
    explanation,
    check(ctx) {
      const written = trainEntries(ctx.ast).get(entry);
      const range = ctx.settings.usualRanges[setting];
      const v = value(ctx);
      if (!written || (v >= range[0] && v <= range[1])) return;
      ctx.report(
        diag(code, { value: num(v), range: showRange(range) }, written.span, {
          notes: [why(v, range, ctx), `the usual range is lint.usualRanges.${setting} in alexc.json`],
          help: `the paper's recipe uses ${entry}: ${{ lr: "0.01", momentum: "0.9", weight_decay: "0.0005" }[entry]}`,
        }),
      );
    },
  };
}

export const learningRateRange = rangeRule(
  "AX5016",
  "learning_rate_range",
  "lr",
  "learningRate",
  (ctx) => ctx.recipe.lr,
  (v, [lo]) =>
    v < lo
      ? "at this rate the weights barely move: training needs orders of magnitude more steps"
      : "SGD steps this large overshoot: the loss grows and turns NaN within a few steps",
  "a learning rate far outside the usual range",
  `SGD with momentum trains AlexNet-style networks at learning rates around 0.01 (the paper's
ε = 0.01, divided by 10 up to three times); rates from about 1e-4 to 0.1 are common. Far above
that the steps overshoot and the loss diverges to NaN within a few steps; far below it the
weights barely move and the schedule's epochs run out before anything is learnt.

The rule fires outside 1e-5 to 1, configurable as \`lint.usualRanges.learningRate\` in alexc.json
(a recipe that scales the rate with a very large batch may need a wider range).

Fix: start from the paper's 0.01 and let the schedule lower it.`,
);

export const momentumRange = rangeRule(
  "AX5017",
  "momentum_range",
  "momentum",
  "momentum",
  (ctx) => ctx.recipe.momentum,
  (v) =>
    `the velocity averages the last ~1/(1 − μ) = ${Math.round(1 / (1 - v))} gradients, so it reacts that many steps late and overshoots`,
  "a momentum far outside the usual range",
  `The update v ← μ·v − ε·(gradient + decay) averages the gradients of roughly the last 1/(1 − μ)
steps: 10 at the paper's μ = 0.9, 100 at 0.99. Beyond 0.99 the velocity reacts to a change in the
gradient hundreds of steps late, oscillates around minima and often diverges, unless the learning
rate is lowered by the same factor.

The rule fires above 0.99 (and below 0, which the recipe already rejects), configurable as
\`lint.usualRanges.momentum\` in alexc.json.

Fix: use the paper's 0.9 (or 0.99 at most, with a smaller learning rate).`,
);

export const weightDecayRange = rangeRule(
  "AX5018",
  "weight_decay_range",
  "weight_decay",
  "weightDecay",
  (ctx) => ctx.recipe.weightDecay,
  (v, _range, ctx) =>
    `each step shrinks every weight by ε·λ = ${num(ctx.recipe.lr * v)} of itself, ${Math.round(v / 0.0005)}× the paper's pull toward zero`,
  "a weight decay far outside the usual range",
  `Weight decay λ pulls every weight toward zero by ε·λ of itself per step (v ← μ·v − λ·ε·w − ε·g).
The paper uses λ = 0.0005 and notes it is not merely a regulariser: it lowers the training error
too. Values from 1e-5 to about 5e-3 are common. Much larger, the pull wins over the gradient:
weights shrink toward zero, the network underfits and its activations fade layer by layer.

The rule fires above 0.01, configurable as \`lint.usualRanges.weightDecay\` in alexc.json.

Fix: use the paper's 0.0005.`,
);

export const batchNotDivisible: LintRule = {
  code: "AX5019",
  name: "batch_not_divisible",
  needs: "graph",
  summary: "under data or hybrid placement the batch does not split evenly over the devices",
  explanation: `With \`placement: data\` each device runs the whole network on its share of the batch, and with
\`placement: hybrid\` (Krizhevsky 2014) the convolutions do; the gradients are averaged across the
devices. The shares must be equal for that average to be the gradient of the whole batch, so the
batch has to divide by the number of devices. The training runner stops on such a recipe.

Fix: use a batch that divides by the number of devices (the paper's 128 does for two).`,
  check(ctx) {
    const { batch, devices, placement } = ctx.recipe;
    if (devices < 2 || placement === "model" || batch % devices === 0) return;
    const entries = trainEntries(ctx.ast);
    const at = entries.get("batch") ?? entries.get("placement") ?? entries.get("devices");
    const lower = Math.max(devices, batch - (batch % devices));
    const upper = batch - (batch % devices) + devices;
    ctx.report(
      diag("AX5019", { batch, devices, placement }, at?.span ?? ctx.network.name.span, {
        help: `use batch ${lower} or ${upper}`,
        fix: entries.get("batch")
          ? {
              description: `use batch ${upper}`,
              edits: [{ span: entries.get("batch")!.span, text: String(upper) }],
              applicability: "maybe",
            }
          : undefined,
      }),
    );
  },
};

export const placementMismatch: LintRule = {
  code: "AX5021",
  name: "placement_mismatch",
  needs: "graph",
  summary: "the recipe's devices and placement do not fit the network",
  explanation: `The recipe's \`devices\` and \`placement\` are the training runner's defaults. alexc places a network on
one or two devices, and model and hybrid placement put tower t on device t, so they need a network
with as many towers as devices (\`towers: 2\`). Such a recipe compiles, but the runner stops on it
before the first step (AX3003).

Fix: \`placement: data\` (each device runs the whole network on half the batch), or give the
network two towers, or train on one device.`,
  check(ctx) {
    const { devices, placement } = ctx.recipe;
    const towers = ctx.graph.towers;
    let problem: string | undefined;
    if (devices > 2) problem = "alexc places a network on one or two devices";
    else if (devices === 2 && placement !== "data" && towers !== 2)
      problem = `\`${ctx.graph.name}\` has ${towers} tower${towers === 1 ? "" : "s"} and \`${placement}\` placement puts tower t on device t`;
    if (!problem) return;
    const entries = trainEntries(ctx.ast);
    const at = entries.get("devices") ?? entries.get("placement");
    ctx.report(
      diag("AX5021", { devices, placement, problem }, at?.span ?? ctx.network.name.span, {
        help: devices > 2 ? "use `devices: 2`" : "use `placement: data`, or `towers: 2` in the network",
      }),
    );
  },
};

export const ineffectiveSchedule: LintRule = {
  code: "AX5020",
  name: "ineffective_schedule",
  needs: "graph",
  summary: "the learning-rate schedule can never change the rate within the recipe's epochs",
  explanation: `The schedule lowers the learning rate during training: \`step(n)\` after every n epochs, \`plateau(p)\`
when the validation error has not improved for p evaluations (the paper's rule), at most
\`max_drops\` times. A schedule that cannot act within the recipe's \`epochs\` trains at the first
rate throughout, which is rarely what was meant:

- \`step(n)\` with n ≥ epochs: the first drop would come after the last epoch;
- \`plateau(p)\`: the first evaluation always counts as an improvement, so a drop needs p + 1
  evaluations before the last epoch (one per \`eval_every\` epochs);
- \`plateau\` with \`max_drops: 0\`;
- \`max_drops\` with a schedule other than \`plateau\`: only plateau counts its drops, so the entry
  is ignored (\`--fix\` removes it).

Fix: shorten the step or the patience, evaluate more often, or write \`schedule: constant\` if a
constant rate is the intent.`,
  check(ctx) {
    const { schedule, epochs, evalEvery } = ctx.recipe;
    const entries = trainEntries(ctx.ast);
    const written = entries.get("schedule");
    const what = written
      ? `\`schedule: ${slice(ctx.source, written.span)}\``
      : "the default `plateau(2)` schedule";
    const at = written?.span ?? entries.get("epochs")?.span ?? ctx.network.name.span;
    const report = (reason: string, help: string) =>
      ctx.report(diag("AX5020", { what, reason }, at, { help }));
    const maxDrops = entries.get("max_drops");
    if (maxDrops && schedule.kind !== "plateau") {
      ctx.report(
        diag(
          "AX5020",
          {
            what: `\`max_drops: ${slice(ctx.source, maxDrops.span)}\``,
            reason: `only \`plateau\` counts its drops, and the schedule is ${what.replace("schedule: ", "")}`,
          },
          maxDrops.span,
          {
            help: "remove it",
            fix: {
              description: "remove `max_drops`",
              edits: [deleteLines(ctx.source, maxDrops.entrySpan)],
              applicability: "safe",
            },
          },
        ),
      );
    }
    if (schedule.kind === "step" && schedule.every >= epochs)
      report(
        `it divides the rate after every ${schedule.every} epochs and the recipe trains for ${epochs}`,
        `use a step shorter than ${epochs} epochs, or \`schedule: constant\``,
      );
    if (schedule.kind === "plateau") {
      const evaluations = Math.floor((epochs - 1) / evalEvery);
      if (schedule.maxDrops === 0)
        report(
          "`max_drops: 0` allows no drop",
          "allow drops (the paper's rule made three), or write `schedule: constant`",
        );
      else if (evaluations < schedule.patience + 1)
        report(
          `a drop needs ${schedule.patience + 1} evaluations before the last epoch, and ${epochs} epochs with \`eval_every: ${evalEvery}\` make ${evaluations}`,
          "lower the patience, evaluate more often, or train for more epochs",
        );
    }
  },
};

export const recipeRules = [
  learningRateRange,
  momentumRange,
  weightDecayRange,
  batchNotDivisible,
  ineffectiveSchedule,
  placementMismatch,
];
