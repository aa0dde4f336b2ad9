// Attribute schemas per layer kind, validated with zod. Each attribute carries a plain-words
// description of what it accepts, so a failure reads "must be a positive integer, got 0" rather
// than a schema dump.
import { z } from "zod";
import type { ActivationOp, Init, OpKind, TowerMode } from "../graph.ts";

export interface AttrSpec<T = unknown> {
  schema: z.ZodType<T>;
  /** What the attribute accepts, completing "must be …". */
  expects: string;
  /** Used when the attribute is absent; absent and no default means required, unless optional. */
  default?: T;
  /** May be absent with no default; the shape rule then derives it (a pool's stride = its window). */
  optional?: boolean;
}

export const posInt = z
  .number()
  .int()
  .positive()
  .max(2 ** 31 - 1);
export const nonNegInt = z
  .number()
  .int()
  .nonnegative()
  .max(2 ** 31 - 1);
const pair = <T extends z.ZodType>(t: T) => z.tuple([t, t]);

/** `11` or `(11, 11)` → [h, w] */
const size2: AttrSpec<[number, number]> = {
  schema: z.union([posInt.transform((n): [number, number] => [n, n]), pair(posInt)]),
  expects: "a positive integer or a pair `(height, width)`",
};

/** Padding: `2` (both sides) or `(before, after)`, the same for height and width. */
const padding: AttrSpec<[number, number]> = {
  schema: z.union([nonNegInt.transform((n): [number, number] => [n, n]), pair(nonNegInt)]),
  expects: "a non-negative integer or a pair `(before, after)`",
  default: [0, 0],
};

const round: AttrSpec<"floor" | "ceil"> = {
  schema: z.enum(["floor", "ceil"]),
  expects: "`floor` or `ceil`",
  default: "floor",
};

const towers: AttrSpec<TowerMode> = {
  schema: z.union([
    z.literal("local").transform((): TowerMode => ({ kind: "local" })),
    z.literal("cross").transform((): TowerMode => ({ kind: "cross" })),
    z
      .object({ call: z.literal("on"), args: z.tuple([nonNegInt]) })
      .transform((c): TowerMode => ({ kind: "on", tower: c.args[0] })),
  ]),
  expects: "`local`, `cross` or `on(<tower>)`",
  default: { kind: "cross" },
};

const finite = z.number().finite();

const init: AttrSpec<Init> = {
  schema: z.union([
    z
      .object({ call: z.literal("normal"), args: z.tuple([finite.nonnegative()]) })
      .transform((c): Init => ({ kind: "normal", mean: 0, std: c.args[0] })),
    z
      .object({ call: z.literal("normal"), args: z.tuple([finite, finite.nonnegative()]) })
      .transform((c): Init => ({ kind: "normal", mean: c.args[0], std: c.args[1] })),
    z
      .object({ call: z.literal("constant"), args: z.tuple([finite]) })
      .transform((c): Init => ({ kind: "constant", value: c.args[0] })),
  ]),
  expects: "`normal(std)`, `normal(mean, std)` or `constant(value)`",
  default: { kind: "normal", mean: 0, std: 0.01 },
};

/** `bias: 1` initialises the bias to 1; `bias: none` drops the bias. */
const bias: AttrSpec<number | "none"> = {
  schema: z.union([finite, z.literal("none")]),
  expects: "a number (the bias's initial value) or `none`",
  default: 0,
};

const positiveNumber = (def?: number): AttrSpec<number> => ({
  schema: finite.positive(),
  expects: "a positive number",
  default: def,
});
const nonNegativeNumber = (def?: number): AttrSpec<number> => ({
  schema: finite.nonnegative(),
  expects: "a non-negative number",
  default: def,
});

/** Every layer kind, its input count (`min`, `max`) and its attributes. */
export interface OpSpec {
  inputs: { min: number; max: number };
  attrs: Record<string, AttrSpec>;
}

const one = { min: 1, max: 1 };
const activation: OpSpec = { inputs: one, attrs: {} };

export const opSpecs = {
  conv: {
    inputs: one,
    attrs: {
      filters: { schema: posInt, expects: "a positive integer" },
      kernel: size2,
      stride: { ...size2, default: [1, 1] },
      pad: padding,
      round,
      towers,
      init,
      bias,
    },
  },
  dense: {
    inputs: one,
    attrs: { units: { schema: posInt, expects: "a positive integer" }, towers, init, bias },
  },
  relu: activation,
  tanh: activation,
  sigmoid: activation,
  lrn: {
    inputs: one,
    attrs: {
      size: { schema: posInt, expects: "a positive integer", default: 5 },
      k: nonNegativeNumber(2),
      alpha: nonNegativeNumber(1e-4),
      beta: positiveNumber(0.75),
      alpha_of: {
        schema: z.enum(["sum", "mean"]),
        expects: "`sum` (α times the plain sum, the paper) or `mean` (α/n, Caffe/ONNX/PyTorch)",
        default: "sum",
      },
    },
  },
  maxpool: {
    inputs: one,
    attrs: { window: size2, stride: { ...size2, optional: true }, pad: padding, round },
  },
  avgpool: {
    inputs: one,
    attrs: { window: size2, stride: { ...size2, optional: true }, pad: padding, round },
  },
  dropout: {
    inputs: one,
    attrs: {
      p: {
        schema: finite.min(0).lt(1),
        expects: "a probability in [0, 1)",
        default: 0.5,
      },
    },
  },
  batchnorm: { inputs: one, attrs: { eps: positiveNumber(1e-5), momentum: nonNegativeNumber(0.1) } },
  flatten: { inputs: one, attrs: {} },
  concat: { inputs: { min: 2, max: 64 }, attrs: {} },
  softmax: { inputs: one, attrs: {} },
  softmax_cross_entropy: { inputs: one, attrs: {} },
} as const satisfies Record<OpKind, OpSpec>;

export const layerKinds = Object.keys(opSpecs) as OpKind[];

export function isLayerKind(name: string): name is OpKind {
  return Object.hasOwn(opSpecs, name);
}

export const activationOps: readonly ActivationOp[] = ["relu", "tanh", "sigmoid"];
