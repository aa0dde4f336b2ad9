// Sliding windows (convolution, pooling) that leave input pixels unread: at the border, when the
// windows stop before the input ends (floor rounding), or between windows, when they step further
// than they are wide. An unread pixel's information never reaches the loss.
import { diag } from "../../diagnostics.ts";
import type { Node, Padding2D } from "../../graph.ts";
import { graphModel, plural } from "../model.ts";
import type { GraphContext, LintRule } from "../rule.ts";

interface Window {
  node: Node;
  kernel: [number, number];
  stride: [number, number];
  pad: Padding2D;
  round: "floor" | "ceil";
  /** The input's [height, width]. */
  size: [number, number];
}

function windows(ctx: GraphContext): Window[] {
  const shapes = new Map<string, number[]>(ctx.graph.inputs.map((i) => [i.name, i.shape]));
  for (const n of ctx.graph.nodes) shapes.set(n.name, n.shape);
  const out: Window[] = [];
  for (const node of ctx.graph.nodes) {
    const a = node.attrs;
    const input = shapes.get(node.inputs[0]);
    if (!input || input.length !== 3) continue;
    const size: [number, number] = [input[1], input[2]];
    if (a.op === "conv")
      out.push({ node, kernel: a.kernel, stride: a.stride, pad: a.pad, round: a.round, size });
    if (a.op === "maxpool" || a.op === "avgpool")
      out.push({ node, kernel: a.window, stride: a.stride, pad: a.pad, round: a.round, size });
  }
  return out;
}

/** Real (not padding) pixels past the last window along one axis. */
function unreadAtEnd(n: number, k: number, s: number, before: number, after: number, out: number): number {
  const covered = (out - 1) * s + k; // padded positions [0, covered) are read
  return Math.max(0, before + n + after - covered - after);
}

/** Output length with ceil rounding, as compiler/check/shapes.ts computes it. */
function ceilLength(n: number, k: number, s: number, before: number, after: number): number {
  let out = Math.ceil((n + before + after - k) / s) + 1;
  if (out > 1 && (out - 1) * s >= n + before) out -= 1;
  return out;
}

const axisWords = (n: number, axis: "row" | "column") => (n === 1 ? axis : plural(n, axis));

export const windowBorder: LintRule = {
  code: "AX5007",
  name: "window_border",
  needs: "graph",
  summary: "a convolution or pooling window never reaches the last rows or columns of its input",
  explanation: `With floor rounding (the default) a sliding window stops at the last position where it still fits
inside the padded input. When (size + padding − window) is not a multiple of the stride, the rows
(and columns) after that position are never read: their pixels influence nothing downstream.

The classic case is AlexNet's conv1 on a 224×224 input with no padding: windows of 11 at stride 4
read rows 0–222 and drop row 223, and the output is 54×54 instead of 55×55, so every later shape
and fc6's 9,216 inputs are off. The paper's shapes need one of three spellings: \`pad: 2\` (alexc's
models/alexnet.net), a 227×227 input (Caffe), or \`round: ceil\` (cuda-convnet2). Pooling 3/2 on an
even size (28×28, 32×32) drops the last row and column the same way.

Only real pixels count: windows that stop inside the trailing padding read everything.

Fix: \`round: ceil\` adds the window that covers the border (the output grows by one), or change
the padding so the windows fit exactly.`,
  check(ctx) {
    const m = graphModel(ctx.graph, ctx.network);
    for (const w of windows(ctx)) {
      const [outH, outW] = [w.node.shape[1], w.node.shape[2]];
      const rows = unreadAtEnd(w.size[0], w.kernel[0], w.stride[0], w.pad.top, w.pad.bottom, outH);
      const cols = unreadAtEnd(w.size[1], w.kernel[1], w.stride[1], w.pad.left, w.pad.right, outW);
      if (rows === 0 && cols === 0) continue;
      const unread =
        rows && cols && rows === cols
          ? `${rows === 1 ? "row and column" : `${rows} rows and columns`}`
          : [rows ? axisWords(rows, "row") : "", cols ? axisWords(cols, "column") : ""]
              .filter(Boolean)
              .join(" and ");
      const ceilH = ceilLength(w.size[0], w.kernel[0], w.stride[0], w.pad.top, w.pad.bottom);
      const ceilW = ceilLength(w.size[1], w.kernel[1], w.stride[1], w.pad.left, w.pad.right);
      const name = m.shownName(w.node);
      const input = w.node.inputs[0];
      const lastRow = w.size[0] - rows - 1;
      const lastCol = w.size[1] - cols - 1;
      const reach =
        lastRow === lastCol && w.size[0] === w.size[1]
          ? `rows and columns 0–${lastRow}`
          : `rows 0–${lastRow} and columns 0–${lastCol}`;
      const notes = [
        `\`${input}\` is ${w.size[0]}×${w.size[1]}; windows of ${w.kernel.join("×")} at stride ${w.stride.join("×")} ` +
          `give ${outH}×${outW} and read ${reach} only`,
      ];
      if (w.node.attrs.op === "conv" && w.size[0] === 224 && w.kernel[0] === 11 && w.stride[0] === 4)
        notes.push(
          "this is AlexNet's 224 + floor + no padding trap: the paper's 55×55 needs `pad: 2` (alexc), a 227×227 input (Caffe) or `round: ceil` (cuda-convnet2)",
        );
      ctx.report(
        diag("AX5007", { name, input, unread: `${unread}` }, m.nameSpan(w.node), {
          labels: m.instanceLabels(w.node),
          notes,
          help:
            w.round === "floor"
              ? `\`round: ceil\` reads them (output ${ceilH}×${ceilW}), or pad the input so the windows fit exactly`
              : "pad the input so the windows fit exactly",
        }),
      );
    }
  },
};

export const windowGap: LintRule = {
  code: "AX5008",
  name: "window_gap",
  needs: "graph",
  summary: "a window steps further than it is wide, skipping pixels between windows",
  explanation: `A convolution or pooling layer whose stride is larger than its window along an axis skips
(stride − window) rows or columns between every two windows. Those pixels are never read, so
the layer throws away a fixed fraction of its input regardless of what it contains — unlike a
pooling layer with stride = window, which reads each pixel exactly once, or the paper's
overlapping pooling (window 3, stride 2), which reads some twice.

Fix: make the window at least as wide as the stride (\`window: 3, stride: 2\`), or reduce the stride.`,
  check(ctx) {
    const m = graphModel(ctx.graph, ctx.network);
    for (const w of windows(ctx)) {
      const axis = w.stride[0] > w.kernel[0] ? 0 : w.stride[1] > w.kernel[1] ? 1 : undefined;
      if (axis === undefined) continue;
      const both = w.stride[0] - w.kernel[0] === w.stride[1] - w.kernel[1] && w.stride[0] === w.stride[1];
      const stride = w.stride[axis];
      const attr = w.node.attrs.op === "conv" ? "kernel" : "window";
      ctx.report(
        diag(
          "AX5008",
          {
            name: m.shownName(w.node),
            stride,
            window: w.kernel[axis],
            skipped: stride - w.kernel[axis],
            axis: both ? "rows and columns" : axis === 0 ? "rows" : "columns",
          },
          m.attr(w.node, "stride")?.span ?? m.nameSpan(w.node),
          {
            labels: m.instanceLabels(w.node),
            help: `use \`${attr}: ${stride}\` or wider, or \`stride: ${w.kernel[axis]}\``,
          },
        ),
      );
    }
  },
};

export const windowRules = [windowBorder, windowGap];
