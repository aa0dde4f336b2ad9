// The alexc language server: wires the protocol's requests to the modules of this folder. Every
// request reads the document version the client sent last (DocumentCache); diagnostics are
// published after the typing pauses (DiagnosticPublisher).
import {
  CodeActionKind,
  DocumentHighlightKind,
  TextDocuments,
  TextDocumentSyncKind,
  type Connection,
  type Location,
  type TextDocumentPositionParams,
} from "vscode-languageserver";
import { TextDocument } from "vscode-languageserver-textdocument";
import { VERSION } from "../command-context.ts";
import { codeActions, fixAllKind } from "./actions.ts";
import { completions } from "./completion.ts";
import { DocumentCache } from "./documents.ts";
import { formatEdits } from "./format.ts";
import { hover } from "./hover.ts";
import { outline } from "./outline.ts";
import { spanToRange } from "./positions.ts";
import { DiagnosticPublisher } from "./publish.ts";
import { prepareRename, rename } from "./rename.ts";
import { occurrenceAt, occurrencesOf, type Occurrence } from "./symbols.ts";

export function startServer(connection: Connection): void {
  const documents = new TextDocuments(TextDocument);
  const cache = new DocumentCache();
  const publisher = new DiagnosticPublisher(connection, documents, cache);
  const opening = new Set<string>();

  connection.onInitialize((params) => ({
    capabilities: {
      textDocumentSync: TextDocumentSyncKind.Incremental,
      hoverProvider: true,
      definitionProvider: true,
      referencesProvider: true,
      documentHighlightProvider: true,
      documentSymbolProvider: true,
      // A client without prepareRename support must not be told the server has it.
      renameProvider: params.capabilities.textDocument?.rename?.prepareSupport
        ? { prepareProvider: true }
        : true,
      documentFormattingProvider: true,
      completionProvider: { triggerCharacters: ["(", ",", ":"] },
      codeActionProvider: { codeActionKinds: [CodeActionKind.QuickFix, fixAllKind] },
    },
    serverInfo: { name: "alexc", version: VERSION },
  }));

  // An opened document is checked at once; edits wait for a pause in typing. The library fires
  // onDidOpen and then onDidChangeContent for an open.
  documents.onDidOpen((e) => void opening.add(e.document.uri));
  documents.onDidChangeContent((e) =>
    publisher.schedule(e.document.uri, opening.delete(e.document.uri) ? 0 : undefined),
  );
  documents.onDidClose((e) => {
    publisher.clear(e.document.uri);
    cache.forget(e.document.uri);
  });

  /** The document and cursor offset of a position request, or undefined for an unknown document. */
  const at = <T>(params: TextDocumentPositionParams, answer: (doc: TextDocument, offset: number) => T) => {
    const doc = documents.get(params.textDocument.uri);
    return doc ? answer(doc, doc.offsetAt(params.position)) : null;
  };
  const occurrence = (doc: TextDocument, offset: number): Occurrence | undefined =>
    occurrenceAt(cache.analysis(doc).index, offset);

  connection.onHover((params) =>
    at(params, (doc, offset) => hover(doc, cache.analysis(doc), offset, cache.lastGraph(doc.uri))),
  );

  connection.onDefinition((params) =>
    at(params, (doc, offset): Location | null => {
      const symbol = occurrence(doc, offset)?.symbol;
      return symbol ? { uri: doc.uri, range: spanToRange(doc, symbol.span) } : null;
    }),
  );

  connection.onReferences((params) =>
    at(params, (doc, offset) => {
      const symbol = occurrence(doc, offset)?.symbol;
      if (!symbol) return [];
      return occurrencesOf(cache.analysis(doc).index, symbol)
        .filter((o) => params.context.includeDeclaration || !o.definition)
        .map((o) => ({ uri: doc.uri, range: spanToRange(doc, o.span) }));
    }),
  );

  connection.onDocumentHighlight((params) =>
    at(params, (doc, offset) => {
      const symbol = occurrence(doc, offset)?.symbol;
      if (!symbol) return [];
      return occurrencesOf(cache.analysis(doc).index, symbol).map((o) => ({
        range: spanToRange(doc, o.span),
        kind: o.definition ? DocumentHighlightKind.Write : DocumentHighlightKind.Read,
      }));
    }),
  );

  connection.onPrepareRename((params) =>
    at(params, (doc, offset) => prepareRename(doc, cache.analysis(doc), offset)),
  );
  connection.onRenameRequest((params) =>
    at(params, (doc, offset) => rename(doc, cache.analysis(doc), offset, params.newName)),
  );

  connection.onCompletion(
    (params) => at(params, (doc, offset) => completions(cache.analysis(doc), offset)) ?? [],
  );

  connection.onDocumentFormatting((params) => {
    const doc = documents.get(params.textDocument.uri);
    return doc ? formatEdits(doc) : [];
  });

  connection.onCodeAction((params) => {
    const doc = documents.get(params.textDocument.uri);
    return doc ? codeActions(doc, cache.diagnostics(doc), params) : [];
  });

  connection.onDocumentSymbol((params) => {
    const doc = documents.get(params.textDocument.uri);
    return doc ? outline(doc, cache.analysis(doc).ast) : [];
  });

  documents.listen(connection);
  connection.listen();
}
