// `alexc lint --fix`: applies the safe fixes, re-lints (one fix can reveal another: removing the
// only use of a constant makes it unused), and formats the result with the one formatter the CLI,
// the Prettier plugin and the language server share, so a fixed file is also a formatted one.
import { formatSource } from "../../grammar/format.ts";
import type { Diagnostic, Fix, TextEdit } from "../diagnostics.ts";
import { lintSource, type LintOptions } from "./index.ts";

/** ESLint's bound too: fixes that keep producing fixes are a bug, not something to chase forever. */
const MAX_PASSES = 10;

const overlaps = (a: TextEdit, b: TextEdit) =>
  a.span.start.offset < b.span.end.offset && b.span.start.offset < a.span.end.offset
    ? true
    : a.span.start.offset === b.span.start.offset; // two insertions (or an insertion and a deletion) at one point

/**
 * Applies every fix of `diagnostics` that `accept` takes and whose edits overlap none taken before
 * it (in source order); the others wait for the next pass. Edits of one fix are applied together
 * or not at all.
 */
export function applyFixes(
  source: string,
  diagnostics: readonly Diagnostic[],
  accept: (fix: Fix) => boolean = (fix) => fix.applicability === "safe",
): { text: string; applied: number } {
  const taken: TextEdit[] = [];
  let applied = 0;
  for (const d of diagnostics) {
    if (!d.fix || !accept(d.fix) || d.fix.edits.length === 0) continue;
    if (d.fix.edits.some((e) => taken.some((t) => overlaps(e, t)))) continue;
    taken.push(...d.fix.edits);
    applied++;
  }
  let text = source;
  for (const edit of taken.sort((a, b) => b.span.start.offset - a.span.start.offset))
    text = text.slice(0, edit.span.start.offset) + edit.text + text.slice(edit.span.end.offset);
  return { text, applied };
}

export interface FixResult {
  /** The fixed and formatted text (the input when nothing changed). */
  text: string;
  /** Fixes applied over all passes. */
  fixed: number;
  /** The findings left in `text`. */
  diagnostics: Diagnostic[];
}

/** Safe fixes until none is left (at most MAX_PASSES rounds), then the formatter. */
export function fixSource(source: string, options: LintOptions = {}): FixResult {
  let text = source;
  let fixed = 0;
  let diagnostics = lintSource(text, options);
  for (let pass = 0; pass < MAX_PASSES; pass++) {
    const result = applyFixes(text, diagnostics);
    if (result.applied === 0) break;
    text = result.text;
    fixed += result.applied;
    diagnostics = lintSource(text, options);
  }
  // A file with syntax errors is never rewritten by the formatter (it returns the errors instead).
  const formatted = formatSource(text);
  if (formatted.ok && formatted.text !== text) {
    text = formatted.text;
    diagnostics = lintSource(text, options);
  }
  return { text, fixed, diagnostics };
}
