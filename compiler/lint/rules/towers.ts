// The towers: how evenly the work is split, and whether each layer reads across the towers where
// the paper's network does. Under model placement each tower is a device, so an uneven split
// leaves one device waiting, and every cross-tower read is a transfer.
import { diag, type Label } from "../../diagnostics.ts";
import { elementCount, type Node, type TowerMode } from "../../graph.ts";
import { count, graphModel, percent } from "../model.ts";
import type { LintRule } from "../rule.ts";

const isWeighted = (n: Node): n is Node & { attrs: { op: "conv" | "dense"; towers: TowerMode } } =>
  n.attrs.op === "conv" || n.attrs.op === "dense";

export const towerImbalance: LintRule = {
  code: "AX5005",
  name: "tower_imbalance",
  needs: "graph",
  summary: "one tower does much more work or holds many more parameters than another",
  explanation: `Under model placement (the paper's, and \`placement: model\`) tower t runs on device t, and
every step waits for the slower device. A layer split over the towers (\`towers: cross\` or
\`local\`) gives each tower the same share; a layer placed whole on one tower (\`towers: on(t)\`)
adds all of its work and parameters to that tower alone.

The rule fires when the busier tower does more than 10 % more multiply-adds than the lightest,
or holds more than 25 % more parameters (alexc.json: \`lint.towerImbalance.flops\` and
\`.params\`). FLOPs set the step time; parameters only the memory, which matters less until it
no longer fits. The paper's AlexNet puts fc8 on tower 0 (as cuda-convnet2 does): +1 % FLOPs,
+14 % parameters, under both thresholds. On a smaller input the same fc8 weighs more: on
alexnet-67.net tower 0 does 14 % more work.

Fix: split the heaviest \`on(t)\` layer over the towers with \`towers: cross\`, if its units divide
by the number of towers.`,
  check(ctx) {
    const { graph, settings } = ctx;
    const T = graph.towers;
    if (T < 2) return;
    const m = graphModel(graph, ctx.network);
    const paramSize = new Map(graph.params.map((p) => [p.name, elementCount(p.shape)]));
    const macs = new Array<number>(T).fill(0);
    const params = new Array<number>(T).fill(0);
    for (const node of graph.nodes) {
      const p = node.params.reduce((s, name) => s + (paramSize.get(name) ?? 0), 0);
      if (node.layout.kind === "split")
        for (let t = 0; t < T; t++) {
          macs[t] += node.macs / T;
          params[t] += p / T;
        }
      else if (node.layout.kind === "on") {
        macs[node.layout.tower] += node.macs;
        params[node.layout.tower] += p;
      }
    }
    const excess = (xs: number[]) => {
      const heavy = xs.indexOf(Math.max(...xs));
      const light = xs.indexOf(Math.min(...xs));
      return { heavy, light, ratio: xs[light] > 0 ? xs[heavy] / xs[light] - 1 : Number.POSITIVE_INFINITY };
    };
    const flops = excess(macs);
    const weights = excess(params);
    const over = [
      flops.ratio > settings.towerImbalance.flops ? { ...flops, what: "multiply-adds", xs: macs } : undefined,
      weights.ratio > settings.towerImbalance.params
        ? { ...weights, what: "parameters", xs: params }
        : undefined,
    ].filter((x) => x !== undefined);
    if (over.length === 0) return;
    const { heavy, light } = over[0];
    const text = over.map((o) =>
      Number.isFinite(o.ratio) ? `${percent(o.ratio)} more ${o.what}` : `all the ${o.what}`,
    );
    // The culprits are the layers placed whole on the busy tower, heaviest first.
    const culprits = graph.nodes
      .filter((n) => isWeighted(n) && n.layout.kind === "on" && n.layout.tower === heavy)
      .sort((a, b) => b.macs - a.macs);
    const first = culprits[0];
    const labels: Label[] = culprits.slice(1).map((n) => ({
      span: m.nameSpan(n),
      message: `\`${m.shownName(n)}\` is on tower ${heavy} too`,
    }));
    const span = first ? (m.attr(first, "towers")?.span ?? m.nameSpan(first)) : ctx.network.name.span;
    const units = first ? first.shape[0] : 0;
    ctx.report(
      diag("AX5005", { heavy, light, excess: text.join(" and ") }, span, {
        labels,
        notes: [
          ...over.map(
            (o) =>
              `${o.what} per tower: ${o.xs.map((x) => count(Math.round(x))).join(" / ")} ` +
              `(the threshold is ${percent(o.what === "parameters" ? settings.towerImbalance.params : settings.towerImbalance.flops)}, ` +
              `lint.towerImbalance.${o.what === "parameters" ? "params" : "flops"} in alexc.json)`,
          ),
          ...(first
            ? [`\`${m.shownName(first)}\` (${count(first.macs)} multiply-adds) lies whole on tower ${heavy}`]
            : []),
        ],
        help:
          first && units % T === 0
            ? `split \`${m.shownName(first)}\` over the towers with \`towers: cross\` (${count(units)} units, ${count(units / T)} per tower)`
            : "move work from the busy tower: place whole layers on different towers, or split them",
      }),
    );
  },
};

/** The paper's tower use, layer by layer (ALEXNET.md): conv2, conv4, conv5 local; the rest cross. */
const paperConv: TowerMode["kind"][] = ["cross", "local", "cross", "local", "local"];
const paperDense: TowerMode["kind"][][] = [["cross"], ["cross"], ["cross", "on"]];

function describe(mode: TowerMode): string {
  if (mode.kind === "local") return "reads only its own tower's maps (`towers: local`)";
  if (mode.kind === "cross") return "reads every tower's maps (`towers: cross`)";
  return `reads every tower's maps onto tower ${mode.tower} (\`towers: on(${mode.tower})\`)`;
}

export const towerPattern: LintRule = {
  code: "AX5006",
  name: "tower_pattern",
  needs: "graph",
  summary: "a layer reads across the towers where the paper's reads only its own tower, or the reverse",
  explanation: `In the paper the two towers exchange features only at conv3 and at the fully connected layers:
conv2, conv4 and conv5 read only their own tower's maps. That pattern is the paper's trade-off
between communication (every cross-tower read is a transfer between the GPUs) and accuracy (the
towers must mix somewhere; the two-tower net beat a one-tower net with half the kernels).

For a two-tower network shaped like AlexNet (five convolutions, three fully connected layers) the
rule compares each of them with the paper's: a \`towers: cross\` where the paper reads locally
costs a transfer of the layer's input every step; a \`towers: local\` where the paper reads across
leaves the towers unmixed for longer. In any multi-tower network, a fully connected layer with
\`towers: local\` is reported too: the paper's fully connected layers all read both towers.

This is information, not a mistake: a different pattern can be the point of an experiment.

Fix: to follow the paper, set the layer's \`towers\` as the message says.`,
  check(ctx) {
    const { graph } = ctx;
    if (graph.towers < 2) return;
    const m = graphModel(graph, ctx.network);
    const convs = graph.nodes.filter((n) => n.attrs.op === "conv");
    const denses = graph.nodes.filter((n) => n.attrs.op === "dense");
    const alexnetShaped = graph.towers === 2 && convs.length === 5 && denses.length === 3;
    const report = (node: Node, layer: string, expected: TowerMode["kind"][], plural = false) => {
      if (!isWeighted(node)) return;
      const mode = node.attrs.towers;
      if (expected.includes(mode.kind)) return;
      const want = expected[0];
      const written = m.attr(node, "towers");
      const input = m.producer(node.inputs[0]);
      const inputBytes = input ? (elementCount(input.shape) / graph.towers) * 4 : 0;
      const notes =
        want === "local"
          ? [
              `reading across the towers sends each tower's ${count(inputBytes)}-byte share of \`${node.inputs[0]}\` to the other tower, per image`,
            ]
          : ["reading only its own tower, each tower sees half the features the paper's layer sees"];
      ctx.report(
        diag(
          "AX5006",
          {
            name: m.shownName(node),
            actual: describe(mode),
            layer,
            expected: `${plural ? "read" : "reads"} ${want === "local" ? "only its own tower (`towers: local`)" : "both towers (`towers: cross`)"}`,
          },
          written?.span ?? m.nameSpan(node),
          {
            labels: m.instanceLabels(node),
            notes,
            help: `write \`towers: ${want}\` to follow the paper`,
            fix:
              written && m.isTopLevel(node)
                ? {
                    description: `use \`towers: ${want}\``,
                    edits: [{ span: written.span, text: want }],
                    applicability: "maybe",
                  }
                : undefined,
          },
        ),
      );
    };
    if (alexnetShaped) {
      convs.forEach((n, i) => report(n, `conv${i + 1}`, [paperConv[i]]));
      denses.forEach((n, i) => report(n, `fc${i + 6}`, paperDense[i]));
    } else denses.forEach((n) => report(n, "fully connected layers", ["cross", "on"], true));
  },
};

export const towerRules = [towerImbalance, towerPattern];
