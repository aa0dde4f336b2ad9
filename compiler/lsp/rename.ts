// Rename: every occurrence of a layer, constant, input, block or block parameter, or an error that
// says why not. A rename must keep every other name meaning what it meant: the new name may not be
// taken in the symbol's scope, may not hide a name a block body uses, and may not capture a bare
// word already written in its scope (renaming a constant to `local` would turn `towers: local` into
// a reference to it).
import { LSPErrorCodes, ResponseError, type Range, type WorkspaceEdit } from "vscode-languageserver";
import type { TextDocument } from "vscode-languageserver-textdocument";
import type { Span } from "../../grammar/ast.ts";
import { isLayerKind } from "../check/attributes.ts";
import type { Analysis } from "./documents.ts";
import { isIdentifier, keywords } from "./names.ts";
import { contains, spanToRange } from "./positions.ts";
import { lookup, occurrenceAt, occurrencesOf, type SymbolIndex, type SymbolInfo } from "./symbols.ts";

const failed = (message: string) => new ResponseError(LSPErrorCodes.RequestFailed, message);

function target(analysis: Analysis, offset: number): SymbolInfo {
  const occurrence = occurrenceAt(analysis.index, offset);
  if (!occurrence) throw failed("only layers, constants, inputs, blocks and block parameters can be renamed");
  if (occurrence.symbol.kind === "property")
    throw failed(`\`${occurrence.symbol.name}\` is a network property; its name is fixed`);
  return occurrence.symbol;
}

export function prepareRename(
  doc: TextDocument,
  analysis: Analysis,
  offset: number,
): { range: Range; placeholder: string } {
  const symbol = target(analysis, offset);
  const occurrence = occurrencesOf(analysis.index, symbol).find(
    (o) => o.span.start.offset <= offset && offset <= o.span.end.offset,
  )!;
  return { range: spanToRange(doc, occurrence.span), placeholder: symbol.name };
}

export function rename(
  doc: TextDocument,
  analysis: Analysis,
  offset: number,
  newName: string,
): WorkspaceEdit {
  const symbol = target(analysis, offset);
  const problem = renameProblem(analysis.index, symbol, newName);
  if (problem) throw failed(problem);
  const edits = occurrencesOf(analysis.index, symbol).map((o) => ({
    range: spanToRange(doc, o.span),
    newText: newName,
  }));
  return { changes: { [doc.uri]: edits } };
}

const line = (span: Span) => `line ${span.start.line}`;

/** Why `symbol` cannot be renamed to `name`, or undefined when it can. */
export function renameProblem(index: SymbolIndex, symbol: SymbolInfo, name: string): string | undefined {
  if (name === symbol.name) return undefined;
  if (keywords.includes(name)) return `\`${name}\` is a keyword`;
  if (!isIdentifier(name))
    return `\`${name}\` is not a name: use letters, digits and \`_\`, not starting with a digit`;
  if (symbol.kind === "block") {
    if (isLayerKind(name)) return `\`${name}\` is a built-in layer kind`;
    const other = index.blocks.get(name);
    return other ? `a block \`${name}\` is already defined (${line(other.span)})` : undefined;
  }
  const { decls, layers, blocks } = index.scopes;
  const uses = occurrencesOf(index, symbol).filter((o) => !o.definition);
  if (symbol.block) {
    const taken = lookup(blocks.get(symbol.block)!, name);
    if (taken?.block === symbol.block)
      return `\`${name}\` is already defined in block \`${symbol.block.name.name}\` (${line(taken.span)})`;
    // The body would read this symbol where it read the network's `name`.
    if (
      taken &&
      occurrencesOf(index, taken).some(
        (o) => !o.definition && contains(symbol.block!.span, o.span.start.offset),
      )
    )
      return `block \`${symbol.block.name.name}\` uses the network's \`${name}\` (${line(taken.span)}), which this name would hide`;
  } else {
    const taken = layers.names.get(name) ?? decls.names.get(name);
    if (taken) return `\`${name}\` is already defined (${line(taken.span)})`;
    // Constants and inputs are visible in block bodies, where a parameter or inner layer may hide them.
    for (const [block, scope] of blocks) {
      const hidden = symbol.kind !== "layer" && scope.names.get(name);
      if (hidden && uses.some((o) => contains(block.span, o.span.start.offset)))
        return `block \`${block.name.name}\` uses \`${symbol.name}\` but defines its own \`${name}\` (${line(hidden.span)})`;
    }
  }
  // A top-level layer is invisible in block bodies, so only words at the network level could be captured.
  const captured = index.words.find(
    (w) => w.name === name && (symbol.block ? w.block === symbol.block : symbol.kind !== "layer" || !w.block),
  );
  if (captured)
    return `\`${name}\` already stands as a word on ${line(captured.span)}; this rename would change its meaning`;
  return undefined;
}
