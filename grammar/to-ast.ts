// CST → AST (grammar/ast.ts). One visitor method per parser rule; `validateVisitor()` fails at
// start-up if a rule is added without one.
//
// Error recovery shapes everything here: a recovered CST node may lack any child, and a token may be
// one Chevrotain inserted (`isInsertedInRecovery`, offsets -1). So every child is read as optional,
// and a missing piece becomes
//   - a missing value:      an `ErrorValue`, zero-width, just after the last real token before it;
//   - a missing identifier: an `Identifier` with the empty name (as TypeScript's parser does for
//                           missing identifiers), so the statement and its other parts survive and
//                           later stages see no cascade of "unknown name" errors.
// Nothing here throws.
import type { CstNode, IToken } from "chevrotain";
import { diag, type Diagnostic } from "../compiler/diagnostics.ts";
import type * as ast from "./ast.ts";
import { after, cover, emptySpan, firstToken, isReal, nodeSpan, tokenSpan } from "./cst-positions.ts";
import { bodyExpectations, describeFound, parser } from "./parser.ts";
import { StringLit } from "./tokens.ts";

// ---- CST shapes -------------------------------------------------------------------------------------
// Written by hand rather than generated (`generateCstDts`): generated types declare mandatory children
// as always present, which recovery breaks. Keys are token names, rule names or LABELs (parser.ts).

/** A rule's children: token arrays under `Token` keys, node arrays under `Node` keys, any missing. */
type Children<Token extends string, Node extends string = never> = Partial<
  Record<Token, IToken[]> & Record<Node, CstNode[]>
>;
type Nodes = CstNode[] | undefined;

type FileCtx = Children<never, "network" | "section">;
type NetworkCtx = Children<"Network" | "name", "item" | "stray">;
type ItemCtx = Children<never, "inputDecl" | "constDecl" | "block" | "namedValue" | "layer">;
type InputCtx = Children<"Input" | "name" | "Colon" | "dtype" | "LBracket" | "Comma", "value">;
type NameValueCtx = Children<"Const" | "name" | "Colon" | "Equals", "value">; // constDecl, namedValue, param
type LayerCtx = Children<"name" | "Equals" | "op" | "Comma", "arg">;
type ArgCtx = Children<never, "namedValue" | "value">;
type BlockCtx = Children<"Block" | "name" | "Comma", "param" | "layer" | "stray">;
type SectionCtx = Children<"keyword", "namedValue" | "stray">;
type OperatorChainCtx = Children<"operators", "operands">; // value, term
type UnaryCtx = Children<"Minus", "unary" | "primary">;
type PrimaryCtx = Children<"NumberLit" | "StringLiteral", "nameOrCall" | "parenthesized" | "list">;
type NameOrCallCtx = Children<"name" | "LParen" | "Comma", "args">;
type ItemsCtx = Children<"Comma", "items">; // parenthesized, list

// ---- leaves ------------------------------------------------------------------------------------------

function identifier(token: IToken | undefined, at: ast.Position): ast.Identifier {
  if (!isReal(token)) return { kind: "Identifier", name: "", span: emptySpan(at) };
  return { kind: "Identifier", name: token.image, span: tokenSpan(token) };
}

/** Decodes `\"`, `\\`, `\n`, `\t`; any other escaped character stands for itself, as in JavaScript. */
function decodeString(token: IToken): string {
  const closed = token.tokenType === StringLit;
  const body = token.image.slice(1, closed ? -1 : undefined);
  return body.replace(/\\([^]?)/g, (_, c: string) =>
    c === "n" ? "\n" : c === "t" ? "\t" : c === "" ? "\\" : c,
  );
}

// ---- the visitor ---------------------------------------------------------------------------------------

/**
 * What a rule method gets besides its children: `span`, the node's extent (zero-width at `at` if it
 * holds no real token), and `at`, where to place anything missing from it: just after the last real
 * token before it.
 */
interface Site {
  at: ast.Position;
  span: ast.Span;
}

/**
 * Deepest value the builder makes. Brackets and `-` signs are limited before parsing (parse.ts,
 * MAX_NESTING); operator chains are flat in the CST and limited here. The checker, the linter, the
 * printer and JSON all walk values recursively, so a bound on depth is a bound on their stacks.
 */
export const MAX_VALUE_DEPTH = 256;

const BaseVisitor = parser.getBaseCstVisitorConstructor<Site, unknown>();

class AstBuilder extends BaseVisitor {
  /** AX1004 for numbers that overflow to ±Infinity and AX1001 for stray tokens in bodies. */
  readonly diagnostics: Diagnostic[] = [];

  constructor() {
    super();
    this.validateVisitor();
  }

  visitNode(node: CstNode, at: ast.Position): unknown {
    return this.visit(node, { at, span: nodeSpan(node, at) });
  }

  private valueOf(nodes: Nodes, at: ast.Position): ast.Value {
    const node = nodes?.[0];
    return node === undefined
      ? { kind: "Error", span: emptySpan(at) }
      : (this.visitNode(node, at) as ast.Value);
  }

  private valuesOf(nodes: Nodes, at: ast.Position): ast.Value[] {
    return (nodes ?? []).map((node) => this.visitNode(node, at) as ast.Value);
  }

  private namedOf(nodes: Nodes, at: ast.Position): ast.NamedArg[] {
    return (nodes ?? []).map((node) => this.visitNode(node, at) as ast.NamedArg);
  }

  file(ctx: FileCtx, { at }: Site): (ast.NetworkDecl | ast.SectionDecl)[] {
    const items = [...(ctx.network ?? []), ...(ctx.section ?? [])].map(
      (node) => this.visitNode(node, at) as ast.NetworkDecl | ast.SectionDecl,
    );
    // CST children are grouped by rule name; restore source order.
    return items.sort((a, b) => a.span.start.offset - b.span.start.offset);
  }

  network(ctx: NetworkCtx, { span }: Site): ast.NetworkDecl {
    const name = identifier(ctx.name?.[0], after(span.start, ctx.Network?.[0]));
    const items = (ctx.item ?? []).flatMap((node) => {
      const item = this.visitNode(node, span.end) as ast.NetworkItem | undefined;
      return item === undefined ? [] : [item];
    });
    this.reportStrays(ctx.stray, items, bodyExpectations.network);
    return { kind: "Network", name, items, span };
  }

  item(ctx: ItemCtx, { at }: Site): ast.NetworkItem | undefined {
    const node = ctx.inputDecl?.[0] ?? ctx.constDecl?.[0] ?? ctx.block?.[0] ?? ctx.layer?.[0];
    if (node !== undefined) return this.visitNode(node, at) as ast.NetworkItem;
    const named = ctx.namedValue?.[0];
    if (named === undefined) return undefined;
    const { name, value, span } = this.visitNode(named, at) as ast.NamedArg;
    return { kind: "Property", name, value, span };
  }

  inputDecl(ctx: InputCtx, { span }: Site): ast.InputDecl {
    const name = identifier(ctx.name?.[0], after(span.start, ctx.Input?.[0]));
    const dtype = identifier(ctx.dtype?.[0], after(span.start, ctx.name?.[0], ctx.Colon?.[0]));
    const shape = this.valuesOf(ctx.value, after(span.end, ctx.LBracket?.[0]));
    this.reportMissingCommas(ctx.value, ctx.Comma, "`,` or `]`");
    return { kind: "Input", name, dtype, shape, span };
  }

  constDecl(ctx: NameValueCtx, { span }: Site): ast.ConstDecl {
    const name = identifier(ctx.name?.[0], after(span.start, ctx.Const?.[0]));
    const value = this.valueOf(ctx.value, after(span.end, ctx.name?.[0], ctx.Equals?.[0]));
    return { kind: "Const", name, value, span };
  }

  namedValue(ctx: NameValueCtx, { span }: Site): ast.NamedArg {
    const name = identifier(ctx.name?.[0], span.start);
    const value = this.valueOf(ctx.value, after(span.end, ctx.name?.[0], ctx.Colon?.[0]));
    return { kind: "NamedArg", name, value, span };
  }

  layer(ctx: LayerCtx, { span }: Site): ast.LayerStmt {
    const name = identifier(ctx.name?.[0], span.start);
    const op = identifier(ctx.op?.[0], after(span.end, ctx.name?.[0], ctx.Equals?.[0]));
    const inputs: ast.Value[] = [];
    const attrs: ast.NamedArg[] = [];
    this.reportMissingCommas(ctx.arg, ctx.Comma, "`,` or `)`");
    for (const node of ctx.arg ?? []) {
      const arg = this.visitNode(node, span.end) as ast.Value | ast.NamedArg;
      if (arg.kind === "NamedArg") attrs.push(arg);
      else inputs.push(arg);
    }
    return { kind: "Layer", name, op, inputs, attrs, span };
  }

  arg(ctx: ArgCtx, { at }: Site): ast.Value | ast.NamedArg {
    const named = ctx.namedValue?.[0];
    return named !== undefined ? (this.visitNode(named, at) as ast.NamedArg) : this.valueOf(ctx.value, at);
  }

  block(ctx: BlockCtx, { span }: Site): ast.BlockDecl {
    const name = identifier(ctx.name?.[0], after(span.start, ctx.Block?.[0]));
    const params = (ctx.param ?? []).map((node) => this.visitNode(node, span.end) as ast.BlockParam);
    this.reportMissingCommas(ctx.param, ctx.Comma, "`,` or `)`");
    const body = (ctx.layer ?? []).map((node) => this.visitNode(node, span.end) as ast.LayerStmt);
    this.reportStrays(ctx.stray, body, bodyExpectations.block);
    return { kind: "Block", name, params, body, span };
  }

  param(ctx: NameValueCtx, { span }: Site): ast.BlockParam {
    const name = identifier(ctx.name?.[0], span.start);
    if (ctx.Equals === undefined) return { kind: "BlockParam", name, span };
    return {
      kind: "BlockParam",
      name,
      default: this.valueOf(ctx.value, after(span.end, ctx.Equals[0])),
      span,
    };
  }

  section(ctx: SectionCtx, { span }: Site): ast.SectionDecl {
    const name = identifier(ctx.keyword?.[0], span.start);
    // The rule only starts on `train` or `data`, so the keyword token is always real.
    const section = name.name === "data" ? "data" : "train";
    const entries = this.namedOf(ctx.namedValue, span.end);
    this.reportStrays(ctx.stray, entries, bodyExpectations.section);
    return { kind: "Section", section, name, entries, span };
  }

  /** One AX1001 per run of stray tokens in a body: a run ends where a statement starts. */
  private reportStrays(
    nodes: CstNode[] | undefined,
    statements: readonly { span: ast.Span }[],
    expected: string,
  ): void {
    // A `stray` node holds exactly one token, under its token type's name.
    const strays = (nodes ?? []).flatMap((node) => Object.values(node.children).flat() as IToken[]);
    const starts = statements.map((s) => s.span.start.offset).sort((a, b) => a - b);
    let next = 0; // the first statement that starts after the previous stray token
    let previous = -1; // offset of the previous stray token
    for (const token of strays) {
      let statementBetween = false;
      while (next < starts.length && starts[next] < token.startOffset) {
        statementBetween ||= starts[next] > previous;
        next++;
      }
      if (previous < 0 || statementBetween) {
        this.diagnostics.push(diag("AX1001", { expected, found: describeFound(token) }, tokenSpan(token)));
      }
      previous = token.startOffset;
    }
  }

  /** Lists are parsed with optional commas (parser.ts); each missing one is an AX1001 here. */
  private reportMissingCommas(elements: Nodes, commas: IToken[] | undefined, expected: string): void {
    const commaOffsets = (commas ?? []).map((comma) => comma.startOffset);
    let next = 0; // the first comma after the previous element
    let previousEnd = -1;
    for (const node of elements ?? []) {
      const { startOffset = -1, endOffset = -1 } = node.location ?? {};
      if (startOffset < 0) continue; // an element recovery left empty
      while (next < commaOffsets.length && commaOffsets[next] < previousEnd) next++;
      const separated = previousEnd < 0 || (next < commaOffsets.length && commaOffsets[next] < startOffset);
      const first = separated ? undefined : firstToken(node);
      if (first !== undefined) {
        this.diagnostics.push(diag("AX1001", { expected, found: describeFound(first) }, tokenSpan(first)));
      }
      previousEnd = endOffset + 1;
    }
  }

  /** Read by `reportStrays` from the body's CST; never visited. */
  stray(): undefined {
    return undefined;
  }

  value(ctx: OperatorChainCtx, site: Site): ast.Value {
    return this.operatorChain(ctx, site);
  }

  term(ctx: OperatorChainCtx, site: Site): ast.Value {
    return this.operatorChain(ctx, site);
  }

  /**
   * Left-associative fold of `a op b op c`; a recovered chain may have fewer operands than needed.
   * The CST holds a chain flat, but its AST is as deep as it is long, and every later stage walks
   * values recursively: a chain that would nest deeper than MAX_VALUE_DEPTH is reported at the
   * operator that crosses the limit and becomes one `ErrorValue` over the whole chain.
   */
  private operatorChain(ctx: OperatorChainCtx, { at, span }: Site): ast.Value {
    const operands = ctx.operands ?? [];
    let left = this.valueOf(operands, at);
    let depth = this.depthOf(left);
    const operators = ctx.operators ?? [];
    for (const [i, operator] of operators.entries()) {
      const next = operands[i + 1];
      const right = this.valueOf(next && [next], after(left.span.end, operator));
      depth = 1 + Math.max(depth, this.depthOf(right));
      if (depth > MAX_VALUE_DEPTH) {
        const expected = `at most ${MAX_VALUE_DEPTH} levels of operators and brackets in one value`;
        this.diagnostics.push(
          diag("AX1001", { expected, found: describeFound(operator) }, tokenSpan(operator)),
        );
        return { kind: "Error", span: cover(left.span, span) };
      }
      const op = operator.image as ast.BinaryValue["op"];
      left = this.nested({ kind: "Binary", op, left, right, span: cover(left.span, right.span) }, depth);
    }
    return left;
  }

  /** Depth of each value built with children (absent: a leaf, depth 1), for MAX_VALUE_DEPTH. */
  private readonly depths = new WeakMap<ast.Value, number>();

  private depthOf(value: ast.Value): number {
    return this.depths.get(value) ?? 1;
  }

  private nested<V extends ast.Value>(value: V, depth: number): V {
    this.depths.set(value, depth);
    return value;
  }

  /** One more than the deepest of `children`. */
  private below(children: readonly ast.Value[]): number {
    return 1 + children.reduce((deepest, child) => Math.max(deepest, this.depthOf(child)), 0);
  }

  unary(ctx: UnaryCtx, { at }: Site): ast.Value {
    const minus = ctx.Minus?.[0];
    if (minus === undefined) return this.valueOf(ctx.primary, at);
    const operand = this.valueOf(ctx.unary, after(at, minus));
    const start = isReal(minus) ? tokenSpan(minus) : operand.span;
    return this.nested(
      { kind: "Unary", op: "-", operand, span: cover(start, operand.span) },
      this.below([operand]),
    );
  }

  primary(ctx: PrimaryCtx, { at }: Site): ast.Value {
    const number = ctx.NumberLit?.[0];
    if (isReal(number)) return this.number(number);
    const string = ctx.StringLiteral?.[0];
    if (isReal(string)) return { kind: "String", value: decodeString(string), span: tokenSpan(string) };
    return this.valueOf(ctx.nameOrCall ?? ctx.parenthesized ?? ctx.list, at);
  }

  private number(token: IToken): ast.NumberValue | ast.ErrorValue {
    const span = tokenSpan(token);
    const value = Number(token.image);
    if (Number.isFinite(value)) return { kind: "Number", value, text: token.image, span };
    // The AST stays JSON-serialisable and later stages never see an infinite literal.
    this.diagnostics.push(diag("AX1004", { text: `\`${token.image}\`` }, span));
    return { kind: "Error", span };
  }

  nameOrCall(ctx: NameOrCallCtx, { span }: Site): ast.Value {
    const callee = identifier(ctx.name?.[0], span.start);
    if (ctx.LParen === undefined) return { kind: "Name", name: callee.name, span };
    this.reportMissingCommas(ctx.args, ctx.Comma, "`,` or `)`");
    const args = this.valuesOf(ctx.args, after(span.end, ctx.LParen[0]));
    return this.nested({ kind: "Call", callee, args, span }, this.below(args));
  }

  parenthesized(ctx: ItemsCtx, { span }: Site): ast.Value {
    const items = this.valuesOf(ctx.items, span.end);
    // `(v)` is grouping; a tuple has two or more values (docs/language.md). Anything else is a
    // recovered `(`, `(v,` or similar, already reported.
    if (items.length === 1 && ctx.Comma === undefined) return items[0];
    return items.length >= 2
      ? this.nested({ kind: "Tuple", items, span }, this.below(items))
      : { kind: "Error", span };
  }

  list(ctx: ItemsCtx, { span }: Site): ast.ListValue {
    this.reportMissingCommas(ctx.items, ctx.Comma, "`,` or `]`");
    const items = this.valuesOf(ctx.items, span.end);
    return this.nested({ kind: "List", items, span }, this.below(items));
  }
}

const builder = new AstBuilder();

/**
 * Builds the file's top-level items from the `file` rule's CST. `end` is the position of the end of
 * the text, used for anything missing at the very end.
 */
export function buildItems(
  cst: CstNode,
  end: ast.Position,
): {
  items: (ast.NetworkDecl | ast.SectionDecl)[];
  diagnostics: Diagnostic[];
} {
  builder.diagnostics.length = 0;
  const items = builder.visitNode(cst, end) as (ast.NetworkDecl | ast.SectionDecl)[] | undefined;
  return { items: items ?? [], diagnostics: [...builder.diagnostics] };
}
