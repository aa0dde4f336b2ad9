// The order and combination of layers: LRN after its ReLU as in the paper, a non-linearity between
// linear layers, one softmax before the loss, no bias under a batch norm, and LRN sizes every
// framework reads the same way.
import type { LayerStmt, Span, Value } from "../../../grammar/ast.ts";
import { diag, type TextEdit } from "../../diagnostics.ts";
import type { Node } from "../../graph.ts";
import { graphModel, type GraphModel } from "../model.ts";
import type { LintRule } from "../rule.ts";

const slice = (source: string, span: Span) => source.slice(span.start.offset, span.end.offset);

/** Every `Name` value in `value` that reads `name`, for renaming references. */
function references(value: Value, name: string, out: Span[] = []): Span[] {
  switch (value.kind) {
    case "Name":
      if (value.name === name) out.push(value.span);
      break;
    case "Call":
      value.args.forEach((a) => references(a, name, out));
      break;
    case "Tuple":
    case "List":
      value.items.forEach((a) => references(a, name, out));
      break;
    case "Binary":
      references(value.left, name, out);
      references(value.right, name, out);
      break;
    case "Unary":
      references(value.operand, name, out);
      break;
  }
  return out;
}

export const lrnBeforeRelu: LintRule = {
  code: "AX5009",
  name: "lrn_before_relu",
  needs: "graph",
  summary: "local response normalisation placed before its ReLU; the paper applies it after",
  explanation: `The paper (§3.3) applies local response normalisation "after applying the ReLU nonlinearity in
certain layers" (conv1 and conv2): relu → lrn → maxpool. Normalising before the ReLU divides by
a sum of squares that includes negative responses the ReLU is about to discard, so strongly
negative neighbours suppress a unit that the paper's order would leave alone. It is a different
function from the paper's, and alexc's fusion (the LRN computed inside the following max-pool,
the ReLU inside the convolution's epilogue) is built around the paper's order.

Fix: swap the two layers, so that the ReLU reads the convolution and the LRN reads the ReLU. The
suggested edit swaps the statements and renames later reads (not applied by \`--fix\`: it changes
what the network computes).`,
  check(ctx) {
    const m = graphModel(ctx.graph, ctx.network);
    for (const lrn of ctx.graph.nodes) {
      if (lrn.attrs.op !== "lrn") continue;
      const relu = m.onlyReader(lrn);
      const input = m.producer(lrn.inputs[0]);
      if (relu?.attrs.op !== "relu" || input?.attrs.op === "relu") continue;
      ctx.report(
        diag(
          "AX5009",
          { lrn: m.shownName(lrn), input: lrn.inputs[0], relu: m.shownName(relu) },
          m.nameSpan(lrn),
          {
            labels: [
              { span: m.nameSpan(relu), message: "the ReLU comes after it" },
              ...m.instanceLabels(lrn),
            ],
            help: `apply \`relu\` to \`${lrn.inputs[0]}\` first and normalise its output`,
            fix: swapFix(m, ctx.source, lrn, relu, ctx.network.items),
          },
        ),
      );
    }
  },
};

/** `N = lrn(X, …)` / `R = relu(N)` → `R = relu(X)` / `N = lrn(R, …)`, later reads of R → N. */
function swapFix(m: GraphModel, source: string, lrn: Node, relu: Node, items: readonly { kind: string }[]) {
  const a = m.statement(lrn);
  const b = m.statement(relu);
  if (!a || !b || a.block || b.block || a.stmt.inputs.length !== 1) return undefined;
  const [n, r] = [a.stmt.name.name, b.stmt.name.name];
  const attrs = a.stmt.attrs.map((attr) => `, ${slice(source, attr.span)}`).join("");
  const edits: TextEdit[] = [
    { span: a.stmt.span, text: `${r} = relu(${slice(source, a.stmt.inputs[0].span)})` },
    { span: b.stmt.span, text: `${n} = lrn(${r}${attrs})` },
  ];
  for (const item of items) {
    if (item.kind !== "Layer") continue;
    const stmt = item as LayerStmt;
    if (stmt.span.start.offset <= b.stmt.span.start.offset) continue;
    for (const v of [...stmt.inputs, ...stmt.attrs.map((x) => x.value)])
      for (const span of references(v, r)) edits.push({ span, text: n });
  }
  return { description: `swap \`${n}\` and \`${r}\``, edits, applicability: "maybe" as const };
}

/** Layers that are linear in their input: they cannot separate two linear layers. */
const linearPass = new Set(["dropout", "flatten", "avgpool", "batchnorm"]);

export const linearStack: LintRule = {
  code: "AX5010",
  name: "linear_stack",
  needs: "graph",
  summary: "two convolution or dense layers with no non-linearity between them",
  explanation: `A convolution or dense layer that reads another one through nothing but linear steps (dropout,
flatten, average pooling, batch norm). A linear map of a linear map is a single linear map, so
the pair computes nothing one layer could not: the extra layer adds parameters and time but no
expressive power. It is almost always a forgotten activation (\`fc7 = dense(fc6, …)\` where
\`relu6\` was meant).

Fix: put an activation between them (\`relu6 = relu(fc6)\`) and read it in the second layer. A
max-pool or LRN between them also counts as a non-linearity.`,
  check(ctx) {
    const m = graphModel(ctx.graph, ctx.network);
    for (const node of ctx.graph.nodes) {
      if (node.attrs.op !== "conv" && node.attrs.op !== "dense") continue;
      let prev = m.producer(node.inputs[0]);
      while (prev && linearPass.has(prev.attrs.op)) prev = m.producer(prev.inputs[0]);
      if (!prev || (prev.attrs.op !== "conv" && prev.attrs.op !== "dense")) continue;
      const first = m.shownName(prev);
      ctx.report(
        diag("AX5010", { first, second: m.shownName(node) }, m.nameSpan(node), {
          labels: [
            { span: m.nameSpan(prev), message: `\`${first}\` is linear too` },
            ...m.instanceLabels(node),
          ],
          notes: ["a linear map of a linear map is one linear map: the two layers compute what one could"],
          help: `add an activation after \`${first}\` (e.g. \`relu(${prev.name})\`) and read it here`,
        }),
      );
    }
  },
};

export const doubleSoftmax: LintRule = {
  code: "AX5011",
  name: "double_softmax",
  needs: "graph",
  summary: "the loss reads a softmax layer, so softmax is applied twice",
  explanation: `\`softmax_cross_entropy\` applies softmax to its input itself: it expects the logits. Given the
output of a \`softmax\` layer it computes softmax(softmax(x)). The inner probabilities lie in
[0, 1], so the outer ones are all within a factor e of each other: with C classes no class can
get more than e / (e + C − 1) (27 % for 10 classes, 0.27 % for 1000), the loss cannot fall below
ln((e + C − 1) / e), and the gradients stay small however well the network separates the classes.

Fix: let the loss read the logits (the softmax layer's input). For probabilities at inference,
apply softmax to the logits \`alexc run\` writes.`,
  check(ctx) {
    const m = graphModel(ctx.graph, ctx.network);
    const loss = m.producer(ctx.graph.loss);
    const softmax = loss && m.producer(loss.inputs[0]);
    if (!loss || softmax?.attrs.op !== "softmax") return;
    const at = m.statement(loss)?.stmt.inputs[0]?.span ?? m.nameSpan(loss);
    ctx.report(
      diag("AX5011", { loss: m.shownName(loss), name: m.shownName(softmax) }, at, {
        labels: [{ span: m.nameSpan(softmax), message: "the first softmax" }],
        help: `read the logits \`${softmax.inputs[0]}\` in \`${m.shownName(loss)}\``,
        fix: m.isTopLevel(loss)
          ? {
              description: `read \`${softmax.inputs[0]}\``,
              edits: [{ span: at, text: softmax.inputs[0] }],
              applicability: "maybe",
            }
          : undefined,
      }),
    );
  },
};

export const biasBeforeBatchnorm: LintRule = {
  code: "AX5012",
  name: "bias_before_batchnorm",
  needs: "graph",
  summary: "a bias that the batch norm after it cancels",
  explanation: `Batch norm subtracts each channel's mean over the batch, so a per-channel constant added just
before it — the bias of the convolution or dense layer it reads — cancels exactly. The bias gets a
zero gradient, never changes, and costs parameters, memory and an add per output. Batch norm's
own shift (its \`bias\` parameter) already does the bias's job.

Fix: \`bias: none\` on the layer before the batch norm (not applied by \`--fix\`: it removes a tensor
from the checkpoint).`,
  check(ctx) {
    const m = graphModel(ctx.graph, ctx.network);
    for (const node of ctx.graph.nodes) {
      if ((node.attrs.op !== "conv" && node.attrs.op !== "dense") || !node.attrs.bias) continue;
      const norm = m.onlyReader(node);
      if (norm?.attrs.op !== "batchnorm") continue;
      const written = m.attr(node, "bias");
      ctx.report(
        diag(
          "AX5012",
          { name: m.shownName(node), norm: m.shownName(norm) },
          written?.span ?? m.nameSpan(node),
          {
            labels: [
              { span: m.nameSpan(norm), message: "subtracts the per-channel mean" },
              ...m.instanceLabels(node),
            ],
            help: `write \`bias: none\` on \`${m.shownName(node)}\``,
            fix:
              written && m.isTopLevel(node)
                ? {
                    description: "use `bias: none`",
                    edits: [{ span: written.span, text: "none" }],
                    applicability: "maybe",
                  }
                : undefined,
          },
        ),
      );
    }
  },
};

export const lrnEvenSize: LintRule = {
  code: "AX5013",
  name: "lrn_even_size",
  needs: "graph",
  summary: "an LRN with an even size, which frameworks read differently",
  explanation: `The paper's LRN sums over maps max(0, i − n/2) … min(N − 1, i + n/2). For odd n that is n maps
centred on i. For even n the frameworks disagree: read literally (alexc, TensorFlow's
depth_radius = n/2) it is n + 1 maps; PyTorch sums n maps, ⌊n/2⌋ before and ⌊(n − 1)/2⌋ after, so
the window is off-centre; Caffe rejects even sizes. Weights trained with one convention give
different activations under another, and an export to ONNX or an import from PyTorch silently
changes the network.

Fix: use an odd size; the paper's is 5.`,
  check(ctx) {
    const m = graphModel(ctx.graph, ctx.network);
    for (const node of ctx.graph.nodes) {
      if (node.attrs.op !== "lrn" || node.attrs.size % 2 === 1) continue;
      const n = node.attrs.size;
      ctx.report(
        diag("AX5013", { name: m.shownName(node), size: n }, m.attr(node, "size")?.span ?? m.nameSpan(node), {
          labels: m.instanceLabels(node),
          notes: [
            `alexc sums maps i − ${n / 2} … i + ${n / 2} (${n + 1} maps); PyTorch sums ${n} (i − ${n / 2} … i + ${n / 2 - 1}); Caffe refuses even sizes`,
          ],
          help: `use an odd size, ${n - 1} or ${n + 1} (the paper's is 5)`,
        }),
      );
    }
  },
};

export const orderRules = [lrnBeforeRelu, linearStack, doubleSoftmax, biasBeforeBatchnorm, lrnEvenSize];
