// Names that shadow the words attributes accept. An attribute value is evaluated like any other
// value, so a bare word is looked up as a name first and means the word only when nothing of that
// name exists (compiler/check/values.ts). Layer kinds and `normal(…)`, `on(…)` are not looked up in
// scope, so naming a layer `conv` hides nothing and is not reported.
import type { Identifier } from "../../../grammar/ast.ts";
import { diag } from "../../diagnostics.ts";
import type { LintRule } from "../rule.ts";

/** Every word a layer attribute accepts, and one attribute that accepts it. */
const words: Record<string, string> = {
  floor: "round",
  ceil: "round",
  local: "towers",
  cross: "towers",
  none: "bias",
  sum: "alpha_of",
  mean: "alpha_of",
};

const example: Record<string, string> = {
  round: "round: floor",
  towers: "towers: local",
  bias: "bias: none",
  alpha_of: "alpha_of: sum",
};

export const shadowedBuiltin: LintRule = {
  code: "AX5025",
  name: "shadowed_builtin",
  needs: "ast",
  summary: "a name that hides a word attributes accept (`local`, `floor`, `none`, …)",
  explanation: `Attribute values are evaluated as expressions: a bare word such as \`local\` in \`towers: local\` is
looked up as a name first and read as the word only when no constant, input, layer or block
parameter has that name. A declaration named \`local\`, \`cross\`, \`floor\`, \`ceil\`, \`none\`, \`sum\` or
\`mean\` therefore changes what those attributes mean where it is visible: \`towers: local\` reads the
layer \`local\` (an error far from its cause), and \`const floor = ceil\` turns every \`round: floor\`
into ceil rounding without a word of warning.

Layer kinds and the callees \`normal\`, \`constant\` and \`on\` are not looked up by name, so a layer
called \`conv\` hides nothing.

Fix: rename the declaration.`,
  check(ctx) {
    const found: { kind: string; id: Identifier }[] = [];
    for (const item of ctx.network.items) {
      if (item.kind === "Const") found.push({ kind: "constant", id: item.name });
      else if (item.kind === "Input") found.push({ kind: "input", id: item.name });
      else if (item.kind === "Layer") found.push({ kind: "layer", id: item.name });
      else if (item.kind === "Block") {
        item.params.forEach((p) => found.push({ kind: "block parameter", id: p.name }));
        item.body.forEach((l) => found.push({ kind: "layer", id: l.name }));
      }
    }
    for (const { kind, id } of found) {
      if (!Object.hasOwn(words, id.name)) continue;
      const attr = words[id.name];
      ctx.report(
        diag("AX5025", { kind, name: id.name, attr }, id.span, {
          notes: [
            `where \`${id.name}\` is visible, \`${example[attr].replace(/\w+$/, id.name)}\` reads this ${kind}, not the word`,
          ],
          help: `rename the ${kind}, e.g. \`${id.name}_${kind === "layer" ? "out" : "value"}\``,
        }),
      );
    }
  },
};

export const nameRules = [shadowedBuiltin];
