// Sliding-window geometry for the conv and pool shape rules in shapes.ts: the output size of a
// [C, H, W] map under a window, stride, padding and rounding, or AX2028/AX2004/AX2010 when it has none.
import { diag } from "../diagnostics.ts";
import type { Padding2D } from "../graph.ts";
import type { RuleContext } from "./shapes.ts";

/** Output length along one axis, after resolving ceil rounding into extra trailing padding. */
function windowAxis(
  ctx: RuleContext,
  axis: "height" | "width",
  size: number,
  window: number,
  stride: number,
  pad: [number, number],
  round: "floor" | "ceil",
): { out: number; before: number; after: number } | undefined {
  const [before, after] = pad;
  const span = size + before + after - window;
  let out = (round === "ceil" ? Math.ceil(span / stride) : Math.floor(span / stride)) + 1;
  // As Caffe and PyTorch: with ceil rounding, the last window must start inside the input or its
  // leading padding, otherwise it would read only trailing padding.
  if (round === "ceil" && out > 1 && (out - 1) * stride >= size + before) out -= 1;
  if (span < 0 || out <= 0) {
    const detail =
      `${axis} ${size} with window ${window}, stride ${stride} and padding (${before}, ${after}) ` +
      `gives ${Math.min(out, 0)} (the window is larger than the padded input)`;
    ctx.report(diag("AX2010", { name: ctx.name, detail }, ctx.span));
    return undefined;
  }
  const extra = Math.max(0, (out - 1) * stride + window - (size + before + after));
  return { out, before, after: after + extra };
}

export function spatial(ctx: RuleContext, windowAttr: "kernel" | "window", stride: [number, number]) {
  const input = ctx.inputs[0];
  if (input.shape.length !== 3) {
    ctx.report(
      diag(
        "AX2028",
        {
          name: ctx.name,
          input: input.name,
          got: `shape [${input.shape.join(", ")}]`,
          expected: "a [C, H, W] map",
        },
        ctx.inputSpan(0),
      ),
    );
    return undefined;
  }
  const [c, h, w] = input.shape;
  const window = ctx.attrs[windowAttr] as [number, number];
  const pad = ctx.attrs.pad as [number, number];
  const round = ctx.attrs.round as "floor" | "ceil";
  if (
    windowAttr === "window" &&
    (pad[0] >= window[0] || pad[1] >= window[0] || pad[0] >= window[1] || pad[1] >= window[1])
  ) {
    ctx.report(
      diag(
        "AX2004",
        {
          attr: "pad",
          op: "pool",
          problem: "must be smaller than the window, or a window reads only padding",
        },
        ctx.attrSpan("pad"),
      ),
    );
    return undefined;
  }
  const y = windowAxis(ctx, "height", h, window[0], stride[0], pad, round);
  const x = y && windowAxis(ctx, "width", w, window[1], stride[1], pad, round);
  if (!y || !x) return undefined;
  const padding: Padding2D = { top: y.before, bottom: y.after, left: x.before, right: x.after };
  return { c, oh: y.out, ow: x.out, window, padding, round };
}
