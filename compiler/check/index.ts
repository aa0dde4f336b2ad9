// The checker: AST → Graph. Resolves names, expands constants and blocks, validates attributes
// (zod), infers every tensor's shape and tower layout, counts parameters and multiply-adds.
// Declarations (properties, inputs, constants, blocks) are hoisted; layers run in source order.
// Never throws for user input: every problem is a diagnostic from compiler/diagnostics.ts.
import type { NetworkDecl, SectionDecl, SourceFile, Span } from "../../grammar/ast.ts";
import { diag, didYouMean, hasErrors, type Diagnostic } from "../diagnostics.ts";
import type { Graph, GraphInput } from "../graph.ts";
import { isLayerKind } from "./attributes.ts";
import { defineLayer, type ExpansionFrame, type ExpansionState } from "./layers.ts";
import { countTooLarge, SUGGESTION_BUDGET } from "./limits.ts";
import { checkRecipe, type DataSpec, type Recipe } from "./recipe.ts";
import { evaluate, newScope, showVal, type Scope, type Val } from "./values.ts";

export interface CheckResult {
  /** Present when there are no errors. */
  graph?: Graph;
  /** The training recipe and data section, with defaults filled in (present with the graph). */
  recipe?: Recipe;
  data?: DataSpec;
  diagnostics: Diagnostic[];
}

const zeroSpan: Span = { start: { offset: 0, line: 1, column: 1 }, end: { offset: 0, line: 1, column: 1 } };

export function check(file: SourceFile): CheckResult {
  try {
    return checkFile(file);
  } catch (error) {
    // Unreachable by design (the fuzz tests hold it to that); a bug must not become a crash.
    const message = error instanceof Error ? error.message : String(error);
    const network = file.items.find((i): i is NetworkDecl => i.kind === "Network");
    return { diagnostics: [diag("AX9001", { message }, network?.name.span)] };
  }
}

function checkFile(file: SourceFile): CheckResult {
  const diagnostics: Diagnostic[] = [];
  const networks = file.items.filter((i): i is NetworkDecl => i.kind === "Network");
  if (networks.length !== 1) {
    const span = networks[1]?.name.span ?? file.span ?? zeroSpan;
    diagnostics.push(
      diag("AX1005", { count: networks.length }, span, {
        help:
          networks.length === 0 ? "start with `network <name> { … }`" : "put each network in its own file",
      }),
    );
    return { diagnostics };
  }
  const graph = checkNetwork(networks[0], diagnostics);
  const sections = file.items.filter((i): i is SectionDecl => i.kind === "Section");
  const { recipe, data } = checkRecipe(sections, graph, diagnostics);
  const unique = dedupe(diagnostics);
  if (!graph || hasErrors(unique)) return { diagnostics: unique };
  return { graph, recipe, data, diagnostics: unique };
}

function checkNetwork(
  network: NetworkDecl,
  diagnostics: Diagnostic[],
): Omit<Graph, "train" | "data"> | undefined {
  // Declarations live in `decls`; top-level layers in a child scope, so a block body (whose
  // parent is `decls`) sees constants and inputs but never the caller's layers.
  const decls: Scope = newScope();
  const layers: Scope = newScope(decls);
  const state: ExpansionState = {
    towers: 1,
    classes: 0,
    blocks: new Map(),
    values: new Map(),
    poisoned: new Set(),
    declared: new Map(),
    nodes: [],
    params: [],
    diagnostics,
    layerCount: 0,
    suggestionBudget: SUGGESTION_BUDGET,
  };
  const inputs: GraphInput[] = [];
  let classesSeen = false;

  const declare = (name: string, span: Span): boolean => {
    const first = state.declared.get(name);
    if (first) {
      diagnostics.push(
        diag("AX2008", { name }, span, { labels: [{ span: first, message: "first defined here" }] }),
      );
      return false;
    }
    state.declared.set(name, span);
    return true;
  };

  for (const item of network.items)
    if (item.kind === "Const") decls.pending.set(item.name.name, item.name.span);

  // Pass 1: declarations, in order (a constant may use earlier constants).
  for (const item of network.items) {
    switch (item.kind) {
      case "Const": {
        decls.pending.delete(item.name.name);
        const val = evaluate(item.value, decls, diagnostics);
        if (declare(item.name.name, item.name.span))
          decls.bindings.set(item.name.name, { kind: "value", val, declared: item.name.span });
        break;
      }
      case "Property": {
        const val = evaluate(item.value, decls, diagnostics);
        const name = item.name.name;
        if (name !== "classes" && name !== "towers") {
          diagnostics.push(
            diag("AX2027", { name }, item.name.span, {
              help:
                didYouMean(name, ["classes", "towers"]) ?? "network properties are `classes` and `towers`",
            }),
          );
          break;
        }
        const n = positiveInt(val, name, diagnostics);
        if (n === undefined) break;
        if (name === "classes") {
          state.classes = n;
          classesSeen = true;
        } else state.towers = n;
        // Properties read like constants afterwards: `units: classes`.
        if (declare(name, item.name.span))
          decls.bindings.set(name, { kind: "value", val, declared: item.name.span });
        break;
      }
      case "Input": {
        if (!declare(item.name.name, item.name.span)) break;
        if (item.dtype.name !== "f32")
          diagnostics.push(
            diag("AX2013", { dtype: item.dtype.name }, item.dtype.span, { help: "write `f32`" }),
          );
        const shape = item.shape.map((v) =>
          positiveInt(evaluate(v, decls, diagnostics), "an input dimension", diagnostics),
        );
        if (shape.length === 0) {
          diagnostics.push(
            diag(
              "AX2018",
              { name: item.name.name, expected: "a shape such as `[3, 224, 224]`", got: "`[]`" },
              item.span,
            ),
          );
        }
        const tooLarge =
          shape.every((d) => d !== undefined) &&
          countTooLarge([{ what: `input \`${item.name.name}\``, shape: shape as number[] }], item.span);
        if (tooLarge) diagnostics.push(tooLarge);
        if (shape.some((d) => d === undefined) || shape.length === 0 || tooLarge) {
          state.poisoned.add(item.name.name);
          state.values.set(item.name.name, { shape: [], layout: { kind: "replicated" } });
        } else {
          const dims = shape as number[];
          inputs.push({ name: item.name.name, dtype: "f32", shape: dims, span: item.span });
          state.values.set(item.name.name, { shape: dims, layout: { kind: "replicated" } });
        }
        decls.bindings.set(item.name.name, {
          kind: "tensor",
          name: item.name.name,
          declared: item.name.span,
        });
        break;
      }
      case "Block": {
        const name = item.name.name;
        if (isLayerKind(name)) {
          diagnostics.push(
            diag("AX2008", { name }, item.name.span, {
              notes: [`\`${name}\` is a built-in layer kind`],
              help: "rename the block",
            }),
          );
        } else if (state.blocks.has(name)) {
          diagnostics.push(
            diag("AX2008", { name }, item.name.span, {
              labels: [{ span: state.blocks.get(name)!.name.span, message: "first defined here" }],
            }),
          );
        } else state.blocks.set(name, item);
        break;
      }
      case "Layer":
        layers.pending.set(item.name.name, item.name.span);
        if (!state.declared.has(item.name.name)) state.declared.set(item.name.name, item.name.span);
        break;
    }
  }
  if (!classesSeen) {
    diagnostics.push(
      diag("AX2014", { name: network.name.name, what: "a `classes: <count>` property" }, network.name.span),
    );
    return undefined;
  }
  if (inputs.length === 0 && state.poisoned.size === 0) {
    diagnostics.push(
      diag("AX2014", { name: network.name.name, what: "an input" }, network.name.span, {
        help: "add `input image: f32[3, 224, 224]`",
      }),
    );
    return undefined;
  }

  // Pass 2: layers, in order.
  const frame: ExpansionFrame = { scope: layers, prefix: "", stack: [] };
  for (const item of network.items) {
    if (item.kind !== "Layer") continue;
    layers.pending.delete(item.name.name);
    defineLayer(item, frame, state);
  }
  if (hasErrors(diagnostics)) return undefined;

  const losses = state.nodes.filter((n) => n.attrs.op === "softmax_cross_entropy");
  if (losses.length === 0) {
    const last = state.nodes.at(-1);
    diagnostics.push(
      diag("AX2012", { name: network.name.name }, network.name.span, {
        help: `add \`loss = softmax_cross_entropy(${last?.name ?? "<logits>"})\``,
      }),
    );
    return undefined;
  }
  if (losses.length > 1) {
    diagnostics.push(diag("AX2026", { first: losses[0].name, second: losses[1].name }, losses[1].span));
    return undefined;
  }
  return {
    name: network.name.name,
    towers: state.towers,
    classes: state.classes,
    inputs,
    nodes: state.nodes,
    params: state.params,
    logits: losses[0].inputs[0],
    loss: losses[0].name,
  };
}

function positiveInt(val: Val, what: string, diagnostics: Diagnostic[]): number | undefined {
  if (val.kind === "error") return undefined;
  if (val.kind === "word") {
    diagnostics.push(diag("AX2006", { name: val.name }, val.span));
    return undefined;
  }
  if (val.kind !== "number" || !Number.isInteger(val.value) || val.value <= 0 || val.value > 2 ** 31 - 1) {
    diagnostics.push(
      diag("AX2018", { name: what, expected: "a positive integer", got: `\`${showVal(val)}\`` }, val.span),
    );
    return undefined;
  }
  return val.value;
}

/** A block expanded twice reports the same problem twice at the same place; keep one. */
function dedupe(diagnostics: Diagnostic[]): Diagnostic[] {
  const seen = new Set<string>();
  return diagnostics.filter((d) => {
    const key = `${d.code}:${d.span?.start.offset}:${d.span?.end.offset}:${d.message}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}
