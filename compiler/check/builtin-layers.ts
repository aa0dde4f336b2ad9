// Built-in layer statements: resolves a layer's inputs and attributes, validates them against the
// layer kind's schema, and applies its shape rule. Blocks are expanded in layers.ts.
import type { LayerStmt, NamedArg, Span } from "../../grammar/ast.ts";
import { diag, didYouMean, similarNames, type Diagnostic } from "../diagnostics.ts";
import type { Node, OpKind, Param } from "../graph.ts";
import { opSpecs, type AttrSpec } from "./attributes.ts";
import type { ExpansionFrame, ExpansionState } from "./layers.ts";
import { canSuggest, layerTooLarge } from "./limits.ts";
import { shapeRules, type InputInfo } from "./shapes.ts";
import { describeKind, evaluate, showVal, toPlain, visibleNames, type Scope, type Val } from "./values.ts";

/** Resolves positional arguments to graph values; undefined if any is missing or poisoned. */
function resolveInputs(
  stmt: LayerStmt,
  frame: ExpansionFrame,
  state: ExpansionState,
  report: (d: Diagnostic) => void,
): InputInfo[] | undefined {
  const infos: InputInfo[] = [];
  let ok = true;
  for (const value of stmt.inputs) {
    const v = evaluate(value, frame.scope, state.diagnostics);
    if (v.kind === "tensor") {
      const info = state.values.get(v.name);
      if (!info || state.poisoned.has(v.name)) ok = false;
      else infos.push({ name: v.name, ...info });
      continue;
    }
    ok = false;
    if (v.kind === "error") continue;
    if (v.kind === "word") {
      let visible = 0;
      for (let s: Scope | undefined = frame.scope; s; s = s.parent) visible += s.bindings.size;
      const names = canSuggest(state, visible) ? visibleNames(frame.scope) : [];
      const tensors = names.filter((n) => {
        const b = frame.scope.bindings.get(n) ?? undefined;
        return !b || b.kind === "tensor";
      });
      const similar = similarNames(v.name, tensors);
      report(
        diag("AX2006", { name: v.name }, v.span, {
          help: didYouMean(v.name, tensors) ?? "a layer's inputs name earlier layers or the network's inputs",
          fix: similar.length
            ? {
                description: `replace with \`${similar[0]}\``,
                edits: [{ span: v.span, text: similar[0] }],
                applicability: "maybe",
              }
            : undefined,
        }),
      );
    } else {
      report(
        diag(
          "AX2023",
          { name: showVal(v), is: describeKind(v), expected: "tensor (a layer input)" },
          v.span,
          {
            help: "attributes are written `name: value`",
          },
        ),
      );
    }
  }
  return ok ? infos : undefined;
}

/** Validates named arguments against the spec table; undefined after reporting a problem. */
function resolveAttrs(
  op: OpKind,
  attrs: NamedArg[],
  frame: ExpansionFrame,
  state: ExpansionState,
  report: (d: Diagnostic) => void,
  statementSpan: Span,
): { values: Record<string, unknown>; spans: Map<string, Span> } | undefined {
  const specs: Record<string, AttrSpec> = opSpecs[op].attrs;
  const values: Record<string, unknown> = {};
  const spans = new Map<string, Span>();
  let ok = true;
  let unknownGiven = false;
  for (const arg of attrs) {
    const name = arg.name.name;
    if (spans.has(name)) {
      report(
        diag("AX2021", { attr: name }, arg.name.span, {
          labels: [{ span: spans.get(name)!, message: "first given here" }],
        }),
      );
      ok = false;
      continue;
    }
    spans.set(name, arg.value.span);
    const spec = Object.hasOwn(specs, name) ? specs[name] : undefined;
    if (!spec) {
      const known = Object.keys(specs);
      const similar = similarNames(name, known);
      report(
        diag("AX2002", { attr: name, op }, arg.name.span, {
          help:
            didYouMean(name, known) ??
            (known.length
              ? `\`${op}\` takes ${known.map((k) => `\`${k}\``).join(", ")}`
              : `\`${op}\` takes no attributes`),
          fix: similar.length
            ? {
                description: `rename to \`${similar[0]}\``,
                edits: [{ span: arg.name.span, text: similar[0] }],
                applicability: "safe",
              }
            : undefined,
        }),
      );
      ok = false;
      unknownGiven = true;
      continue;
    }
    const v: Val = evaluate(arg.value, frame.scope, state.diagnostics);
    if (v.kind === "error") {
      ok = false;
      continue;
    }
    const parsed = spec.schema.safeParse(toPlain(v));
    if (!parsed.success) {
      const got = v.kind === "tensor" ? `the tensor \`${v.name}\`` : `\`${showVal(v)}\``;
      report(diag("AX2004", { attr: name, op, problem: `must be ${spec.expects}, got ${got}` }, v.span));
      ok = false;
      continue;
    }
    values[name] = parsed.data;
  }
  for (const [name, spec] of Object.entries(specs)) {
    if (name in values || spans.has(name)) continue;
    // A misspelt attribute is usually the missing one: one diagnostic, not two.
    if (unknownGiven && spec.default === undefined && !spec.optional) continue;
    if (spec.default !== undefined) values[name] = spec.default;
    else if (!spec.optional) {
      report(
        diag("AX2003", { op, attr: name }, statementSpan, { help: `add \`${name}: …\` (${spec.expects})` }),
      );
      ok = false;
    }
  }
  return ok ? { values, spans } : undefined;
}

export function builtinLayer(
  stmt: LayerStmt,
  op: OpKind,
  graphName: string,
  frame: ExpansionFrame,
  state: ExpansionState,
  report: (d: Diagnostic) => void,
): Node | undefined {
  const { min, max } = opSpecs[op].inputs;
  if (stmt.inputs.length < min || stmt.inputs.length > max) {
    const expected = min === max ? String(min) : `${min} or more`;
    report(diag("AX2005", { op, expected, got: stmt.inputs.length }, stmt.op.span));
    return undefined;
  }
  const inputs = resolveInputs(stmt, frame, state, report);
  const attrs = resolveAttrs(op, stmt.attrs, frame, state, report, stmt.span);
  if (!inputs || !attrs) return undefined;
  let failed = false;
  const result = shapeRules[op]({
    name: graphName,
    towers: state.towers,
    classes: state.classes,
    attrs: attrs.values,
    inputs,
    span: stmt.name.span,
    attrSpan: (attr) => attrs.spans.get(attr) ?? stmt.span,
    inputSpan: (i) => stmt.inputs[i]?.span ?? stmt.span,
    report: (d) => {
      failed = true;
      report(d);
    },
  });
  if (!result || failed) return undefined;
  const tooLarge = layerTooLarge(graphName, result, stmt.name.span);
  if (tooLarge) {
    report(tooLarge);
    return undefined;
  }
  const params: Param[] = result.params.map((p) => ({
    name: `${graphName}.${p.suffix}`,
    shape: p.shape,
    init: p.init,
    trainable: p.trainable,
    layer: graphName,
  }));
  state.params.push(...params);
  return {
    name: graphName,
    attrs: result.attrs,
    inputs: inputs.map((i) => i.name),
    shape: result.shape,
    layout: result.layout,
    params: params.map((p) => p.name),
    macs: result.macs,
    span: stmt.span,
  };
}
