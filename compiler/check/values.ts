// Evaluation of attribute values, constants and shapes: AST `Value` → `Val`, with name resolution
// through nested scopes (block arguments, then constants, then tensors). A bare name that resolves
// to nothing is a `word` — an enumeration literal such as `floor`, `local` or `none` — and the
// attribute's schema decides whether that word means anything.
import type { Span, Value } from "../../grammar/ast.ts";
import { diag, type Diagnostic } from "../diagnostics.ts";

export type Val = (
  | { kind: "number"; value: number }
  | { kind: "string"; value: string }
  | { kind: "word"; name: string }
  | { kind: "call"; callee: string; args: Val[] }
  | { kind: "array"; items: Val[] }
  /** A reference to a graph value (a layer output or a network input), by its graph name. */
  | { kind: "tensor"; name: string }
  /** Stands in after an error that was already reported; never reported again. */
  | { kind: "error" }
) & { span: Span };

export type Binding =
  { kind: "value"; val: Val; declared: Span } | { kind: "tensor"; name: string; declared: Span };

/**
 * A lexical scope. `pending` holds names declared later in the same body, so that a reference to
 * one can say "used before it is defined" instead of "unknown name".
 */
export interface Scope {
  bindings: Map<string, Binding>;
  pending: Map<string, Span>;
  /** The layer being defined, to recognise a layer that reads its own output. */
  current?: string;
  parent?: Scope;
}

export function newScope(parent?: Scope): Scope {
  return { bindings: new Map(), pending: new Map(), parent };
}

export function lookup(scope: Scope, name: string): Binding | undefined {
  for (let s: Scope | undefined = scope; s; s = s.parent) {
    const b = s.bindings.get(name);
    if (b) return b;
  }
  return undefined;
}

function isPending(scope: Scope, name: string): boolean {
  for (let s: Scope | undefined = scope; s; s = s.parent) if (s.pending.has(name)) return true;
  return false;
}

export function visibleNames(scope: Scope): string[] {
  const names: string[] = [];
  for (let s: Scope | undefined = scope; s; s = s.parent) names.push(...s.bindings.keys());
  return names;
}

/**
 * Parts (numbers, names, calls, items) of the largest value. A constant may use another twice,
 * `const b = [a, a]`, so a few lines double a value thirty times; past this limit it is an error
 * (AX2030) instead of a tree of 2^30 parts that validation and messages would walk.
 */
export const MAX_VALUE_SIZE = 10_000;

/** Parts of each composite value (absent: one part). Name lookups copy the size with the value. */
const sizes = new WeakMap<Val, number>();
const sizeOf = (v: Val) => sizes.get(v) ?? 1;

/**
 * `val` with its size recorded, or an error value: silently when one of `parts` is already an error
 * (reported where it arose; otherwise `[a, a]` would restart doubling from there), reported when
 * `val` is past MAX_VALUE_SIZE.
 */
function sized(val: Val, size: number, out: Diagnostic[], parts: readonly Val[] = []): Val {
  if (parts.some((part) => part.kind === "error")) return { kind: "error", span: val.span };
  if (size > MAX_VALUE_SIZE) {
    const what = `this value (${size} parts)`;
    out.push(
      diag("AX2030", { what, limit: `${MAX_VALUE_SIZE} parts` }, val.span, {
        notes: ["a constant is copied into each place that uses it"],
      }),
    );
    return { kind: "error", span: val.span };
  }
  if (size > 1) sizes.set(val, size);
  return val;
}

const partsOf = (items: readonly Val[]) => items.reduce((sum, item) => sum + sizeOf(item), 1);

export function evaluate(value: Value, scope: Scope, out: Diagnostic[]): Val {
  const span = value.span;
  switch (value.kind) {
    case "Number":
      return { kind: "number", value: value.value, span };
    case "String":
      return { kind: "string", value: value.value, span };
    case "Error":
      return { kind: "error", span };
    case "Name": {
      const binding = lookup(scope, value.name);
      if (binding?.kind === "value") return sized({ ...binding.val, span }, sizeOf(binding.val), out);
      if (binding?.kind === "tensor") return { kind: "tensor", name: binding.name, span };
      if (scope.current === value.name) {
        out.push(diag("AX2009", { name: value.name }, span));
        return { kind: "error", span };
      }
      if (isPending(scope, value.name)) {
        out.push(
          diag("AX2007", { name: value.name }, span, {
            help: `move the definition of \`${value.name}\` above this line`,
          }),
        );
        return { kind: "error", span };
      }
      return { kind: "word", name: value.name, span };
    }
    case "Call": {
      const args = value.args.map((a) => evaluate(a, scope, out));
      return sized({ kind: "call", callee: value.callee.name, args, span }, partsOf(args), out, args);
    }
    case "Tuple":
    case "List": {
      const items = value.items.map((a) => evaluate(a, scope, out));
      return sized({ kind: "array", items, span }, partsOf(items), out, items);
    }
    case "Unary": {
      const operand = expectNumber(evaluate(value.operand, scope, out), out);
      return operand === undefined ? { kind: "error", span } : { kind: "number", value: -operand, span };
    }
    case "Binary": {
      const left = expectNumber(evaluate(value.left, scope, out), out);
      const right = expectNumber(evaluate(value.right, scope, out), out);
      if (left === undefined || right === undefined) return { kind: "error", span };
      const result = arithmetic[value.op](left, right);
      if (!Number.isFinite(result)) {
        out.push(diag("AX2020", { what: `\`${left} ${value.op} ${right}\`` }, span));
        return { kind: "error", span };
      }
      return { kind: "number", value: result, span };
    }
  }
}

const arithmetic = {
  "+": (a: number, b: number) => a + b,
  "-": (a: number, b: number) => a - b,
  "*": (a: number, b: number) => a * b,
  "/": (a: number, b: number) => a / b,
} as const;

/** A number, or undefined after reporting why not (a word is an unknown name in arithmetic). */
function expectNumber(v: Val, out: Diagnostic[]): number | undefined {
  if (v.kind === "number") return v.value;
  if (v.kind === "error") return undefined;
  if (v.kind === "word") out.push(diag("AX2006", { name: v.name }, v.span));
  else out.push(diag("AX2023", { name: showVal(v), is: describeKind(v), expected: "number" }, v.span));
  return undefined;
}

export function describeKind(v: Val): string {
  switch (v.kind) {
    case "number":
      return "number";
    case "string":
      return "string";
    case "word":
      return "name";
    case "call":
      return `\`${v.callee}(…)\` value`;
    case "array":
      return "tuple";
    case "tensor":
      return "tensor";
    case "error":
      return "invalid value";
  }
}

/** Short human rendering, for messages: `96`, `floor`, `normal(0, 0.01)`, `(0, 3)`. */
export function showVal(v: Val): string {
  switch (v.kind) {
    case "number":
      return String(v.value);
    case "string":
      return JSON.stringify(v.value);
    case "word":
      return v.name;
    case "call":
      return `${v.callee}(${v.args.map(showVal).join(", ")})`;
    case "array":
      return `(${v.items.map(showVal).join(", ")})`;
    case "tensor":
      return v.name;
    case "error":
      return "<error>";
  }
}

/** Plain JS data for schema validation: numbers, strings (words too), arrays, `{ call, args }`. */
export type Plain = number | string | Plain[] | { call: string; args: Plain[] } | { tensor: string } | null;

export function toPlain(v: Val): Plain {
  switch (v.kind) {
    case "number":
    case "string":
      return v.value;
    case "word":
      return v.name;
    case "call":
      return { call: v.callee, args: v.args.map(toPlain) };
    case "array":
      return v.items.map(toPlain);
    case "tensor":
      return { tensor: v.name };
    case "error":
      return null;
  }
}

export function containsError(v: Val): boolean {
  if (v.kind === "error") return true;
  if (v.kind === "call") return v.args.some(containsError);
  if (v.kind === "array") return v.items.some(containsError);
  return false;
}
