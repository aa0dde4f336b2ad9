// Spans ↔ LSP ranges. AST offsets are UTF-16 indices (grammar/ast.ts) and the LSP's default position
// encoding counts UTF-16 code units, so every conversion goes through the offset and the document's
// own line table: never through the AST's 1-based columns, whose line breaks (`\r` alone included)
// the two sides would otherwise have to agree on twice.
import type { Range } from "vscode-languageserver";
import type { TextDocument } from "vscode-languageserver-textdocument";
import type { Span } from "../../grammar/ast.ts";

export function spanToRange(doc: TextDocument, span: Span): Range {
  return { start: doc.positionAt(span.start.offset), end: doc.positionAt(span.end.offset) };
}

/** True when `offset` lies in `span` or just after it: a cursor at the end of a name is on the name. */
export function touches(span: Span, offset: number): boolean {
  return span.start.offset <= offset && offset <= span.end.offset;
}

export function contains(span: Span, offset: number): boolean {
  return span.start.offset <= offset && offset < span.end.offset;
}

/** Whether two ranges share a position (an empty range touching the other counts). */
export function rangesMeet(a: Range, b: Range): boolean {
  const before = (p: Range["start"], q: Range["start"]) =>
    p.line < q.line || (p.line === q.line && p.character < q.character);
  return !before(a.end, b.start) && !before(b.end, a.start);
}
