// The document outline: the network with its inputs, constants, blocks (with their layers) and
// layers, then the `train` and `data` sections.
import { SymbolKind, type DocumentSymbol } from "vscode-languageserver";
import type { TextDocument } from "vscode-languageserver-textdocument";
import type { Identifier, LayerStmt, SourceFile, Span } from "../../grammar/ast.ts";
import { spanToRange } from "./positions.ts";

export function outline(doc: TextDocument, file: SourceFile): DocumentSymbol[] {
  const symbol = (
    name: Identifier,
    span: Span,
    kind: SymbolKind,
    detail: string,
    children?: DocumentSymbol[],
  ) => ({
    name: name.name || "?",
    detail,
    kind,
    range: spanToRange(doc, span),
    selectionRange: spanToRange(doc, name.span),
    children,
  });
  const layer = (stmt: LayerStmt) => symbol(stmt.name, stmt.span, SymbolKind.Variable, stmt.op.name);
  return file.items.map((item) => {
    if (item.kind === "Section") return symbol(item.name, item.span, SymbolKind.Namespace, "section");
    const children = item.items.map((child) => {
      switch (child.kind) {
        case "Input":
          return symbol(child.name, child.span, SymbolKind.Field, "input");
        case "Const":
          return symbol(child.name, child.span, SymbolKind.Constant, "const");
        case "Property":
          return symbol(child.name, child.span, SymbolKind.Property, "property");
        case "Block":
          return symbol(child.name, child.span, SymbolKind.Function, "block", child.body.map(layer));
        case "Layer":
          return layer(child);
      }
    });
    return symbol(item.name, item.span, SymbolKind.Module, "network", children);
  });
}
