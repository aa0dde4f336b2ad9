// Per-document analysis, computed once per version: the front end's AST and graph, the symbol index
// and the diagnostics. Every request reads the version the client last sent, never a stale one.
import { fileURLToPath } from "node:url";
import type { TextDocument } from "vscode-languageserver-textdocument";
import type { SourceFile } from "../../grammar/ast.ts";
import type { Diagnostic } from "../diagnostics.ts";
import { compileSource } from "../frontend.ts";
import type { Graph } from "../graph.ts";
import { diagnose } from "./diagnose.ts";
import { buildIndex, type SymbolIndex } from "./symbols.ts";

export interface Analysis {
  version: number;
  text: string;
  ast: SourceFile;
  /** Present when the text checks without errors. */
  graph?: Graph;
  index: SymbolIndex;
}

/** The path of a `file:` URI; undefined for unsaved buffers (`untitled:`) and other schemes. */
export function filePath(uri: string): string | undefined {
  if (!uri.startsWith("file:")) return undefined;
  try {
    return fileURLToPath(uri);
  } catch {
    return undefined;
  }
}

export class DocumentCache {
  #analyses = new Map<string, Analysis>();
  #diagnostics = new Map<string, { version: number; list: Diagnostic[] }>();
  /** The graph of the last version that checked cleanly: hover keeps showing shapes while typing. */
  #lastGraph = new Map<string, Graph>();

  analysis(doc: TextDocument): Analysis {
    const cached = this.#analyses.get(doc.uri);
    if (cached?.version === doc.version) return cached;
    const text = doc.getText();
    const front = compileSource(text);
    const analysis: Analysis = {
      version: doc.version,
      text,
      ast: front.ast,
      graph: front.graph,
      index: buildIndex(front.ast),
    };
    this.#analyses.set(doc.uri, analysis);
    if (front.graph) this.#lastGraph.set(doc.uri, front.graph);
    return analysis;
  }

  diagnostics(doc: TextDocument): Diagnostic[] {
    const cached = this.#diagnostics.get(doc.uri);
    if (cached?.version === doc.version) return cached.list;
    const list = diagnose(doc.getText(), filePath(doc.uri));
    this.#diagnostics.set(doc.uri, { version: doc.version, list });
    return list;
  }

  lastGraph(uri: string): Graph | undefined {
    return this.#lastGraph.get(uri);
  }

  forget(uri: string): void {
    this.#analyses.delete(uri);
    this.#diagnostics.delete(uri);
    this.#lastGraph.delete(uri);
  }
}
