// Initial weights that keep a network from learning: a scale that drives tanh or sigmoid units
// into their flat tails from the first step, or one value for every weight, which no gradient can
// ever make different.
import { diag } from "../../diagnostics.ts";
import { elementCount, type Node } from "../../graph.ts";
import { graphModel, num, percent } from "../model.ts";
import type { LintRule } from "../rule.ts";

/** Complementary error function (Abramowitz & Stegun 7.1.26, |error| < 1.5e-7): enough for a percentage. */
function erfc(x: number): number {
  const t = 1 / (1 + 0.3275911 * Math.abs(x));
  const poly =
    t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
  const r = poly * Math.exp(-x * x);
  return x >= 0 ? r : 2 - r;
}

/** Where each activation's slope has fallen below ~0.07 of its peak: |x| beyond this is saturated. */
const saturatesBeyond = { tanh: 2, sigmoid: 4 } as const;

const weighted = (n: Node) => n.attrs.op === "conv" || n.attrs.op === "dense";

export const initSaturation: LintRule = {
  code: "AX5022",
  name: "init_saturation",
  needs: "graph",
  summary: "initial weights so large that the tanh or sigmoid after them starts saturated",
  explanation: `A unit's pre-activation sums fan-in products of inputs and weights. With inputs of unit variance
and weights drawn from normal(mean, std) its standard deviation is about √(fan-in·(std² + mean²)).
tanh is flat beyond ±2 (slope < 0.07) and sigmoid beyond ±4: when the pre-activations' spread is
larger than that, a large share of units start in the flat tails, pass almost no gradient, and
training stalls before it starts. (ReLU has no such tails, which is one reason the paper chose it;
Figure 1 compares the two.)

The rule fires when that spread exceeds the activation's flat point, and reports the share of
units expected to start saturated. It assumes unit-variance inputs, which normalised data and a
well-scaled previous layer give.

Fix: scale the weights to the fan-in: std ≈ 1/√fan-in (LeCun; Glorot/Xavier's √(2/(fan-in +
fan-out)) is close) keeps the spread near 1.`,
  check(ctx) {
    const m = graphModel(ctx.graph, ctx.network);
    const params = new Map(ctx.graph.params.map((p) => [p.name, p]));
    for (const node of ctx.graph.nodes) {
      if (!weighted(node)) continue;
      const act = m.onlyReader(node);
      if (act?.attrs.op !== "tanh" && act?.attrs.op !== "sigmoid") continue;
      const weight = params.get(`${node.name}.weight`);
      if (!weight || weight.init.kind !== "normal") continue;
      const fanIn = elementCount(weight.shape.slice(1));
      const { mean, std } = weight.init;
      const spread = Math.sqrt(fanIn * (std * std + mean * mean));
      const flat = saturatesBeyond[act.attrs.op];
      if (spread <= flat) continue;
      const share = erfc(flat / (spread * Math.SQRT2));
      const suggested = num(1 / Math.sqrt(fanIn));
      const written = m.attr(node, "init");
      ctx.report(
        diag(
          "AX5022",
          {
            name: m.shownName(node),
            init: mean === 0 ? `normal(${num(std)})` : `normal(${num(mean)}, ${num(std)})`,
            activation: act.attrs.op,
            act: m.shownName(act),
          },
          written?.span ?? m.nameSpan(node),
          {
            labels: [{ span: m.nameSpan(act), message: `flat beyond ±${flat}` }, ...m.instanceLabels(node)],
            notes: [
              `fan-in ${fanIn}: pre-activations spread with std ≈ √(${fanIn}·(${num(std)}² + ${num(mean)}²)) = ${num(spread)} ` +
                `for unit-variance inputs, so about ${percent(share)} of units start beyond ±${flat}`,
            ],
            help: `use \`init: normal(${suggested})\` (std 1/√fan-in)`,
            fix:
              written && m.isTopLevel(node)
                ? {
                    description: `use \`normal(${suggested})\``,
                    edits: [{ span: written.span, text: `normal(${suggested})` }],
                    applicability: "maybe",
                  }
                : undefined,
          },
        ),
      );
    }
  },
};

export const constantWeightInit: LintRule = {
  code: "AX5023",
  name: "constant_weight_init",
  needs: "graph",
  summary: "every weight of a layer starts at the same value",
  explanation: `With \`init: constant(v)\` every weight of a convolution or dense layer starts equal, and the biases
are constant too. Then every unit (filter) of the layer computes the same output from the same
input and receives the same gradient, so the units stay identical forever: the layer behaves as
one unit repeated. With v = 0 and a ReLU after it, the gradient of the weights is zero as well.
Random initialisation exists to break exactly this symmetry.

Fix: draw the weights at random, e.g. the paper's \`normal(0, 0.01)\` or std 1/√fan-in. Constant
initialisation is right for biases, which \`bias: v\` already sets.`,
  check(ctx) {
    const m = graphModel(ctx.graph, ctx.network);
    const params = new Map(ctx.graph.params.map((p) => [p.name, p]));
    for (const node of ctx.graph.nodes) {
      if (!weighted(node)) continue;
      const weight = params.get(`${node.name}.weight`);
      if (!weight || weight.init.kind !== "constant") continue;
      const written = m.attr(node, "init");
      ctx.report(
        diag(
          "AX5023",
          {
            name: m.shownName(node),
            value: num(weight.init.value),
            units: node.attrs.op === "conv" ? "filters" : "units",
          },
          written?.span ?? m.nameSpan(node),
          {
            labels: m.instanceLabels(node),
            notes: [
              "units with equal weights compute the same output and get the same gradient, so nothing makes them differ",
            ],
            help: "use a random initialiser, e.g. `init: normal(0, 0.01)` (the paper's)",
            fix:
              written && m.isTopLevel(node)
                ? {
                    description: "use `normal(0, 0.01)`",
                    edits: [{ span: written.span, text: "normal(0, 0.01)" }],
                    applicability: "maybe",
                  }
                : undefined,
          },
        ),
      );
    }
  },
};

export const initRules = [initSaturation, constantWeightInit];
