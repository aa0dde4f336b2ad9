// AST → canonical source text: the seed of `alexc fmt`.
//
// Canonical form: 2-space indent, one statement per line, `name: value` arguments separated by `, `,
// a layer's inputs before its attributes, numbers spelled as written (`NumberValue.text`), binary
// operators spaced, and the fewest parentheses that keep the tree. The contract, held by test/grammar/print.test.ts:
//   parse(printSource(parse(x).ast)).ast equals parse(x).ast, spans aside, for every x without errors.
//
// Comments are placed by offset: each one is printed on its own line before the first statement
// that starts after it, or at the end of the line of the statement it follows on that line. One
// blank line between statements in the source is kept; more are collapsed.
//
// A recovered AST (one with syntax errors) still prints, with `<error>` for an `ErrorValue`, but the
// result does not parse: format only files without syntax errors.
import type * as ast from "./ast.ts";

const INDENT = "  ";

export function printSource(file: ast.SourceFile): string {
  const printer = new Printer(file.comments);
  file.items.forEach((item, i) => {
    if (i > 0) {
      printer.trailingComments(item.span.start.offset);
      printer.blankLine();
    }
    if (item.kind === "Network") printer.network(item);
    else printer.section(item);
  });
  printer.comments(Number.POSITIVE_INFINITY, 0);
  return printer.text();
}

// ---- values ------------------------------------------------------------------------------------------

/** Binding strength: operands that bind less tightly than their context need parentheses. */
function precedence(value: ast.Value): number {
  if (value.kind === "Binary") return value.op === "+" || value.op === "-" ? 1 : 2;
  if (value.kind === "Unary") return 3;
  return 4;
}

export function printValue(value: ast.Value): string {
  switch (value.kind) {
    case "Number":
      return value.text;
    case "String":
      return printString(value.value);
    case "Name":
      return value.name;
    case "Call":
      return `${value.callee.name}(${value.args.map(printValue).join(", ")})`;
    case "Tuple":
      return `(${value.items.map(printValue).join(", ")})`;
    case "List":
      return `[${value.items.map(printValue).join(", ")}]`;
    case "Binary": {
      const strength = precedence(value);
      // Operators are left-associative: `a - (b - c)` keeps its parentheses, `(a - b) - c` does not.
      const left = parenthesize(value.left, precedence(value.left) < strength);
      const right = parenthesize(value.right, precedence(value.right) <= strength);
      return `${left} ${value.op} ${right}`;
    }
    case "Unary":
      return `-${parenthesize(value.operand, precedence(value.operand) < 3)}`;
    case "Error":
      return "<error>";
  }
}

function parenthesize(value: ast.Value, needed: boolean): string {
  return needed ? `(${printValue(value)})` : printValue(value);
}

/** The inverse of to-ast.ts's decoding for every string the parser can produce. */
function printString(value: string): string {
  const escaped = value.replace(/[\\"\n\t]/g, (c) => (c === "\n" ? "\\n" : c === "\t" ? "\\t" : `\\${c}`));
  return `"${escaped}"`;
}

function printNamed(arg: { name: ast.Identifier; value: ast.Value }): string {
  return `${arg.name.name}: ${printValue(arg.value)}`;
}

function printLayer(layer: ast.LayerStmt): string {
  const args = [...layer.inputs.map(printValue), ...layer.attrs.map(printNamed)];
  return `${layer.name.name} = ${layer.op.name}(${args.join(", ")})`;
}

function printParam(param: ast.BlockParam): string {
  return param.default === undefined ? param.name.name : `${param.name.name} = ${printValue(param.default)}`;
}

function printItem(item: Exclude<ast.NetworkItem, ast.BlockDecl>): string {
  switch (item.kind) {
    case "Input":
      return `input ${item.name.name}: ${item.dtype.name}[${item.shape.map(printValue).join(", ")}]`;
    case "Property":
      return printNamed(item);
    case "Const":
      return `const ${item.name.name} = ${printValue(item.value)}`;
    case "Layer":
      return printLayer(item);
  }
}

// ---- statements and comments ---------------------------------------------------------------------

class Printer {
  private readonly lines: string[] = [];
  private readonly pending: ast.Comment[];
  private nextComment = 0;
  /** Source end of the last thing printed; undefined right after `{`, where no blank line belongs. */
  private lastSourceEnd: ast.Position | undefined;

  constructor(comments: readonly ast.Comment[]) {
    this.pending = [...comments].sort((a, b) => a.span.start.offset - b.span.start.offset);
  }

  text(): string {
    return this.lines.length === 0 ? "" : `${this.lines.join("\n")}\n`;
  }

  blankLine(): void {
    if (this.lines.length > 0 && this.lines[this.lines.length - 1] !== "") this.lines.push("");
  }

  network(network: ast.NetworkDecl): void {
    this.body(`network ${network.name.name}`, network.span, network.items, 0, (item, depth) => {
      if (item.kind === "Block") this.block(item, depth);
      else this.statement(printItem(item), item.span, depth);
    });
  }

  section(section: ast.SectionDecl): void {
    this.body(section.section, section.span, section.entries, 0, (entry, depth) =>
      this.statement(printNamed(entry), entry.span, depth),
    );
  }

  private block(block: ast.BlockDecl, depth: number): void {
    const header = `block ${block.name.name}(${block.params.map(printParam).join(", ")})`;
    this.body(header, block.span, block.body, depth, (layer, inner) =>
      this.statement(printLayer(layer), layer.span, inner),
    );
  }

  /** `header {`, the members one level deeper, `}`; `header {}` when there is nothing inside. */
  private body<T extends { span: ast.Span }>(
    header: string,
    span: ast.Span,
    members: readonly T[],
    depth: number,
    print: (member: T, depth: number) => void,
  ): void {
    this.comments(span.start.offset, depth);
    const end = span.end.offset;
    if (members.length === 0 && !this.hasCommentBefore(end)) {
      this.statement(`${header} {}`, span, depth);
      return;
    }
    this.keepBlankLine(span.start.line);
    this.emit(`${header} {`, depth, span.start);
    this.lastSourceEnd = undefined;
    for (const member of members) print(member, depth + 1);
    this.comments(end, depth + 1);
    this.emit("}", depth, span.end);
  }

  private statement(text: string, span: ast.Span, depth: number): void {
    this.comments(span.start.offset, depth);
    this.keepBlankLine(span.start.line);
    this.emit(text, depth, span.end);
  }

  /**
   * Prints the comments that start before `offset`: first those on the line where the last printed
   * statement ends, at the end of that line, then the rest each on its own line.
   */
  comments(offset: number, depth: number): void {
    this.trailingComments(offset);
    while (this.hasCommentBefore(offset)) {
      const comment = this.pending[this.nextComment++];
      this.keepBlankLine(comment.span.start.line);
      this.emit(comment.text.trimEnd(), depth, comment.span.end);
    }
  }

  /** Comments before `offset` on the line where the last printed statement ends stay on that line. */
  trailingComments(offset: number): void {
    const end = this.lastSourceEnd;
    while (end !== undefined && this.hasCommentBefore(offset)) {
      const { span, text } = this.pending[this.nextComment];
      if (span.start.line !== end.line || span.start.offset < end.offset) return;
      this.nextComment++;
      this.lines[this.lines.length - 1] += ` ${text.trimEnd()}`;
    }
  }

  private hasCommentBefore(offset: number): boolean {
    return (
      this.nextComment < this.pending.length && this.pending[this.nextComment].span.start.offset < offset
    );
  }

  private keepBlankLine(sourceLine: number): void {
    if (this.lastSourceEnd !== undefined && sourceLine > this.lastSourceEnd.line + 1) this.blankLine();
  }

  /** `sourceEnd`: where what is printed ends in the source, for blank lines and trailing comments. */
  private emit(text: string, depth: number, sourceEnd: ast.Position): void {
    this.lines.push(INDENT.repeat(depth) + text);
    this.lastSourceEnd = sourceEnd;
  }
}
