// Device limits that alexc cannot work around. A batch whose activations exceed a storage binding is
// micro-batched, and a weight larger than a binding is split by output rows (compiler/lower.ts), so
// the user never meets the limit there; but one example of a tensor, or one row of a weight, is the
// smallest piece alexc binds, and when that alone is too large compiling fails with AX3001.
import type { Span } from "../../../grammar/ast.ts";
import { diag } from "../../diagnostics.ts";
import { elementCount, towerShape } from "../../graph.ts";
import { bytes, count, graphModel } from "../model.ts";
import type { LintRule } from "../rule.ts";

const F32 = 4;

export const bindingLimit: LintRule = {
  code: "AX5024",
  name: "binding_limit",
  needs: "graph",
  summary: "a tensor too large for one storage binding even at batch 1",
  explanation: `WebGPU binds each tensor a kernel reads or writes as a storage buffer binding of at most
\`maxStorageBufferBindingSize\` bytes: 128 MiB by default, and what many adapters (and lavapipe)
grant. alexc works around the limit where it can: a batch whose activations do not fit is run in
micro-batches, and a weight that does not fit is split into parts by output rows. It cannot split
one example of an activation, or one row of a weight: when that is larger than a binding the
network does not compile (AX3001), on any batch size.

Under the recipe's model placement on two devices each device holds its tower's share, so the
share is what must fit. The limit is \`lint.maxBindingBytes\` in alexc.json (134,217,728 by
default); raise it only for devices that grant more.

Fix: a smaller input or fewer channels in the layer, or more towers to share it.`,
  check(ctx) {
    const { graph, recipe, settings } = ctx;
    const limit = settings.maxBindingBytes;
    const m = graphModel(graph, ctx.network);
    const perTower = recipe.devices === 2 && recipe.placement === "model";
    const found: { what: string; size: number; span: Span; labels?: { span: Span; message: string }[] }[] =
      [];
    for (const input of graph.inputs) {
      const decl = ctx.network.items.find((i) => i.kind === "Input" && i.name.name === input.name);
      const size = elementCount(input.shape) * F32;
      if (size > limit)
        found.push({
          what: `one example of the input \`${input.name}\``,
          size,
          span: decl && "name" in decl ? decl.name.span : input.span,
        });
    }
    const params = new Map(graph.params.map((p) => [p.name, p]));
    for (const node of graph.nodes) {
      const shape = perTower ? towerShape(node.shape, node.layout) : node.shape;
      const size = elementCount(shape) * F32;
      const labels = m.instanceLabels(node);
      if (size > limit)
        found.push({
          what: `one example of \`${m.shownName(node)}\`'s output`,
          size,
          span: m.nameSpan(node),
          labels,
        });
      for (const name of node.params) {
        const p = params.get(name);
        if (!p) continue;
        const byRows = (node.attrs.op === "conv" || node.attrs.op === "dense") && name.endsWith(".weight");
        const piece = elementCount(byRows ? p.shape.slice(1) : p.shape) * F32;
        if (piece > limit)
          found.push({
            what: byRows ? `one row of \`${name}\`` : `\`${name}\``,
            size: piece,
            span: m.nameSpan(node),
            labels,
          });
      }
    }
    for (const f of found)
      ctx.report(
        diag(
          "AX5024",
          { what: f.what, bytes: `${bytes(f.size)} (${count(f.size)} bytes)`, limit: bytes(limit) },
          f.span,
          {
            labels: f.labels ?? [],
            notes: [
              "alexc micro-batches activations and splits weights by rows, but cannot split this: compiling fails with AX3001",
            ],
            help: "shrink the input or the layer, or raise lint.maxBindingBytes in alexc.json for a device that grants more",
          },
        ),
      );
  },
};

export const limitRules = [bindingLimit];
