// Layer statements and block expansion: a statement either uses a built-in layer kind
// (builtin-layers.ts) or instantiates a block. Blocks are expanded in place; their inner layers are
// named `<instance>.<inner>`, and the instance name stands for the last one.
import type { BlockDecl, LayerStmt, Span } from "../../grammar/ast.ts";
import { diag, didYouMean, similarNames, type Diagnostic } from "../diagnostics.ts";
import type { Node, Param, TowerLayout } from "../graph.ts";
import { isLayerKind, layerKinds } from "./attributes.ts";
import { builtinLayer } from "./builtin-layers.ts";
import { blocksTooDeep, canSuggest, MAX_BLOCK_DEPTH, MAX_LAYERS, tooManyLayers } from "./limits.ts";
import { evaluate, newScope, type Scope, type Val } from "./values.ts";

/** Everything the expansion writes to; one per network. */
export interface ExpansionState {
  towers: number;
  classes: number;
  blocks: Map<string, BlockDecl>;
  /** Shape and layout of every graph value (inputs and layer outputs), by graph name. */
  values: Map<string, { shape: number[]; layout: TowerLayout }>;
  /** Graph values whose definition failed: readers stay silent instead of cascading errors. */
  poisoned: Set<string>;
  /** Global declaration names (consts, inputs, layers) with where they were declared. */
  declared: Map<string, Span>;
  nodes: Node[];
  params: Param[];
  diagnostics: Diagnostic[];
  /** Layer statements defined so far, block bodies once per use (limits.ts, MAX_LAYERS). */
  layerCount: number;
  /** Names "did you mean" searches may still compare (limits.ts, SUGGESTION_BUDGET). */
  suggestionBudget: number;
}

export interface ExpansionFrame {
  scope: Scope;
  /** `""` at top level, `inst.` inside block instance `inst`. */
  prefix: string;
  /** Blocks being expanded, to detect recursion. */
  stack: string[];
  /** Where the current block instance was called, for a secondary label. */
  callSite?: { span: Span; block: string };
}

/** Defines one layer statement; returns the graph name its value is known by, if any. */
export function defineLayer(
  stmt: LayerStmt,
  frame: ExpansionFrame,
  state: ExpansionState,
): string | undefined {
  // The parser recovers a statement it could not read whole with empty names; it already reported it.
  if (stmt.name.name === "") return undefined;
  const graphName = frame.prefix + stmt.name.name;
  const report = (d: Diagnostic) => {
    if (frame.callSite)
      d.labels.push({
        span: frame.callSite.span,
        message: `in this use of block \`${frame.callSite.block}\``,
      });
    state.diagnostics.push(d);
  };
  if (
    state.values.has(graphName) ||
    (frame.prefix === "" && state.declared.has(graphName) && state.declared.get(graphName) !== stmt.name.span)
  ) {
    const first = state.declared.get(graphName);
    report(
      diag("AX2008", { name: graphName }, stmt.name.span, {
        labels: first ? [{ span: first, message: "first defined here" }] : [],
        help: "give each layer a unique name",
      }),
    );
    return undefined;
  }
  const bind = (name: string) =>
    frame.scope.bindings.set(stmt.name.name, { kind: "tensor", name, declared: stmt.name.span });
  const fail = () => {
    state.poisoned.add(graphName);
    state.values.set(graphName, { shape: [], layout: { kind: "replicated" } });
    bind(graphName);
    return graphName;
  };

  // Past the limit every statement fails at once, so blocks that multiply stop expanding.
  if (++state.layerCount > MAX_LAYERS) {
    if (state.layerCount === MAX_LAYERS + 1) report(tooManyLayers(stmt.name.span));
    return fail();
  }

  frame.scope.current = stmt.name.name;
  try {
    const op = stmt.op.name;
    if (op === "") return fail();
    if (state.blocks.has(op)) {
      const output = expandBlock(stmt, state.blocks.get(op)!, frame, state, report);
      if (output === undefined) return fail();
      bind(output);
      return output;
    }
    if (!isLayerKind(op)) {
      const blocks = canSuggest(state, state.blocks.size) ? state.blocks.keys() : [];
      const candidates = [...layerKinds, ...blocks];
      const similar = similarNames(op, candidates);
      report(
        diag("AX2001", { name: op }, stmt.op.span, {
          help:
            didYouMean(op, candidates) ?? `layer kinds are ${layerKinds.map((k) => `\`${k}\``).join(", ")}`,
          fix: similar.length
            ? {
                description: `replace with \`${similar[0]}\``,
                edits: [{ span: stmt.op.span, text: similar[0] }],
                applicability: "maybe",
              }
            : undefined,
        }),
      );
      return fail();
    }
    const node = builtinLayer(stmt, op, graphName, frame, state, report);
    if (!node) return fail();
    state.nodes.push(node);
    state.values.set(graphName, { shape: node.shape, layout: node.layout });
    bind(graphName);
    return graphName;
  } finally {
    frame.scope.current = undefined;
  }
}

function expandBlock(
  stmt: LayerStmt,
  block: BlockDecl,
  frame: ExpansionFrame,
  state: ExpansionState,
  report: (d: Diagnostic) => void,
): string | undefined {
  const blockName = block.name.name;
  if (frame.stack.includes(blockName)) {
    report(
      diag("AX2022", { block: blockName }, stmt.op.span, {
        notes: [`expansion: ${[...frame.stack, blockName].join(" → ")}`],
      }),
    );
    return undefined;
  }
  if (frame.stack.length >= MAX_BLOCK_DEPTH) {
    report(blocksTooDeep(frame.stack, blockName, stmt.op.span));
    return undefined;
  }
  const scope = newScope(rootScope(frame.scope));
  const bound = new Set<string>();
  let ok = true;
  if (stmt.inputs.length > block.params.length) {
    report(
      diag(
        "AX2005",
        { op: blockName, expected: String(block.params.length), got: stmt.inputs.length },
        stmt.inputs[block.params.length].span,
      ),
    );
    return undefined;
  }
  const bindArg = (param: string, value: Val, declared: Span) => {
    if (value.kind === "error") ok = false;
    else if (value.kind === "tensor")
      scope.bindings.set(param, { kind: "tensor", name: value.name, declared });
    else scope.bindings.set(param, { kind: "value", val: value, declared });
    bound.add(param);
  };
  stmt.inputs.forEach((value, i) =>
    bindArg(block.params[i].name.name, evaluate(value, frame.scope, state.diagnostics), value.span),
  );
  for (const arg of stmt.attrs) {
    const param = block.params.find((p) => p.name.name === arg.name.name);
    if (!param) {
      const names = block.params.map((p) => p.name.name);
      report(
        diag("AX2016", { block: blockName, param: arg.name.name }, arg.name.span, {
          help: didYouMean(arg.name.name, names),
        }),
      );
      ok = false;
    } else if (bound.has(param.name.name)) {
      report(diag("AX2021", { attr: arg.name.name }, arg.name.span));
      ok = false;
    } else bindArg(param.name.name, evaluate(arg.value, frame.scope, state.diagnostics), arg.value.span);
  }
  for (const param of block.params) {
    if (bound.has(param.name.name)) continue;
    if (param.default)
      bindArg(
        param.name.name,
        evaluate(param.default, rootScope(frame.scope), state.diagnostics),
        param.name.span,
      );
    else {
      report(
        diag("AX2015", { block: blockName, param: param.name.name }, stmt.op.span, {
          labels: [{ span: param.name.span, message: "declared here" }],
        }),
      );
      ok = false;
    }
  }
  if (!ok) return undefined;
  if (block.body.length === 0) {
    report(
      diag(
        "AX2010",
        { name: frame.prefix + stmt.name.name, detail: `block \`${blockName}\` has no layers` },
        stmt.op.span,
      ),
    );
    return undefined;
  }
  for (const inner of block.body) scope.pending.set(inner.name.name, inner.name.span);
  const inner: ExpansionFrame = {
    scope,
    prefix: `${frame.prefix}${stmt.name.name}.`,
    stack: [...frame.stack, blockName],
    callSite: frame.callSite ?? { span: stmt.span, block: blockName },
  };
  let output: string | undefined;
  for (const layer of block.body) {
    scope.pending.delete(layer.name.name);
    output = defineLayer(layer, inner, state);
  }
  return output && !state.poisoned.has(output) ? output : undefined;
}

/** The network-level scope (constants and inputs): what a block body sees besides its arguments. */
function rootScope(scope: Scope): Scope {
  let s = scope;
  while (s.parent) s = s.parent;
  return s;
}
