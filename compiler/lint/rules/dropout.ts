// Dropout where it does little (on convolutional feature maps) or nothing at all (left out of the
// recipe's training list, or p = 0). alexc's dropout is inverted and only active in training, on
// the layers the recipe's `dropout:` names (every dropout layer when the recipe names none).
import { diag } from "../../diagnostics.ts";
import { graphModel, trainEntries } from "../model.ts";
import type { LintRule } from "../rule.ts";

export const dropoutOnConv: LintRule = {
  code: "AX5014",
  name: "dropout_on_conv",
  needs: "graph",
  summary: "dropout on a convolutional feature map",
  explanation: `Dropout zeroes single values. In a convolutional feature map neighbouring pixels are strongly
correlated, so the next layer recovers a dropped pixel from its neighbours: the noise regularises
little while still slowing training (Tompson et al., 2015, "Efficient Object Localization Using
Convolutional Networks", who drop whole channels instead). The paper uses dropout only on the
fully connected layers fc6 and fc7, whose units have no such neighbours.

Fix: move the dropout after the fully connected layers, or remove it; overfitting in the
convolutional part is what the paper's data augmentation (crops, flips, PCA colour) addresses.`,
  check(ctx) {
    const m = graphModel(ctx.graph, ctx.network);
    for (const node of ctx.graph.nodes) {
      if (node.attrs.op !== "dropout" || node.shape.length !== 3) continue;
      ctx.report(
        diag("AX5014", { name: m.shownName(node), input: node.inputs[0] }, m.nameSpan(node), {
          labels: m.instanceLabels(node),
          notes: [
            `\`${node.inputs[0]}\` is a feature map of ${node.shape.join("×")}; the paper drops out only fc6 and fc7`,
          ],
          help: "move the dropout after a fully connected layer, or remove it",
        }),
      );
    }
  },
};

export const dropoutInactive: LintRule = {
  code: "AX5015",
  name: "dropout_inactive",
  needs: "graph",
  summary: "a dropout layer that is never active",
  explanation: `alexc's dropout is the identity at inference and, in training, active only on the layers the
recipe's \`dropout: [...]\` lists (on every dropout layer when the recipe has no such entry). A
dropout layer left out of a list that is given, or one with \`p: 0\`, never drops anything: it
reads as regularisation the network does not get.

Fix: add the layer to the recipe's \`dropout\` list, give it a probability (the paper's is 0.5), or
remove it.`,
  check(ctx) {
    const m = graphModel(ctx.graph, ctx.network);
    const list = ctx.recipe.dropout;
    const entry = trainEntries(ctx.ast).get("dropout");
    for (const node of ctx.graph.nodes) {
      if (node.attrs.op !== "dropout") continue;
      const name = m.shownName(node);
      if (node.attrs.p === 0) {
        ctx.report(
          diag(
            "AX5015",
            { name, reason: "its probability is `p: 0`" },
            m.attr(node, "p")?.span ?? m.nameSpan(node),
            {
              labels: m.instanceLabels(node),
              help: "give it a probability (the paper's is 0.5), or remove it",
            },
          ),
        );
      } else if (list && !list.includes(node.name)) {
        ctx.report(
          diag("AX5015", { name, reason: "the recipe's `dropout` list leaves it out" }, m.nameSpan(node), {
            labels: [
              ...(entry ? [{ span: entry.span, message: "training activates only these" }] : []),
              ...m.instanceLabels(node),
            ],
            notes: ["dropout is the identity at inference, and in training only the listed layers drop"],
            help: `add \`${node.name}\` to the recipe's \`dropout\` list, or remove the layer`,
          }),
        );
      }
    }
  },
};

export const dropoutRules = [dropoutOnConv, dropoutInactive];
