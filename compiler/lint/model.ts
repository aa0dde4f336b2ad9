// What several rules need to see at once: the graph's readers of each value, the source statement
// behind each graph node (its name, attributes and block), and edits that remove whole lines.
// Graph nodes carry only their statement's span; the statement itself is found by that span.
import type {
  BlockDecl,
  LayerStmt,
  NetworkDecl,
  SectionDecl,
  SourceFile,
  Span,
  Value,
} from "../../grammar/ast.ts";
import type { Label, TextEdit } from "../diagnostics.ts";
import type { Graph, Node } from "../graph.ts";

export interface Statement {
  stmt: LayerStmt;
  /** The block whose body holds it; undefined at the network's top level. */
  block?: BlockDecl;
}

/** Every layer statement by its start offset (top level and block bodies). */
export function statements(network: NetworkDecl): Map<number, Statement> {
  const out = new Map<number, Statement>();
  for (const item of network.items) {
    if (item.kind === "Layer") out.set(item.span.start.offset, { stmt: item });
    else if (item.kind === "Block")
      for (const stmt of item.body) out.set(stmt.span.start.offset, { stmt, block: item });
  }
  return out;
}

/** Graph-level facts the graph rules share, built once per lint run and per graph. */
export class GraphModel {
  readonly byName: Map<string, Node>;
  readonly readers: Map<string, Node[]>;
  private readonly stmts: Map<number, Statement>;
  private readonly topLevel: Map<string, LayerStmt>;
  readonly graph: Graph;
  readonly network: NetworkDecl;

  constructor(graph: Graph, network: NetworkDecl) {
    this.graph = graph;
    this.network = network;
    this.byName = new Map(graph.nodes.map((n) => [n.name, n]));
    this.readers = new Map();
    for (const node of graph.nodes)
      for (const input of node.inputs) this.readers.set(input, [...(this.readers.get(input) ?? []), node]);
    this.stmts = statements(network);
    this.topLevel = new Map(
      network.items.filter((i): i is LayerStmt => i.kind === "Layer").map((l) => [l.name.name, l]),
    );
  }

  statement(node: Node): Statement | undefined {
    return this.stmts.get(node.span.start.offset);
  }

  /** The caret for a node: its name as written. */
  nameSpan(node: Node): Span {
    return this.statement(node)?.stmt.name.span ?? node.span;
  }

  /** The value of attribute `attr` as written on the node's statement, if it is written there. */
  attr(node: Node, attr: string): Value | undefined {
    return this.statement(node)?.stmt.attrs.find((a) => a.name.name === attr)?.value;
  }

  /** The name a message should use: inside a block, the statement's own name (`conv`, not `layer1.conv`). */
  shownName(node: Node): string {
    return this.statement(node)?.stmt.name.name ?? node.name;
  }

  /** For a node expanded from a block: a label on the call that instantiated it. */
  instanceLabels(node: Node): Label[] {
    const dot = node.name.indexOf(".");
    if (dot < 0) return [];
    const call = this.topLevel.get(node.name.slice(0, dot));
    return call ? [{ span: call.span, message: `in this use of block \`${call.op.name}\`` }] : [];
  }

  /** The single node reading `node`, if exactly one does. */
  onlyReader(node: Node): Node | undefined {
    const readers = this.readers.get(node.name) ?? [];
    return readers.length === 1 ? readers[0] : undefined;
  }

  producer(name: string): Node | undefined {
    return this.byName.get(name);
  }

  /** Nodes defined by top-level statements (fixes edit only those: a block body is shared). */
  isTopLevel(node: Node): boolean {
    return this.statement(node)?.block === undefined;
  }
}

const models = new WeakMap<Graph, GraphModel>();

/** One GraphModel per graph, however many rules ask. */
export function graphModel(graph: Graph, network: NetworkDecl): GraphModel {
  let m = models.get(graph);
  if (!m) models.set(graph, (m = new GraphModel(graph, network)));
  return m;
}

/** The `train` sections' entries by key, as written (the recipe holds the values). */
export function trainEntries(file: SourceFile): Map<string, { span: Span; entrySpan: Span }> {
  const out = new Map<string, { span: Span; entrySpan: Span }>();
  for (const item of file.items)
    if (item.kind === "Section" && (item as SectionDecl).section === "train")
      for (const e of item.entries)
        if (!out.has(e.name.name)) out.set(e.name.name, { span: e.value.span, entrySpan: e.span });
  return out;
}

/**
 * Deletes the text of `span`; when nothing but spaces and a comment share its lines, the whole
 * lines go (the comment on the line describes what is deleted).
 */
export function deleteLines(source: string, span: Span): TextEdit {
  const lineStart = span.start.offset - (span.start.column - 1);
  // Lines end at `\n`, `\r\n` or a lone `\r`, as in the lexer (and so in every span's line).
  const lineBreak = /\r\n?|\n/g;
  lineBreak.lastIndex = span.end.offset;
  const newline = lineBreak.exec(source);
  const lineEnd = newline ? newline.index : source.length;
  const before = source.slice(lineStart, span.start.offset);
  const after = source.slice(span.end.offset, lineEnd);
  if (before.trim() !== "" || !/^\s*(?:(?:#|\/\/).*)?$/.test(after)) return { span, text: "" };
  const end = newline
    ? { offset: lineEnd + newline[0].length, line: span.end.line + 1, column: 1 }
    : { offset: lineEnd, line: span.end.line, column: span.end.column + (lineEnd - span.end.offset) };
  return { span: { start: { offset: lineStart, line: span.start.line, column: 1 }, end }, text: "" };
}

/** Every name a value refers to (`normal(0, std)` refers to `std`; callees are not names). */
export function namesIn(value: Value | undefined, out: string[] = []): string[] {
  if (!value) return out;
  switch (value.kind) {
    case "Name":
      out.push(value.name);
      break;
    case "Call":
      value.args.forEach((a) => namesIn(a, out));
      break;
    case "Tuple":
    case "List":
      value.items.forEach((a) => namesIn(a, out));
      break;
    case "Binary":
      namesIn(value.left, out);
      namesIn(value.right, out);
      break;
    case "Unary":
      namesIn(value.operand, out);
      break;
  }
  return out;
}

// ---- numbers in messages -------------------------------------------------------------------------

export const count = (n: number) => n.toLocaleString("en-US");

export function bytes(n: number): string {
  const mib = n / 2 ** 20;
  return mib >= 1 ? `${+mib.toFixed(1)} MiB` : `${count(n)} bytes`;
}

export const percent = (x: number) => `${x >= 0.1 ? Math.round(x * 100) : +(x * 100).toFixed(1)} %`;

/** A number as a person writes it: 0.0005, 1e-7, 0.115. */
export const num = (x: number) =>
  x !== 0 && (Math.abs(x) < 1e-4 || Math.abs(x) >= 1e6) ? x.toExponential() : String(+x.toPrecision(3));

/** `1 row`, `2 columns`. */
export const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`;
