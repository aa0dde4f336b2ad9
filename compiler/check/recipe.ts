// The `train { … }` and `data { … }` sections: the training recipe and the data it reads, validated
// with zod against the network (dropout layers named in the recipe must exist). Defaults are the
// paper's: batch 128, ~90 epochs, SGD with momentum 0.9 and weight decay 0.0005, ε = 0.01 divided
// by 10 when the validation error stops improving (three times at most).
import { z } from "zod";
import type { NamedArg, SectionDecl, Span } from "../../grammar/ast.ts";
import { diag, didYouMean, type Diagnostic } from "../diagnostics.ts";
import type { Graph } from "../graph.ts";
import { nonNegInt, posInt } from "./attributes.ts";
import { evaluate, newScope, showVal, toPlain } from "./values.ts";

export type LrSchedule =
  /** Divide by `factor` when the validation error has not improved for `patience` evaluations. */
  | { kind: "plateau"; patience: number; factor: number; maxDrops: number }
  /** Divide by `factor` every `every` epochs. */
  | { kind: "step"; every: number; factor: number }
  | { kind: "constant" };

export interface Recipe {
  batch: number;
  epochs: number;
  lr: number;
  momentum: number;
  weightDecay: number;
  schedule: LrSchedule;
  seed: number;
  /** Dropout layers active in training; `undefined` means every dropout layer. */
  dropout?: string[];
  /** Evaluate on the validation set every this many epochs. */
  evalEvery: number;
  devices: number;
  /** How the network spreads over `devices` > 1: the paper's towers, data-parallel, or hybrid. */
  placement: Placement;
}

export type Placement = "model" | "data" | "hybrid";

export interface DataSpec {
  dataset: "fashion_mnist";
  /** Directory of the dataset files; the runner's --data overrides it. */
  dir?: string;
  /** Examples held out of the training set for validation (the schedule watches their error). */
  validation: number;
  /** Random crops: pad each side by this many pixels, crop back to the input size (0: off). */
  crop: number;
  /** Random horizontal reflections. */
  flip: boolean;
}

const nonNeg = z.number().finite().nonnegative();

interface EntrySpec {
  schema: z.ZodType;
  expects: string;
}

const scheduleSchema = z.union([
  z.literal("constant").transform((): LrSchedule => ({ kind: "constant" })),
  z
    .object({
      call: z.literal("plateau"),
      args: z.union([z.tuple([posInt]), z.tuple([posInt, z.number().gt(1)])]),
    })
    .transform((c): LrSchedule => ({
      kind: "plateau",
      patience: c.args[0],
      factor: c.args[1] ?? 10,
      maxDrops: 3,
    })),
  z
    .object({
      call: z.literal("step"),
      args: z.union([z.tuple([posInt]), z.tuple([posInt, z.number().gt(1)])]),
    })
    .transform((c): LrSchedule => ({ kind: "step", every: c.args[0], factor: c.args[1] ?? 10 })),
]);

const trainEntries: Record<string, EntrySpec> = {
  batch: { schema: posInt, expects: "a positive integer" },
  epochs: { schema: posInt, expects: "a positive integer" },
  lr: { schema: z.number().finite().positive(), expects: "a positive number" },
  momentum: { schema: z.number().finite().min(0).lt(1), expects: "a number in [0, 1)" },
  weight_decay: { schema: nonNeg, expects: "a non-negative number" },
  schedule: {
    schema: scheduleSchema,
    expects:
      "`plateau(patience)`, `plateau(patience, factor)`, `step(epochs)`, `step(epochs, factor)` or `constant`",
  },
  max_drops: { schema: nonNegInt, expects: "a non-negative integer" },
  seed: { schema: nonNegInt, expects: "a non-negative integer" },
  dropout: { schema: z.array(z.string()), expects: "a list of dropout layer names, e.g. `[drop6, drop7]`" },
  eval_every: { schema: posInt, expects: "a positive integer" },
  devices: { schema: posInt, expects: "a positive integer" },
  placement: {
    schema: z.enum(["model", "data", "hybrid"]),
    expects: "`model` (the paper's towers), `data` or `hybrid`",
  },
};

const dataEntries: Record<string, EntrySpec> = {
  dataset: { schema: z.literal("fashion_mnist"), expects: "`fashion_mnist`" },
  dir: { schema: z.string().min(1), expects: "a directory path in quotes" },
  validation: { schema: nonNegInt, expects: "a non-negative integer (examples held out)" },
  crop: { schema: nonNegInt, expects: "a non-negative integer (padding for random crops)" },
  flip: { schema: z.enum(["true", "false"]).transform((b) => b === "true"), expects: "`true` or `false`" },
};

export const defaultRecipe: Recipe = {
  batch: 128,
  epochs: 90,
  lr: 0.01,
  momentum: 0.9,
  weightDecay: 0.0005,
  schedule: { kind: "plateau", patience: 2, factor: 10, maxDrops: 3 },
  seed: 0,
  evalEvery: 1,
  devices: 1,
  placement: "model",
};

export const defaultData: DataSpec = { dataset: "fashion_mnist", validation: 5000, crop: 0, flip: false };

/** Validated entries of one section kind, by name, with each value's span for later checks. */
function readSection(
  sections: SectionDecl[],
  which: "train" | "data",
  specs: Record<string, EntrySpec>,
  out: Diagnostic[],
): Map<string, { value: unknown; span: Span }> {
  const values = new Map<string, { value: unknown; span: Span }>();
  const scope = newScope();
  const seen = new Map<string, NamedArg>();
  for (const section of sections.filter((s) => s.section === which)) {
    for (const entry of section.entries) {
      const key = entry.name.name;
      if (key === "") continue; // recovered by the parser, already reported
      const first = seen.get(key);
      if (first) {
        out.push(
          diag("AX2021", { attr: key }, entry.name.span, {
            labels: [{ span: first.name.span, message: "first given here" }],
          }),
        );
        continue;
      }
      seen.set(key, entry);
      const spec = Object.hasOwn(specs, key) ? specs[key] : undefined;
      if (!spec) {
        out.push(
          diag("AX2025", { section: which, key }, entry.name.span, {
            help:
              didYouMean(key, Object.keys(specs)) ??
              `\`${which}\` takes ${Object.keys(specs)
                .map((k) => `\`${k}\``)
                .join(", ")}`,
          }),
        );
        continue;
      }
      const v = evaluate(entry.value, scope, out);
      if (v.kind === "error") continue;
      const parsed = spec.schema.safeParse(toPlain(v));
      if (!parsed.success) {
        out.push(
          diag(
            "AX2004",
            { attr: key, op: which, problem: `must be ${spec.expects}, got \`${showVal(v)}\`` },
            v.span,
          ),
        );
        continue;
      }
      values.set(key, { value: parsed.data, span: entry.value.span });
    }
  }
  return values;
}

export function checkRecipe(
  sections: SectionDecl[],
  graph: Graph | undefined,
  out: Diagnostic[],
): { recipe: Recipe; data: DataSpec } {
  const t = readSection(sections, "train", trainEntries, out);
  const d = readSection(sections, "data", dataEntries, out);
  const get = <T>(m: Map<string, { value: unknown }>, key: string, fallback: T): T =>
    (m.get(key)?.value as T | undefined) ?? fallback;
  let schedule = get<LrSchedule>(t, "schedule", defaultRecipe.schedule);
  if (schedule.kind === "plateau" && t.has("max_drops"))
    schedule = { ...schedule, maxDrops: get(t, "max_drops", 3) };
  const recipe: Recipe = {
    batch: get(t, "batch", defaultRecipe.batch),
    epochs: get(t, "epochs", defaultRecipe.epochs),
    lr: get(t, "lr", defaultRecipe.lr),
    momentum: get(t, "momentum", defaultRecipe.momentum),
    weightDecay: get(t, "weight_decay", defaultRecipe.weightDecay),
    schedule,
    seed: get(t, "seed", defaultRecipe.seed),
    dropout: t.get("dropout")?.value as string[] | undefined,
    evalEvery: get(t, "eval_every", defaultRecipe.evalEvery),
    devices: get(t, "devices", defaultRecipe.devices),
    placement: get(t, "placement", defaultRecipe.placement),
  };
  const data: DataSpec = {
    dataset: get(d, "dataset", defaultData.dataset),
    dir: d.get("dir")?.value as string | undefined,
    validation: get(d, "validation", defaultData.validation),
    crop: get(d, "crop", defaultData.crop),
    flip: get(d, "flip", defaultData.flip),
  };
  // Named dropout layers must be dropout layers of this network.
  const dropoutEntry = t.get("dropout");
  if (graph && dropoutEntry && recipe.dropout) {
    const dropouts = graph.nodes.filter((n) => n.attrs.op === "dropout").map((n) => n.name);
    for (const name of recipe.dropout) {
      if (!dropouts.includes(name)) {
        out.push(
          diag("AX2029", { name }, dropoutEntry.span, {
            help:
              didYouMean(name, dropouts) ??
              (dropouts.length
                ? `dropout layers: ${dropouts.map((n) => `\`${n}\``).join(", ")}`
                : "the network has no dropout layer"),
          }),
        );
      }
    }
  }
  return { recipe, data };
}
