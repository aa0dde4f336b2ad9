// The symbol index: every definition and reference of a layer, constant, property, input, block and
// block parameter in one file, found from the AST with the checker's scoping rules
// (compiler/check/index.ts and layers.ts):
//  - constants, properties and inputs are visible everywhere, block bodies included;
//  - top-level layers are visible to top-level layers (and to the `train` section's `dropout` list),
//    never inside a block body;
//  - a block body sees its parameters and its own layers, which shadow the network's names;
//  - a layer's op names a block when one has that name, and a named argument of a block use names
//    one of the block's parameters.
// Names are resolved regardless of order, so go-to-definition still works on a use-before-definition
// (the checker reports that one; the index only says what the name means).
import type {
  BlockDecl,
  BlockParam,
  LayerStmt,
  NetworkDecl,
  NetworkItem,
  SourceFile,
  Span,
  Value,
} from "../../grammar/ast.ts";
import { contains, touches } from "./positions.ts";

export type SymbolKind = "layer" | "const" | "property" | "input" | "block" | "param";

export interface SymbolInfo {
  kind: SymbolKind;
  name: string;
  /** The defining name (the first definition when a name is defined twice). */
  span: Span;
  decl: NetworkItem | BlockParam;
  /** The block whose parameter or inner layer this is. */
  block?: BlockDecl;
}

export interface Occurrence {
  symbol: SymbolInfo;
  span: Span;
  definition: boolean;
}

/** A bare name that resolves to nothing: an enumeration word such as `local`, or a typo. */
export interface Word {
  name: string;
  span: Span;
  /** The block body it stands in; undefined at the network level. */
  block?: BlockDecl;
}

export interface Scope {
  names: Map<string, SymbolInfo>;
  parent?: Scope;
}

export interface SymbolIndex {
  network?: NetworkDecl;
  symbols: SymbolInfo[];
  /** In source order. */
  occurrences: Occurrence[];
  words: Word[];
  /** Every layer statement, top-level and in block bodies. */
  layers: { stmt: LayerStmt; block?: BlockDecl }[];
  blocks: Map<string, SymbolInfo>;
  scopes: { decls: Scope; layers: Scope; blocks: Map<BlockDecl, Scope> };
}

export function lookup(scope: Scope, name: string): SymbolInfo | undefined {
  for (let s: Scope | undefined = scope; s; s = s.parent) {
    const found = s.names.get(name);
    if (found) return found;
  }
  return undefined;
}

export function buildIndex(file: SourceFile): SymbolIndex {
  const decls: Scope = { names: new Map() };
  const index: SymbolIndex = {
    symbols: [],
    occurrences: [],
    words: [],
    layers: [],
    blocks: new Map(),
    scopes: { decls, layers: { names: new Map(), parent: decls }, blocks: new Map() },
  };
  // Only the first network means anything to the checker (a second one is AX1005).
  const network = file.items.find((i): i is NetworkDecl => i.kind === "Network");
  if (!network) return index;
  index.network = network;
  declare(index, network);
  resolve(index, network, file);
  index.occurrences.sort((a, b) => a.span.start.offset - b.span.start.offset);
  return index;
}

/** Pass 1: every definition, so that pass 2 can resolve names in any order. */
function declare(index: SymbolIndex, network: NetworkDecl): void {
  const { decls, layers } = index.scopes;
  const define = (scope: Scope, info: SymbolInfo, also?: Scope) => {
    if (info.name === "") return; // recovered by the parser, already reported
    const first = scope.names.get(info.name) ?? also?.names.get(info.name);
    if (first) {
      index.occurrences.push({ symbol: first, span: info.span, definition: true });
      return;
    }
    scope.names.set(info.name, info);
    index.symbols.push(info);
    index.occurrences.push({ symbol: info, span: info.span, definition: true });
  };
  for (const item of network.items) {
    const at = { name: item.name.name, span: item.name.span, decl: item };
    switch (item.kind) {
      case "Const":
        define(decls, { kind: "const", ...at });
        break;
      case "Input":
        define(decls, { kind: "input", ...at });
        break;
      case "Property":
        // Only the two properties the checker knows become names (`units: classes`).
        if (item.name.name === "classes" || item.name.name === "towers")
          define(decls, { kind: "property", ...at });
        break;
      case "Layer":
        // Top-level layers share one namespace with the declarations (AX2008 otherwise).
        define(layers, { kind: "layer", ...at }, decls);
        index.layers.push({ stmt: item });
        break;
      case "Block": {
        const scope: Scope = { names: new Map(), parent: decls };
        index.scopes.blocks.set(item, scope);
        const blockNames: Scope = { names: index.blocks };
        define(blockNames, { kind: "block", ...at });
        for (const param of item.params)
          define(scope, {
            kind: "param",
            name: param.name.name,
            span: param.name.span,
            decl: param,
            block: item,
          });
        for (const stmt of item.body) {
          define(scope, {
            kind: "layer",
            name: stmt.name.name,
            span: stmt.name.span,
            decl: stmt,
            block: item,
          });
          index.layers.push({ stmt, block: item });
        }
        break;
      }
    }
  }
}

/** Pass 2: every reference. */
function resolve(index: SymbolIndex, network: NetworkDecl, file: SourceFile): void {
  const { decls, layers } = index.scopes;
  const refer = (symbol: SymbolInfo, span: Span) =>
    index.occurrences.push({ symbol, span, definition: false });
  const value = (v: Value, scope: Scope, block?: BlockDecl): void => {
    switch (v.kind) {
      case "Name": {
        if (v.name === "") return;
        const symbol = lookup(scope, v.name);
        if (symbol) refer(symbol, v.span);
        else index.words.push({ name: v.name, span: v.span, block });
        return;
      }
      case "Call":
        // A callee (`normal`, `on`, `plateau`) is a function word, never a name in scope.
        return v.args.forEach((a) => value(a, scope, block));
      case "Tuple":
      case "List":
        return v.items.forEach((a) => value(a, scope, block));
      case "Binary":
        value(v.left, scope, block);
        return value(v.right, scope, block);
      case "Unary":
        return value(v.operand, scope, block);
    }
  };
  const layer = (stmt: LayerStmt, scope: Scope, block?: BlockDecl) => {
    const used = index.blocks.get(stmt.op.name);
    if (used) refer(used, stmt.op.span);
    for (const input of stmt.inputs) value(input, scope, block);
    for (const arg of stmt.attrs) {
      const param = used && (used.decl as BlockDecl).params.find((p) => p.name.name === arg.name.name);
      const symbol = param && index.scopes.blocks.get(used.decl as BlockDecl)?.names.get(param.name.name);
      if (symbol) refer(symbol, arg.name.span);
      value(arg.value, scope, block);
    }
  };
  for (const item of network.items) {
    switch (item.kind) {
      case "Const":
      case "Property":
        value(item.value, decls);
        break;
      case "Input":
        item.shape.forEach((v) => value(v, decls));
        break;
      case "Layer":
        layer(item, layers);
        break;
      case "Block": {
        const scope = index.scopes.blocks.get(item)!;
        for (const param of item.params) if (param.default) value(param.default, decls);
        for (const stmt of item.body) layer(stmt, scope, item);
        break;
      }
    }
  }
  // `dropout: [drop6, drop7]` in `train` names top-level layers (compiler/check/recipe.ts); every other
  // section value is evaluated in an empty scope, so its names are words nothing can capture.
  for (const section of file.items) {
    if (section.kind !== "Section" || section.section !== "train") continue;
    for (const entry of section.entries) {
      if (entry.name.name !== "dropout" || entry.value.kind !== "List") continue;
      for (const item of entry.value.items) {
        const symbol = item.kind === "Name" ? layers.names.get(item.name) : undefined;
        if (symbol) refer(symbol, item.span);
      }
    }
  }
}

/** The occurrence under the cursor: one that contains it, else one that ends right before it. */
export function occurrenceAt(index: SymbolIndex, offset: number): Occurrence | undefined {
  return (
    index.occurrences.find((o) => contains(o.span, offset)) ??
    index.occurrences.find((o) => touches(o.span, offset))
  );
}

export function occurrencesOf(index: SymbolIndex, symbol: SymbolInfo): Occurrence[] {
  return index.occurrences.filter((o) => o.symbol === symbol);
}

/** The block whose body (or parameter list) holds `offset`. */
export function blockAt(index: SymbolIndex, offset: number): BlockDecl | undefined {
  return [...index.scopes.blocks.keys()].find((b) => contains(b.span, offset));
}

/** The scope names are looked up in at `offset`. */
export function scopeAt(index: SymbolIndex, offset: number): Scope {
  const block = blockAt(index, offset);
  return (block && index.scopes.blocks.get(block)) ?? index.scopes.layers;
}

export function visibleSymbols(scope: Scope): SymbolInfo[] {
  const seen = new Map<string, SymbolInfo>();
  for (let s: Scope | undefined = scope; s; s = s.parent)
    for (const [name, info] of s.names) if (!seen.has(name)) seen.set(name, info);
  return [...seen.values()];
}
