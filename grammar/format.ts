// The one entry point for formatting .net text, shared by `alexc fmt`, `alexc lint --fix`, the
// Prettier plugin and the language server, so all four agree byte for byte.
import { diag, hasErrors, type Diagnostic } from "../compiler/diagnostics.ts";
import type { SourceFile } from "./ast.ts";
import { parse } from "./parse.ts";
import { printSource } from "./print.ts";

export type FormatResult = { ok: true; text: string } | { ok: false; diagnostics: Diagnostic[] };

/**
 * The canonical text of `source`, or its syntax errors: a file that does not parse is never rewritten.
 * The result is parsed again before it is returned, and a printer bug that would change the tree or
 * lose a comment is an internal error (AX9001) rather than a rewritten file (gofmt does the same).
 */
export function formatSource(source: string): FormatResult {
  const parsed = parse(source);
  if (hasErrors(parsed.diagnostics)) return { ok: false, diagnostics: parsed.diagnostics };
  const text = printSource(parsed.ast);
  const problem = differences(parsed.ast, text);
  if (problem !== undefined) {
    return { ok: false, diagnostics: [diag("AX9001", { message: `the formatter ${problem}` }, undefined)] };
  }
  return { ok: true, text };
}

/** Why `printed` is not a faithful print of `original`, or undefined if it is. */
function differences(original: SourceFile, printed: string): string | undefined {
  const reparsed = parse(printed);
  if (hasErrors(reparsed.diagnostics))
    return `printed text that does not parse: ${reparsed.diagnostics[0].message}`;
  if (!sameTree(original.items, reparsed.ast.items)) return "changed the syntax tree";
  const texts = (file: SourceFile) => file.comments.map((c) => c.text.trimEnd()).join("\n");
  if (texts(original) !== texts(reparsed.ast)) return "changed or lost a comment";
  return undefined;
}

/** Deep equality of AST nodes, spans aside. */
function sameTree(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const x = a as Record<string, unknown>;
  const y = b as Record<string, unknown>;
  const keys = (node: Record<string, unknown>) =>
    Object.keys(node).filter((k) => k !== "span" && node[k] !== undefined);
  const xKeys = keys(x);
  return xKeys.length === keys(y).length && xKeys.every((k) => sameTree(x[k], y[k]));
}
