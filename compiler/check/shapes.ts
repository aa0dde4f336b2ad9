// Shape and tower rules, one entry per layer kind: from the validated attributes and the inputs'
// shapes and tower layouts to the node's output shape, layout, parameters and multiply-adds.
import type { Span } from "../../grammar/ast.ts";
import { diag, type Diagnostic } from "../diagnostics.ts";
import {
  elementCount,
  type Init,
  type NodeAttrs,
  type OpKind,
  type TowerLayout,
  type TowerMode,
} from "../graph.ts";
import { spatial } from "./window-geometry.ts";

export interface InputInfo {
  name: string;
  shape: number[];
  layout: TowerLayout;
}

export interface ParamSpec {
  suffix: "weight" | "bias" | "running_mean" | "running_var";
  shape: number[];
  init: Init;
  trainable: boolean;
}

export interface RuleResult {
  attrs: NodeAttrs;
  shape: number[];
  layout: TowerLayout;
  params: ParamSpec[];
  macs: number;
}

export interface RuleContext {
  name: string;
  towers: number;
  classes: number;
  /** Validated attributes (defaults applied); absent optional ones are undefined. */
  attrs: Record<string, unknown>;
  inputs: InputInfo[];
  /** Span of the layer statement, and of each attribute's value where given. */
  span: Span;
  attrSpan: (attr: string) => Span;
  inputSpan: (index: number) => Span;
  report: (d: Diagnostic) => void;
}

type Rule = (ctx: RuleContext) => RuleResult | undefined;

function describeLayout(layout: TowerLayout): string {
  switch (layout.kind) {
    case "replicated":
      return "whole on every tower";
    case "split":
      return `split over ${layout.towers} towers`;
    case "on":
      return `whole on tower ${layout.tower}`;
  }
}

/** Output layout of a conv/dense layer in the given tower mode. */
function modeLayout(mode: TowerMode, towers: number): TowerLayout {
  if (mode.kind === "on") return { kind: "on", tower: mode.tower };
  return towers > 1 ? { kind: "split", towers } : { kind: "on", tower: 0 };
}

/** Checks the tower mode against the input and the channel counts; returns the group count. */
function towerGroups(
  ctx: RuleContext,
  mode: TowerMode,
  inChannels: number,
  outChannels: number,
): number | undefined {
  const { towers, name } = ctx;
  if (mode.kind === "on") {
    if (mode.tower >= towers) {
      ctx.report(diag("AX2024", { tower: mode.tower, towers }, ctx.attrSpan("towers")));
      return undefined;
    }
    return 1;
  }
  if (towers > 1 && outChannels % towers !== 0) {
    const what = ctx.attrs.filters !== undefined ? "filters" : "units";
    ctx.report(
      diag("AX2011", { what: `the ${what}`, name, count: outChannels, towers }, ctx.attrSpan(what), {
        help: `use a multiple of ${towers}, e.g. ${Math.max(towers, Math.round(outChannels / towers) * towers)}`,
      }),
    );
    return undefined;
  }
  if (mode.kind === "cross" || towers === 1) return 1;
  const input = ctx.inputs[0];
  if (input.layout.kind !== "split" || input.layout.towers !== towers) {
    ctx.report(
      diag(
        "AX2017",
        { name, input: input.name, layout: describeLayout(input.layout) },
        ctx.attrSpan("towers"),
        {
          help: "use `towers: cross` to read every tower's maps",
        },
      ),
    );
    return undefined;
  }
  if (inChannels % towers !== 0) {
    ctx.report(
      diag("AX2011", { what: "the input channels", name, count: inChannels, towers }, ctx.inputSpan(0)),
    );
    return undefined;
  }
  return towers;
}

const conv: Rule = (ctx) => {
  const stride = ctx.attrs.stride as [number, number];
  const s = spatial(ctx, "kernel", stride);
  if (!s) return undefined;
  const filters = ctx.attrs.filters as number;
  const mode = ctx.attrs.towers as TowerMode;
  const groups = towerGroups(ctx, mode, s.c, filters);
  if (groups === undefined) return undefined;
  const bias = ctx.attrs.bias as number | "none";
  const perGroupIn = s.c / groups;
  const params: ParamSpec[] = [
    {
      suffix: "weight",
      shape: [filters, perGroupIn, s.window[0], s.window[1]],
      init: ctx.attrs.init as Init,
      trainable: true,
    },
  ];
  if (bias !== "none")
    params.push({
      suffix: "bias",
      shape: [filters],
      init: { kind: "constant", value: bias },
      trainable: true,
    });
  return {
    attrs: {
      op: "conv",
      filters,
      kernel: s.window,
      stride,
      pad: s.padding,
      round: s.round,
      towers: mode,
      groups,
      bias: bias !== "none",
    },
    shape: [filters, s.oh, s.ow],
    layout: modeLayout(mode, ctx.towers),
    params,
    macs: filters * s.oh * s.ow * perGroupIn * s.window[0] * s.window[1],
  };
};

const dense: Rule = (ctx) => {
  const input = ctx.inputs[0];
  const inFeatures = elementCount(input.shape);
  const units = ctx.attrs.units as number;
  const mode = ctx.attrs.towers as TowerMode;
  const groups = towerGroups(ctx, mode, inFeatures, units);
  if (groups === undefined) return undefined;
  const bias = ctx.attrs.bias as number | "none";
  const params: ParamSpec[] = [
    { suffix: "weight", shape: [units, inFeatures / groups], init: ctx.attrs.init as Init, trainable: true },
  ];
  if (bias !== "none")
    params.push({ suffix: "bias", shape: [units], init: { kind: "constant", value: bias }, trainable: true });
  return {
    attrs: { op: "dense", units, towers: mode, groups, bias: bias !== "none" },
    shape: [units],
    layout: modeLayout(mode, ctx.towers),
    params,
    macs: (units * inFeatures) / groups,
  };
};

const pool =
  (op: "maxpool" | "avgpool"): Rule =>
  (ctx) => {
    const window = ctx.attrs.window as [number, number];
    const stride = (ctx.attrs.stride as [number, number] | undefined) ?? window;
    const s = spatial(ctx, "window", stride);
    if (!s) return undefined;
    return {
      attrs: { op, window, stride, pad: s.padding, round: s.round },
      shape: [s.c, s.oh, s.ow],
      layout: ctx.inputs[0].layout,
      params: [],
      macs: 0,
    };
  };

/** Same shape and layout as the single input. */
const passthrough =
  (attrs: (ctx: RuleContext) => NodeAttrs): Rule =>
  (ctx) => ({
    attrs: attrs(ctx),
    shape: [...ctx.inputs[0].shape],
    layout: ctx.inputs[0].layout,
    params: [],
    macs: 0,
  });

const lrn: Rule = (ctx) => {
  const input = ctx.inputs[0];
  if (input.shape.length !== 3) {
    const got = `shape [${input.shape.join(", ")}]`;
    ctx.report(
      diag(
        "AX2028",
        { name: ctx.name, input: input.name, got, expected: "a [C, H, W] map" },
        ctx.inputSpan(0),
      ),
    );
    return undefined;
  }
  const groups = input.layout.kind === "split" ? input.layout.towers : 1;
  const a = ctx.attrs;
  return passthrough(() => ({
    op: "lrn",
    size: a.size as number,
    k: a.k as number,
    alpha: a.alpha as number,
    beta: a.beta as number,
    alphaOf: a.alpha_of as "sum" | "mean",
    groups,
  }))(ctx);
};

const batchnorm: Rule = (ctx) => {
  const c = ctx.inputs[0].shape[0] ?? 1;
  const result = passthrough(() => ({
    op: "batchnorm",
    eps: ctx.attrs.eps as number,
    momentum: ctx.attrs.momentum as number,
  }))(ctx);
  if (!result) return undefined;
  const constant = (value: number): Init => ({ kind: "constant", value });
  result.params = [
    { suffix: "weight", shape: [c], init: constant(1), trainable: true },
    { suffix: "bias", shape: [c], init: constant(0), trainable: true },
    { suffix: "running_mean", shape: [c], init: constant(0), trainable: false },
    { suffix: "running_var", shape: [c], init: constant(1), trainable: false },
  ];
  return result;
};

const concat: Rule = (ctx) => {
  const [first, ...rest] = ctx.inputs;
  for (const [i, input] of rest.entries()) {
    const same =
      input.shape.length === first.shape.length &&
      input.shape.slice(1).every((d, k) => d === first.shape[k + 1]);
    if (!same) {
      const expected = `shape [*, ${first.shape.slice(1).join(", ")}] like \`${first.name}\``;
      ctx.report(
        diag(
          "AX2028",
          { name: ctx.name, input: input.name, got: `shape [${input.shape.join(", ")}]`, expected },
          ctx.inputSpan(i + 1),
        ),
      );
      return undefined;
    }
  }
  const channels = ctx.inputs.reduce((sum, input) => sum + input.shape[0], 0);
  const towerOf = (l: TowerLayout) => (l.kind === "on" ? l.tower : -1);
  const sameTower = ctx.inputs.every(
    (input) => towerOf(input.layout) === towerOf(first.layout) && towerOf(first.layout) >= 0,
  );
  return {
    attrs: { op: "concat" },
    shape: [channels, ...first.shape.slice(1)],
    layout: sameTower ? first.layout : { kind: "replicated" },
    params: [],
    macs: 0,
  };
};

const vectorInput = (ctx: RuleContext): boolean => {
  const input = ctx.inputs[0];
  if (input.shape.length === 1) return true;
  const flat = elementCount(input.shape);
  ctx.report(
    diag(
      "AX2028",
      { name: ctx.name, input: input.name, got: `shape [${input.shape.join(", ")}]`, expected: "a vector" },
      ctx.inputSpan(0),
      {
        help: `flatten it first or use a \`dense\` layer (it has ${flat} values)`,
      },
    ),
  );
  return false;
};

const gathered = (layout: TowerLayout): TowerLayout =>
  layout.kind === "on" ? layout : { kind: "replicated" };

export const shapeRules = {
  conv,
  dense,
  relu: passthrough(() => ({ op: "relu" })),
  tanh: passthrough(() => ({ op: "tanh" })),
  sigmoid: passthrough(() => ({ op: "sigmoid" })),
  lrn,
  maxpool: pool("maxpool"),
  avgpool: pool("avgpool"),
  dropout: passthrough((ctx) => ({ op: "dropout", p: ctx.attrs.p as number })),
  batchnorm,
  flatten: (ctx) => ({
    attrs: { op: "flatten" },
    shape: [elementCount(ctx.inputs[0].shape)],
    layout: ctx.inputs[0].layout,
    params: [],
    macs: 0,
  }),
  concat,
  softmax: (ctx) =>
    vectorInput(ctx)
      ? {
          attrs: { op: "softmax" },
          shape: [...ctx.inputs[0].shape],
          layout: gathered(ctx.inputs[0].layout),
          params: [],
          macs: 0,
        }
      : undefined,
  softmax_cross_entropy: (ctx) => {
    if (!vectorInput(ctx)) return undefined;
    const got = ctx.inputs[0].shape[0];
    if (got !== ctx.classes) {
      ctx.report(diag("AX2019", { got, classes: ctx.classes }, ctx.inputSpan(0)));
      return undefined;
    }
    return {
      attrs: { op: "softmax_cross_entropy" },
      shape: [],
      layout: { kind: "replicated" },
      params: [],
      macs: 0,
    };
  },
} satisfies Record<OpKind, Rule>;
