// The one place the server gets a document's diagnostics from: `lintSource`, as `alexc lint` runs it,
// with the alexc.json nearest to the document (the defaults for a document that is not on disk).
import { dirname, relative } from "node:path";
import { diag, type Diagnostic } from "../diagnostics.ts";
import { lintSource, loadLintConfig } from "../lint/index.ts";

/** `file` is the document's path on disk, when it has one. */
export function diagnose(text: string, file?: string): Diagnostic[] {
  try {
    if (!file) return lintSource(text);
    const { config, path, diagnostics } = loadLintConfig(dirname(file));
    return [...diagnostics.map((d) => aboutConfig(d, path, file)), ...lintSource(text, { config, file })];
  } catch (error) {
    // Runs on a timer: a bug must become a diagnostic, not an unhandled rejection that ends the server.
    const message = error instanceof Error ? error.message : String(error);
    return [diag("AX9001", { message }, undefined)];
  }
}

/**
 * A problem in alexc.json is reported on the document it affects, at its start (its span and fix are
 * positions in alexc.json, not in the document), naming the place in alexc.json.
 */
function aboutConfig(d: Diagnostic, configPath: string | undefined, file: string): Diagnostic {
  const where = configPath ? relative(dirname(file), configPath) : "alexc.json";
  const at = d.span ? `${where}:${d.span.start.line}:${d.span.start.column}` : where;
  return { ...d, span: undefined, labels: [], fix: undefined, message: `${at}: ${d.message}` };
}
