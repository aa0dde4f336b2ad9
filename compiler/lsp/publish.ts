// Diagnostics as the editor sees them: alexc's Diagnostic → LSP Diagnostic (code, severity, labels as
// related information, help and notes in the message), published per document after the typing
// pauses, for the latest version only.
import {
  DiagnosticSeverity,
  type Connection,
  type Diagnostic as LspDiagnostic,
  type TextDocuments,
} from "vscode-languageserver";
import type { TextDocument } from "vscode-languageserver-textdocument";
import type { Span } from "../../grammar/ast.ts";
import type { Diagnostic, Severity } from "../diagnostics.ts";
import type { DocumentCache } from "./documents.ts";
import { spanToRange } from "./positions.ts";

const severities: Record<Severity, DiagnosticSeverity> = {
  error: DiagnosticSeverity.Error,
  warning: DiagnosticSeverity.Warning,
  info: DiagnosticSeverity.Information,
};

/** Diagnostics about no particular place (a bad config file) stand at the start of the document. */
const nowhere: Span = { start: { offset: 0, line: 1, column: 1 }, end: { offset: 0, line: 1, column: 1 } };

export function toLspDiagnostic(doc: TextDocument, d: Diagnostic): LspDiagnostic {
  const message = [d.message, ...d.notes.map((n) => `note: ${n}`), ...(d.help ? [`help: ${d.help}`] : [])];
  return {
    range: spanToRange(doc, d.span ?? nowhere),
    severity: severities[d.severity],
    code: d.code,
    source: "alexc",
    message: message.join("\n"),
    relatedInformation: d.labels.map((label) => ({
      location: { uri: doc.uri, range: spanToRange(doc, label.span) },
      message: label.message,
    })),
  };
}

/** Waits this long after the last change before checking: one check per pause, not per keystroke. */
export const DEBOUNCE_MS = 200;

export class DiagnosticPublisher {
  #timers = new Map<string, NodeJS.Timeout>();
  #connection: Connection;
  #documents: TextDocuments<TextDocument>;
  #cache: DocumentCache;

  constructor(connection: Connection, documents: TextDocuments<TextDocument>, cache: DocumentCache) {
    this.#connection = connection;
    this.#documents = documents;
    this.#cache = cache;
  }

  /** Publishes after DEBOUNCE_MS of quiet (`delay` 0: at once, e.g. when a document opens). */
  schedule(uri: string, delay = DEBOUNCE_MS): void {
    clearTimeout(this.#timers.get(uri));
    this.#timers.set(
      uri,
      setTimeout(() => {
        this.#timers.delete(uri);
        void this.#publish(uri);
      }, delay),
    );
  }

  async #publish(uri: string): Promise<void> {
    // The document as it is now: changes that arrived while waiting are in it.
    const doc = this.#documents.get(uri);
    if (!doc) return;
    const diagnostics = this.#cache.diagnostics(doc).map((d) => toLspDiagnostic(doc, d));
    // Analysed now too, so a version that checks cleanly leaves its graph for hover to show while
    // later versions have errors, hovered or not.
    this.#cache.analysis(doc);
    await this.#connection.sendDiagnostics({ uri, version: doc.version, diagnostics });
  }

  /** A closed document's diagnostics disappear from the editor. */
  clear(uri: string): void {
    clearTimeout(this.#timers.get(uri));
    this.#timers.delete(uri);
    void this.#connection.sendDiagnostics({ uri, diagnostics: [] });
  }
}
