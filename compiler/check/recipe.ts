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

/** The `data` section: which dataset the generated runner reads, and how it augments it. */
export type DataSpec = FashionMnistData | ImageFolderData;

export interface FashionMnistData {
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

/**
 * An ImageNet-style folder (`train/<class>/*`, `val/…`) read with the paper's preprocessing and
 * augmentation (runtime/data/images): every image rescaled so its shorter side is `resize` and
 * centre-cropped to `resize`², random input-sized crops of that, reflections, PCA lighting.
 */
export interface ImageFolderData {
  dataset: "image_folder";
  dir?: string;
  /** Shorter side, then central square, of the stored images (the paper's 256). */
  resize: number;
  flip: boolean;
  /** σ of the PCA lighting coefficients α (the paper's 0.1); 0 turns it off. */
  lighting: number;
  /** What is subtracted from each input: the training set's mean image (the paper), per-channel mean, or nothing. */
  mean: "image" | "channel" | "none";
  /** For a flat `val/`: the label file (`<file> <class>` per line), relative to the folder. */
  valLabels?: string;
  /** Training images held out for validation when the folder has no `val/`. */
  validation: number;
}

/** Keys of the `data` section that only one dataset reads. */
const dataKeysOf: Record<DataSpec["dataset"], readonly string[]> = {
  fashion_mnist: ["dataset", "dir", "validation", "crop", "flip"],
  image_folder: ["dataset", "dir", "resize", "flip", "lighting", "mean", "val_labels", "validation"],
};

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
  dataset: {
    schema: z.enum(["fashion_mnist", "image_folder"]),
    expects: "`fashion_mnist` or `image_folder`",
  },
  dir: { schema: z.string().min(1), expects: "a directory path in quotes" },
  resize: { schema: posInt, expects: "a positive integer (the stored images' side, e.g. 256)" },
  lighting: {
    schema: z.number().finite().nonnegative(),
    expects: "a non-negative number (σ of the PCA lighting coefficients; the paper's 0.1)",
  },
  mean: { schema: z.enum(["image", "channel", "none"]), expects: "`image`, `channel` or `none`" },
  val_labels: { schema: z.string().min(1), expects: "a label file path in quotes" },
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

export const defaultData: FashionMnistData = {
  dataset: "fashion_mnist",
  validation: 5000,
  crop: 0,
  flip: false,
};

/** The paper's preprocessing and augmentation for ImageNet (section 4.1). */
export const defaultImageFolder: ImageFolderData = {
  dataset: "image_folder",
  resize: 256,
  flip: true,
  lighting: 0.1,
  mean: "image",
  validation: 10000,
};

/** Validated entries of one section kind, by name, with each value's span for later checks. */
function readSection(
  sections: SectionDecl[],
  which: "train" | "data",
  specs: Record<string, EntrySpec>,
  out: Diagnostic[],
  given?: Set<string>,
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
      given?.add(key);
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
  const givenData = new Set<string>();
  const d = readSection(sections, "data", dataEntries, out, givenData);
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
  const data = readData(d, givenData, graph, out);
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

function readData(
  d: Map<string, { value: unknown; span: Span }>,
  given: Set<string>,
  graph: Graph | undefined,
  out: Diagnostic[],
): DataSpec {
  const get = <T>(key: string, fallback: T): T => (d.get(key)?.value as T | undefined) ?? fallback;
  const dataset = get<DataSpec["dataset"]>("dataset", "fashion_mnist");
  // A `dataset` already reported as invalid leaves no basis for judging the other keys.
  const datasetInvalid = given.has("dataset") && !d.has("dataset");
  for (const [key, entry] of datasetInvalid ? [] : d) {
    if (dataKeysOf[dataset].includes(key)) continue;
    const other = dataset === "image_folder" ? "fashion_mnist" : "image_folder";
    out.push(
      diag("AX2031", { key, dataset }, entry.span, {
        help:
          key === "crop"
            ? "image folders crop the network's input size out of the `resize`d images; remove `crop`"
            : `\`${key}\` is read for \`dataset: ${other}\`; remove it`,
      }),
    );
  }
  if (dataset === "fashion_mnist") {
    return {
      dataset,
      dir: d.get("dir")?.value as string | undefined,
      validation: get("validation", defaultData.validation),
      crop: get("crop", defaultData.crop),
      flip: get("flip", defaultData.flip),
    };
  }
  const data: ImageFolderData = {
    dataset,
    ...(d.has("dir") ? { dir: d.get("dir")!.value as string } : {}),
    resize: get("resize", defaultImageFolder.resize),
    flip: get("flip", defaultImageFolder.flip),
    lighting: get("lighting", defaultImageFolder.lighting),
    mean: get("mean", defaultImageFolder.mean),
    ...(d.has("val_labels") ? { valLabels: d.get("val_labels")!.value as string } : {}),
    validation: get("validation", defaultImageFolder.validation),
  };
  // The folder's images are RGB squares of side `resize`; the network must take an RGB crop of them.
  const input = graph?.inputs[0]?.shape;
  if (input) {
    const [channels, height, width] = input;
    const problem =
      channels !== 3
        ? `has ${channels} channel(s); image folders give RGB (3)`
        : height !== width
          ? `is ${height}×${width}; crops of image folders are square`
          : height > data.resize
            ? `is ${height}×${width}, larger than the ${data.resize}×${data.resize} images (\`resize\`)`
            : undefined;
    if (problem)
      out.push(
        diag(
          "AX2032",
          { input: `[${input.join(", ")}]`, problem },
          (d.get("resize") ?? d.get("dataset"))!.span,
          {
            help: "the paper crops 224×224 inputs out of 256×256 images: input image: f32[3, 224, 224], resize: 256",
          },
        ),
      );
  }
  return data;
}
