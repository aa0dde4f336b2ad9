// The one entry point for formatting .net text, shared by `alexc fmt`, `alexc lint --fix`, the
// Prettier plugin and the language server, so all four agree byte for byte.
import { hasErrors, type Diagnostic } from "../compiler/diagnostics.ts";
import { parse } from "./parse.ts";
import { printSource } from "./print.ts";

export type FormatResult = { ok: true; text: string } | { ok: false; diagnostics: Diagnostic[] };

/** The canonical text of `source`, or its syntax errors: a file that does not parse is never rewritten. */
export function formatSource(source: string): FormatResult {
  const parsed = parse(source);
  if (hasErrors(parsed.diagnostics)) return { ok: false, diagnostics: parsed.diagnostics };
  return { ok: true, text: printSource(parsed.ast) };
}
