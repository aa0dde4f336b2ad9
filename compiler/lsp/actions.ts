// Code actions from the fixes diagnostics carry (`Diagnostic.fix`): one quick fix per diagnostic in
// the requested range, preferred when the fix is `safe` (the one `--fix` applies unattended), and on
// request a `source.fixAll` action applying every safe fix at once.
import { CodeActionKind, type CodeAction, type CodeActionParams, type TextEdit } from "vscode-languageserver";
import type { TextDocument } from "vscode-languageserver-textdocument";
import type { Diagnostic, Fix } from "../diagnostics.ts";
import { rangesMeet, spanToRange } from "./positions.ts";
import { toLspDiagnostic } from "./publish.ts";

export const fixAllKind = `${CodeActionKind.SourceFixAll}.alexc`;

function lspEdits(doc: TextDocument, fix: Fix): TextEdit[] {
  return fix.edits.map((e) => ({ range: spanToRange(doc, e.span), newText: e.text }));
}

export function codeActions(
  doc: TextDocument,
  diagnostics: Diagnostic[],
  params: CodeActionParams,
): CodeAction[] {
  const only = params.context.only;
  const wanted = (kind: string) => !only || only.some((o) => kind === o || kind.startsWith(`${o}.`));
  const actions: CodeAction[] = [];
  if (wanted(CodeActionKind.QuickFix)) {
    for (const d of diagnostics) {
      if (!d.fix) continue;
      const diagnostic = toLspDiagnostic(doc, d);
      if (!rangesMeet(diagnostic.range, params.range)) continue;
      actions.push({
        title: d.fix.description,
        kind: CodeActionKind.QuickFix,
        diagnostics: [diagnostic],
        isPreferred: d.fix.applicability === "safe",
        edit: { changes: { [doc.uri]: lspEdits(doc, d.fix) } },
      });
    }
  }
  // Fix-all is a source action: editors ask for it by kind (on save, or from the Source Action menu).
  if (only?.some((o) => fixAllKind === o || fixAllKind.startsWith(`${o}.`))) {
    const edits = safeEdits(diagnostics);
    if (edits.length)
      actions.push({
        title: "Fix all safe problems",
        kind: fixAllKind,
        edit: {
          changes: { [doc.uri]: edits.map((e) => ({ range: spanToRange(doc, e.span), newText: e.text })) },
        },
      });
  }
  return actions;
}

/** The edits of every safe fix, skipping a fix that overlaps one already taken (edits must not overlap). */
function safeEdits(diagnostics: Diagnostic[]): Fix["edits"] {
  const taken: Fix["edits"] = [];
  const fixes = diagnostics.flatMap((d) => (d.fix?.applicability === "safe" ? [d.fix] : []));
  for (const fix of fixes) {
    const overlaps = fix.edits.some((e) =>
      taken.some((t) => e.span.start.offset < t.span.end.offset && t.span.start.offset < e.span.end.offset),
    );
    if (!overlaps) taken.push(...fix.edits);
  }
  return taken;
}
