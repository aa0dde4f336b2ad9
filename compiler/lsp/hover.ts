// Hover: a layer's per-tower output shape, parameters, multiply-adds and FLOPs (the numbers of
// `alexc info`, split over the towers the way the paper's model-parallel placement splits them), a
// constant's value, a block's signature and uses, a layer kind's or attribute's documentation.
import type { Hover } from "vscode-languageserver";
import type { TextDocument } from "vscode-languageserver-textdocument";
import type { BlockDecl, LayerStmt, NetworkDecl } from "../../grammar/ast.ts";
import { isLayerKind } from "../check/attributes.ts";
import { evaluate, newScope, showVal, type Val } from "../check/values.ts";
import { towerShape, type Graph, type Node } from "../graph.ts";
import { networkInfo } from "../info.ts";
import { placeNetwork } from "../place.ts";
import type { Analysis } from "./documents.ts";
import { attributesOf, describeAttribute, kindMarkdown } from "./kinds.ts";
import { spanToRange, touches } from "./positions.ts";
import { occurrenceAt, type SymbolIndex, type SymbolInfo } from "./symbols.ts";

export function hover(
  doc: TextDocument,
  analysis: Analysis,
  offset: number,
  lastGraph?: Graph,
): Hover | null {
  const markdown = (value: string) => ({ kind: "markdown" as const, value });
  const occurrence = occurrenceAt(analysis.index, offset);
  if (occurrence) {
    const value = symbolMarkdown(occurrence.symbol, analysis, lastGraph);
    return { contents: markdown(value), range: spanToRange(doc, occurrence.span) };
  }
  for (const { stmt } of analysis.index.layers) {
    if (touches(stmt.op.span, offset) && isLayerKind(stmt.op.name))
      return { contents: markdown(kindMarkdown(stmt.op.name)), range: spanToRange(doc, stmt.op.span) };
    const attrs = attributesOf(stmt.op.name);
    for (const arg of stmt.attrs) {
      if (!attrs || !touches(arg.name.span, offset) || !Object.hasOwn(attrs, arg.name.name)) continue;
      const value = `\`${arg.name.name}\` — attribute of \`${stmt.op.name}\`: ${describeAttribute(attrs[arg.name.name])}`;
      return { contents: markdown(value), range: spanToRange(doc, arg.name.span) };
    }
  }
  return null;
}

const fence = (code: string) => ["```alexc", code, "```"].join("\n");
const sourceOf = (analysis: Analysis, span: { start: { offset: number }; end: { offset: number } }) =>
  analysis.text.slice(span.start.offset, span.end.offset);

function symbolMarkdown(symbol: SymbolInfo, analysis: Analysis, lastGraph?: Graph): string {
  const decl = symbol.decl;
  switch (symbol.kind) {
    case "layer":
      return layerMarkdown(decl as LayerStmt, symbol.block, analysis, lastGraph);
    case "const":
    case "property": {
      const text = sourceOf(analysis, decl.span);
      const val = analysis.index.network && constantValues(analysis.index.network).get(symbol.name);
      const shown = val && val.kind !== "error" ? showVal(val) : undefined;
      const source = "value" in decl ? sourceOf(analysis, decl.value.span) : "";
      return [fence(text), ...(shown && shown !== source ? ["", `= \`${shown}\``] : [])].join("\n");
    }
    case "input":
      return [fence(sourceOf(analysis, decl.span)), "", "network input, whole on every tower"].join("\n");
    case "block": {
      const block = decl as BlockDecl;
      const params = block.params.map((p) => sourceOf(analysis, p.span)).join(", ");
      const uses = analysis.index.layers.filter(({ stmt }) => stmt.op.name === block.name.name);
      const last = block.body.at(-1)?.name.name;
      return [
        fence(`block ${block.name.name}(${params})`),
        "",
        last ? `output: its last layer \`${last}\`` : "an empty block",
        "",
        uses.length ? `used by ${uses.map(({ stmt }) => `\`${stmt.name.name}\``).join(", ")}` : "not used",
      ].join("\n");
    }
    case "param":
      return [
        fence(sourceOf(analysis, decl.span)),
        "",
        `parameter of block \`${symbol.block?.name.name}\` (a tensor or a value)`,
      ].join("\n");
  }
}

/** Constants and properties evaluated in source order, as the checker's first pass does. */
function constantValues(network: NetworkDecl): Map<string, Val> {
  const scope = newScope();
  const values = new Map<string, Val>();
  for (const item of network.items) {
    if (item.kind !== "Const" && item.kind !== "Property") continue;
    const val = evaluate(item.value, scope, []);
    values.set(item.name.name, val);
    scope.bindings.set(item.name.name, { kind: "value", val, declared: item.name.span });
  }
  return values;
}

// ---- layers -------------------------------------------------------------------------------------------

/** Every graph-name prefix `block`'s body is expanded under: one per use, nested uses included. */
function instancePrefixes(index: SymbolIndex, block: BlockDecl, expanding: BlockDecl[] = []): string[] {
  if (expanding.includes(block)) return []; // a block that calls itself expands nowhere (AX2022)
  return index.layers
    .filter(({ stmt }) => stmt.op.name === block.name.name)
    .flatMap(({ stmt, block: outer }) =>
      outer
        ? instancePrefixes(index, outer, [...expanding, block]).map((p) => `${p}.${stmt.name.name}`)
        : [stmt.name.name],
    );
}

function layerMarkdown(
  stmt: LayerStmt,
  block: BlockDecl | undefined,
  analysis: Analysis,
  lastGraph?: Graph,
): string {
  const lines = [fence(sourceOf(analysis, stmt.span))];
  const graph = analysis.graph ?? lastGraph;
  if (!graph) return [...lines, "", "_shapes appear once the file checks without errors_"].join("\n");
  if (!analysis.graph) lines.push("", "_from the last version that checked without errors_");
  const names = block
    ? instancePrefixes(analysis.index, block).map((p) => `${p}.${stmt.name.name}`)
    : [stmt.name.name];
  for (const name of names) {
    // A block use is known in the graph by its inner layers, `<use>.<inner>`; its output is the last.
    const own = graph.nodes.find((n) => n.name === name);
    const nodes = own ? [own] : graph.nodes.filter((n) => n.name.startsWith(`${name}.`));
    if (block || !own) lines.push("", `**${name}**${own ? "" : ` (${nodes.length} layers)`}`);
    if (nodes.length === 0) lines.push("", "not in the last checked graph");
    else lines.push("", ...towerTable(graph, nodes));
  }
  lines.push("", "per image, forward pass; a multiply-add is 2 FLOPs");
  return lines.join("\n");
}

const count = (n: number) => Math.round(n).toLocaleString("en-US");

function towerTable(graph: Graph, nodes: Node[]): string[] {
  const shares = towerShares(graph);
  const info = new Map(networkInfo(graph).layers.map((l) => [l.layer, l]));
  const towers = Array.from({ length: graph.towers }, (_, t) => t);
  const columns = graph.towers > 1 ? [...towers.map((t) => `tower ${t}`), "all towers"] : ["total"];
  const perTower = (value: (n: Node) => number) => {
    const cells = towers.map((t) => nodes.reduce((s, n) => s + value(n) * (shares.get(n.name)?.[t] ?? 0), 0));
    const total = nodes.reduce((s, n) => s + value(n), 0);
    return (graph.towers > 1 ? [...cells, total] : [total]).map(count);
  };
  const output = nodes.at(-1)!;
  const shape = (dims: number[]) => (dims.length ? dims.join("×") : "scalar");
  const outputCells = towers.map((t) =>
    (shares.get(output.name)?.[t] ?? 0) === 0 ? "—" : shape(towerShape(output.shape, output.layout)),
  );
  const row = (label: string, cells: string[]) => `| ${label} | ${cells.join(" | ")} |`;
  const params = (n: Node) => info.get(n.name)?.params ?? 0;
  const macs = (n: Node) => info.get(n.name)?.macs ?? 0;
  return [
    row("", columns),
    row(
      "---",
      columns.map(() => "---:"),
    ),
    row("output", graph.towers > 1 ? [...outputCells, shape(output.shape)] : [shape(output.shape)]),
    row("parameters", perTower(params)),
    row("multiply-adds", perTower(macs)),
    row(
      "FLOPs",
      perTower((n) => 2 * macs(n)),
    ),
  ];
}

const sharesCache = new WeakMap<Graph, Map<string, number[]>>();

/**
 * Each node's share of its work and parameters per tower. Two towers: the model-parallel placement's
 * own assignment (compiler/place.ts), which also knows that the loss after `on(0)` runs on tower 0
 * only. Other tower counts: from the layout, a replicated node computed whole on every tower.
 */
function towerShares(graph: Graph): Map<string, number[]> {
  const cached = sharesCache.get(graph);
  if (cached) return cached;
  let shares: Map<string, number[]>;
  if (graph.towers === 2) {
    shares = new Map(placeNetwork(graph, "model", { batch: 1 }).nodes.map((p) => [p.node, p.share]));
  } else {
    const T = graph.towers;
    shares = new Map(
      graph.nodes.map((n) => {
        const layout = n.layout;
        const share = Array.from({ length: T }, (_, t) =>
          layout.kind === "split" ? 1 / T : layout.kind === "on" ? Number(t === layout.tower) : 1,
        );
        return [n.name, share];
      }),
    );
  }
  sharesCache.set(graph, shares);
  return shares;
}
