// The checker's bounds, so that every input ends in diagnostics in bounded time and memory (issue
// #6): blocks that use other blocks several times multiply the layer count, block expansion
// recurses once per level, shapes multiply, and each "did you mean" reads every name in scope.
// Each limit is far beyond any real network (docs/language.md, "Limits").
import type { Span } from "../../grammar/ast.ts";
import { diag, type Diagnostic } from "../diagnostics.ts";
import { elementCount } from "../graph.ts";
import type { RuleResult } from "./shapes.ts";

/**
 * Layers of the expanded graph, each use of a block counting all of its layers. ResNet-1001 has
 * about 3,000; the checker expands this many in about a second, where ten blocks each using the
 * previous one twice would otherwise build 2^10 times the layers, and thirty 2^30.
 */
export const MAX_LAYERS = 100_000;

/** Blocks expanded inside one another; each level costs a few stack frames. */
export const MAX_BLOCK_DEPTH = 64;

/**
 * Names that "did you mean" searches may compare in one check. Each search reads every name in
 * scope, so n misspelt names among n layers would cost n²; past the budget, suggestions stop (the
 * first ones are the ones read).
 */
export const SUGGESTION_BUDGET = 200_000;

/** Past 2^53 consecutive integers are no longer all doubles: counts there would be silently wrong. */
const MAX_COUNT = Number.MAX_SAFE_INTEGER;

/** Whether a "did you mean" search over `count` names fits in what is left of the budget. */
export function canSuggest(state: { suggestionBudget: number }, count: number): boolean {
  if (count > state.suggestionBudget) return false;
  state.suggestionBudget -= count;
  return true;
}

export function tooManyLayers(span: Span): Diagnostic {
  return diag("AX2030", { what: "the network", limit: `${MAX_LAYERS} layers` }, span, {
    notes: ["each use of a block counts all of its layers, so blocks that use blocks multiply"],
  });
}

export function blocksTooDeep(stack: readonly string[], block: string, span: Span): Diagnostic {
  const chain = [...stack.slice(0, 3), "…", ...stack.slice(-2), block];
  return diag("AX2030", { what: `block \`${block}\``, limit: `${MAX_BLOCK_DEPTH} nested blocks` }, span, {
    notes: [`expansion: ${chain.join(" → ")}`],
  });
}

/** What a count is of, for the message: `the output of `conv1``, with the shape when it has one. */
export interface Counted {
  what: string;
  shape?: readonly number[];
  count?: number;
}

/** AX2030 for the first of `counted` past 2^53, or undefined when every count is exact. */
export function countTooLarge(counted: readonly Counted[], span: Span): Diagnostic | undefined {
  for (const { what, shape, count = elementCount(shape ?? []) } of counted) {
    if (count <= MAX_COUNT) continue;
    const detail = shape ? `${shape.join(" × ")} = ${count} elements` : String(count);
    return diag("AX2030", { what: `${what} (${detail})`, limit: "2^53" }, span, {
      notes: ["alexc counts elements, parameters and multiply-adds exactly, in doubles"],
    });
  }
  return undefined;
}

/** AX2030 when a layer's output, a parameter or its multiply-add count is past 2^53. */
export function layerTooLarge(name: string, result: RuleResult, span: Span): Diagnostic | undefined {
  return countTooLarge(
    [
      { what: `the output of \`${name}\``, shape: result.shape },
      ...result.params.map((p) => ({ what: `the ${p.suffix} of \`${name}\``, shape: p.shape })),
      { what: `the multiply-add count of \`${name}\``, count: result.macs },
    ],
    span,
  );
}
