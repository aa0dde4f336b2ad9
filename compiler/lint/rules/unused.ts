// Things declared and never used: layers, constants, blocks and block parameters. Each one is
// usually a wiring mistake (the layer meant to feed the next one reads the one before instead), and
// an unused layer still costs its kernels and, with parameters, memory and checkpoint space.
import type { BlockDecl, ConstDecl, LayerStmt } from "../../../grammar/ast.ts";
import { diag } from "../../diagnostics.ts";
import { deleteLines, graphModel, namesIn } from "../model.ts";
import type { LintRule } from "../rule.ts";

export const unusedLayer: LintRule = {
  code: "AX5001",
  name: "unused_layer",
  needs: "graph",
  summary: "a layer whose output nothing reads",
  explanation: `A layer whose output no other layer reads and that is not the loss. alexc still computes it on
every step, and a convolution or dense layer keeps its weights (memory, checkpoint size) even
though they never influence the loss, so they never learn anything either.

Most often it is a wiring slip: the next layer reads the layer before it instead (\`fc7 =
dense(relu6, …)\` where \`drop6\` was meant). A \`softmax\` layer after the logits is also unused:
the loss applies softmax itself and inference outputs the logits.

Fix: read it where it was meant to be read, or remove it. The suggested removal is not applied by
\`--fix\`, because removing a layer with weights changes the checkpoint's tensors.`,
  check(ctx) {
    const m = graphModel(ctx.graph, ctx.network);
    const nodes = ctx.graph.nodes;
    const reported = new Set<string>();
    nodes.forEach((node, index) => {
      if (node.name === ctx.graph.loss || m.readers.has(node.name)) return;
      // The last layer of a top-level block instance is the instance's output: report the call.
      const instance = node.name.includes(".") ? node.name.slice(0, node.name.indexOf(".")) : undefined;
      const isOutput =
        instance !== undefined && !nodes.slice(index + 1).some((n) => n.name.startsWith(`${instance}.`));
      const call = isOutput
        ? ctx.network.items.find((i): i is LayerStmt => i.kind === "Layer" && i.name.name === instance)
        : undefined;
      const stmt = call ?? m.statement(node)?.stmt;
      const name = call ? call.name.name : m.shownName(node);
      const span = stmt?.name.span ?? node.span;
      if (reported.has(`${span.start.offset}`)) return;
      reported.add(`${span.start.offset}`);
      const topLevel = call !== undefined || m.isTopLevel(node);
      const notes =
        node.attrs.op === "softmax"
          ? ["the loss applies softmax itself, and inference (`alexc run`, infer.ts) outputs the logits"]
          : node.params.length
            ? [
                `its parameters (${node.params.map((p) => `\`${p}\``).join(", ")}) are allocated and saved but never receive a gradient`,
              ]
            : [];
      ctx.report(
        diag("AX5001", { name }, span, {
          labels: call ? [] : m.instanceLabels(node),
          notes,
          help: `read \`${name}\` in a later layer, or remove it`,
          fix:
            stmt && topLevel
              ? {
                  description: `remove \`${name}\``,
                  edits: [deleteLines(ctx.source, stmt.span)],
                  applicability: "maybe",
                }
              : undefined,
        }),
      );
    });
  },
};

export const unusedConst: LintRule = {
  code: "AX5002",
  name: "unused_const",
  needs: "ast",
  summary: "a constant nothing refers to",
  explanation: `A \`const\` that no layer, block, input shape or other constant refers to. It may be left over
from an edit, or a name that was meant to be used (\`init: normal(0, 0.01)\` written out where
\`init: w\` was intended, so changing \`w\` changes nothing). A constant shadowed by a block
parameter of the same name is not used inside that block.

Fix: use it, or remove it. \`--fix\` removes it: a constant has no effect of its own.`,
  check(ctx) {
    const used = new Set<string>();
    for (const item of ctx.network.items) {
      switch (item.kind) {
        case "Const":
        case "Property":
          namesIn(item.value).forEach((n) => used.add(n));
          break;
        case "Input":
          item.shape.forEach((v) => namesIn(v).forEach((n) => used.add(n)));
          break;
        case "Layer":
          layerNames(item).forEach((n) => used.add(n));
          break;
        case "Block": {
          // Inside the body, parameters and the body's own layers hide constants of the same name.
          const local = new Set([
            ...item.params.map((p) => p.name.name),
            ...item.body.map((l) => l.name.name),
          ]);
          item.params.forEach((p) => namesIn(p.default).forEach((n) => used.add(n)));
          for (const stmt of item.body) layerNames(stmt).forEach((n) => !local.has(n) && used.add(n));
          break;
        }
      }
    }
    for (const item of ctx.network.items) {
      if (item.kind !== "Const" || used.has(item.name.name) || item.name.name === "") continue;
      ctx.report(
        diag("AX5002", { name: item.name.name }, item.name.span, {
          help: `use \`${item.name.name}\`, or remove it`,
          fix: {
            description: `remove \`const ${item.name.name}\``,
            edits: [deleteLines(ctx.source, (item as ConstDecl).span)],
            applicability: "safe",
          },
        }),
      );
    }
  },
};

function layerNames(stmt: LayerStmt): string[] {
  const out: string[] = [];
  stmt.inputs.forEach((v) => namesIn(v, out));
  stmt.attrs.forEach((a) => namesIn(a.value, out));
  return out;
}

export const unusedBlock: LintRule = {
  code: "AX5003",
  name: "unused_block",
  needs: "ast",
  summary: "a block no layer instantiates",
  explanation: `A \`block\` that no layer calls. Its layers are not part of the network at all, so nothing in it is
checked against real input shapes: it may not even work when it is first used.

Fix: call it (\`stage1 = norm_pool(relu1)\`), or remove it. \`--fix\` removes it: an unused block
has no effect on the network.`,
  check(ctx) {
    const blocks = ctx.network.items.filter((i): i is BlockDecl => i.kind === "Block");
    const called = new Set<string>();
    for (const item of ctx.network.items) {
      if (item.kind === "Layer") called.add(item.op.name);
      if (item.kind === "Block")
        for (const stmt of item.body) if (stmt.op.name !== item.name.name) called.add(stmt.op.name);
    }
    for (const block of blocks) {
      if (called.has(block.name.name) || block.name.name === "") continue;
      ctx.report(
        diag("AX5003", { name: block.name.name }, block.name.span, {
          help: `call it (\`x = ${block.name.name}(…)\`), or remove it`,
          fix: {
            description: `remove block \`${block.name.name}\``,
            edits: [deleteLines(ctx.source, block.span)],
            applicability: "safe",
          },
        }),
      );
    }
  },
};

export const unusedBlockParam: LintRule = {
  code: "AX5004",
  name: "unused_block_param",
  needs: "ast",
  summary: "a block parameter its body never reads",
  explanation: `A parameter of a \`block\` that no layer in the block's body reads. Every call still has to pass it
(or it has a default), and a caller who passes \`filters: 64\` expects it to matter: the body
probably uses a constant or a literal where the parameter was meant.

Fix: use the parameter in the body, or remove it from the block and from its calls.`,
  check(ctx) {
    for (const item of ctx.network.items) {
      if (item.kind !== "Block") continue;
      const read = new Set(item.body.flatMap(layerNames));
      for (const param of item.params) {
        if (read.has(param.name.name) || param.name.name === "") continue;
        ctx.report(
          diag("AX5004", { param: param.name.name, block: item.name.name }, param.name.span, {
            help: `use \`${param.name.name}\` in the body of \`${item.name.name}\`, or remove it from the block and its calls`,
          }),
        );
      }
    }
  },
};

export const unusedRules = [unusedLayer, unusedConst, unusedBlock, unusedBlockParam];
