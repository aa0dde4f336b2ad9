// Rendering of diagnostics: human text (file:line:col, the source line, carets, help) and JSON for
// tools. Diagnostics themselves are data (compiler/diagnostics.ts); nothing here decides content.
import type { Span } from "../grammar/ast.ts";
import type { Diagnostic } from "./diagnostics.ts";

export interface RenderOptions {
  color?: boolean;
}

const paint = (on: boolean, code: string, text: string) => (on ? `\x1b[${code}m${text}\x1b[0m` : text);
const severityColor = { error: "1;31", warning: "1;33", info: "1;36" } as const;

/** The source line of a span and the caret underline beneath it (tabs kept so columns line up). */
function excerpt(source: string, span: Span, marker: string, color: boolean, message?: string): string[] {
  const lines = source.split(/\r\n|\r|\n/); // the parser's line breaks
  const lineText = lines[span.start.line - 1] ?? "";
  const gutter = String(span.start.line).length + 1;
  const startCol = span.start.column - 1;
  const endCol =
    span.end.line === span.start.line ? Math.max(span.end.column - 1, startCol + 1) : lineText.length;
  const width = Math.max(1, Math.min(endCol, Math.max(lineText.length, startCol + 1)) - startCol);
  const pad = lineText.slice(0, startCol).replace(/[^\t]/g, " ");
  const underline = paint(color, "1;31", marker.repeat(width));
  const shown = lineText.length > 200 ? `${lineText.slice(0, 200)}…` : lineText;
  return [
    `${" ".repeat(gutter)}|`,
    `${String(span.start.line).padStart(gutter - 1)} | ${shown}`,
    `${" ".repeat(gutter)}| ${pad}${underline}${message ? ` ${message}` : ""}`,
  ];
}

export function renderDiagnostic(
  d: Diagnostic,
  file: string,
  source: string,
  opts: RenderOptions = {},
): string {
  const color = opts.color ?? false;
  const where = d.span ? `${file}:${d.span.start.line}:${d.span.start.column}` : file;
  const head = `${paint(color, "1", `${where}:`)} ${paint(color, severityColor[d.severity], `${d.severity} ${d.code}`)}: ${d.message}`;
  const out = [head];
  if (d.span) out.push(...excerpt(source, d.span, "^", color));
  for (const label of d.labels) {
    out.push(`${file}:${label.span.start.line}:${label.span.start.column}: note: ${label.message}`);
    out.push(...excerpt(source, label.span, "-", false));
  }
  for (const note of d.notes) out.push(`  = note: ${note}`);
  if (d.help) out.push(`  = help: ${d.help}`);
  if (d.fix) out.push(`  = fix: ${d.fix.description}`);
  return out.join("\n");
}

export function renderDiagnostics(
  ds: readonly Diagnostic[],
  file: string,
  source: string,
  opts: RenderOptions = {},
): string {
  return ds.map((d) => renderDiagnostic(d, file, source, opts)).join("\n\n");
}

/** One JSON record per diagnostic, positions 1-based as in the text form. */
export function diagnosticsToJson(ds: readonly Diagnostic[], file: string): object[] {
  return ds.map((d) => ({
    file,
    code: d.code,
    severity: d.severity,
    message: d.message,
    line: d.span?.start.line,
    column: d.span?.start.column,
    endLine: d.span?.end.line,
    endColumn: d.span?.end.column,
    span: d.span,
    labels: d.labels,
    notes: d.notes,
    help: d.help,
    fix: d.fix,
  }));
}

export function summary(ds: readonly Diagnostic[]): string {
  const errors = ds.filter((d) => d.severity === "error").length;
  const warnings = ds.filter((d) => d.severity === "warning").length;
  const parts = [];
  if (errors) parts.push(`${errors} error${errors === 1 ? "" : "s"}`);
  if (warnings) parts.push(`${warnings} warning${warnings === 1 ? "" : "s"}`);
  return parts.join(", ");
}
