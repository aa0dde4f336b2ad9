// AST → canonical source text, the one printer behind `alexc fmt`, the Prettier plugin, `lint --fix`
// and the language server (all through grammar/format.ts).
//
// Canonical form: 2-space indent, one statement per line, `name: value` with `, ` between arguments,
// numbers spelled as written (`NumberValue.text`), binary operators spaced, the fewest parentheses
// that keep the tree, arguments in source order (formatting never reorders anything). A bracketed
// list that does not fit in PRINT_WIDTH columns puts one element per line, with a trailing comma
// where the grammar allows one (not in a value call such as `normal(…)`). Statements keep one blank
// line where the source has one or more; top-level sections are always one blank line apart.
//
// Layout is Prettier's document model (prettier/doc): each list is a `group`. The width is a constant,
// not an option, so every tool prints the same bytes (gofmt's rule: one canonical form).
//
// Comments are kept, in order, with their text's trailing whitespace removed. The printer walks the
// AST in source order and stops at break points: between statements, after an opening bracket,
// between list elements, before a closing bracket, after a binary operator or a unary `-`. At each it
// prints the comments that start before the next code: the first one at the end of the line if it
// shares its source line with the code just printed (a trailing comment), the rest on lines of their
// own. Comments in a statement's head (`conv1 # c` `= conv(`) move before the statement, and those
// in an argument's head (`filters: # c` `96`) before the argument. A comment in a list breaks it.
// After an opening bracket a comment always goes on its own line: the bracket's line may hold other
// brackets that break, so "trails the line" would not survive a second pass.
//
// The contract, held by test/grammar/print.test.ts and format.property.test.ts: for every x without
// syntax errors, printing gives text that parses to the same AST (spans aside) and the same comments,
// and prints to itself. A recovered AST prints `<error>` for an `ErrorValue`; that text does not parse.
import { builders, printer } from "prettier/doc";
import type * as ast from "./ast.ts";

type Doc = builders.Doc;
const { breakParent, group, hardline, ifBreak, indent, line, lineSuffix, softline } = builders;

/** Columns a line may use before a list breaks; comments may run past it. */
export const PRINT_WIDTH = 100;

export function printSource(file: ast.SourceFile): string {
  const doc = new DocPrinter(file.comments).file(file);
  return printer.printDocToString(doc, { printWidth: PRINT_WIDTH, tabWidth: 2, useTabs: false }).formatted;
}

// ---- pieces without comments -------------------------------------------------------------------------

/** Binding strength: operands that bind less tightly than their context need parentheses. */
function precedence(value: ast.Value): number {
  if (value.kind === "Binary") return value.op === "+" || value.op === "-" ? 1 : 2;
  if (value.kind === "Unary") return 3;
  return 4;
}

/** The inverse of to-ast.ts's decoding for every string the parser can produce. */
function printString(value: string): string {
  const escaped = value.replace(/[\\"\n\t]/g, (c) => (c === "\n" ? "\\n" : c === "\t" ? "\\t" : `\\${c}`));
  return `"${escaped}"`;
}

function commentText(comment: ast.Comment): string {
  return comment.text.trimEnd();
}

/** A trailing comment: printed when the line ends, so it never counts towards the width. */
function trailingDoc(comment: ast.Comment | undefined): Doc {
  return comment === undefined ? "" : [lineSuffix(` ${commentText(comment)}`), breakParent];
}

type Statement = ast.NetworkDecl | ast.SectionDecl | ast.NetworkItem | ast.NamedArg;

/** Comments before this offset in a statement's head are printed before the statement. */
function headEnd(statement: Statement): number {
  switch (statement.kind) {
    case "Network":
    case "Section":
    case "Block":
      return statement.name.span.end.offset;
    case "Input":
      return statement.dtype.span.end.offset;
    case "Layer":
      return statement.op.span.end.offset;
    case "Property":
    case "Const":
    case "NamedArg":
      return statement.value.span.start.offset;
  }
}

type Element = ast.Value | ast.NamedArg | ast.BlockParam;

/** Comments before this offset in a list element's head are printed before the element. */
function elementHeadEnd(element: Element): number {
  if (element.kind === "NamedArg") return element.value.span.start.offset;
  if (element.kind === "BlockParam" && element.default !== undefined)
    return element.default.span.start.offset;
  return element.span.start.offset;
}

interface ListStyle {
  open: string;
  close: string;
  /** Whether the grammar accepts a comma before the closing bracket. */
  trailingComma: boolean;
}
const parenthesesList: ListStyle = { open: "(", close: ")", trailingComma: true };
const callArguments: ListStyle = { open: "(", close: ")", trailingComma: false };
const bracketList: ListStyle = { open: "[", close: "]", trailingComma: true };

// ---- the printer -----------------------------------------------------------------------------------------

interface Taken {
  /** The comment that shares its source line with the code printed last. */
  trailing?: ast.Comment;
  own: ast.Comment[];
}

/** Builds the document in source order, so handing out comments by offset keeps them in order. */
class DocPrinter {
  private readonly comments: ast.Comment[];
  private next = 0;
  /** Where the code printed last ends in the source: a comment on that line trails it. */
  private codeEnd: ast.Position | undefined;

  constructor(comments: readonly ast.Comment[]) {
    this.comments = [...comments].sort((a, b) => a.span.start.offset - b.span.start.offset);
  }

  file(file: ast.SourceFile): Doc {
    const lines = this.statements(file.items, Number.POSITIVE_INFINITY, true);
    return lines.length === 0 ? "" : [lines, hardline];
  }

  /** The comments that start before `offset`; `mayTrail`: the first may trail the code printed last. */
  private take(offset: number, mayTrail: boolean): Taken {
    const taken: Taken = { own: [] };
    for (; this.next < this.comments.length; this.next++) {
      const comment = this.comments[this.next];
      if (comment.span.start.offset >= offset) break;
      const trails =
        mayTrail &&
        taken.trailing === undefined &&
        taken.own.length === 0 &&
        comment.span.start.line === this.codeEnd?.line;
      if (trails) taken.trailing = comment;
      else taken.own.push(comment);
    }
    return taken;
  }

  // ---- statements ----

  /**
   * One statement per line, comments between them. Blank lines: one where the source has any,
   * none right after `{`; at the top level (`top`) sections are always one blank line apart.
   */
  private statements(members: readonly Statement[], end: number, top: boolean): Doc[] {
    const out: Doc[] = [];
    let lastLine: number | undefined; // the source line where the last printed line ends
    const put = (doc: Doc, startLine: number, endLine: number, forceBlank: boolean) => {
      if (out.length > 0) out.push(hardline);
      const blank = forceBlank || (lastLine !== undefined && startLine > lastLine + 1);
      if (out.length > 0 && blank) out.push(hardline);
      out.push(doc);
      lastLine = endLine;
    };
    const comments = (offset: number, mayTrail: boolean, forceBlank: boolean): boolean => {
      const { trailing, own } = this.take(offset, mayTrail);
      if (trailing !== undefined) out.push(trailingDoc(trailing));
      own.forEach((c, i) => put(commentText(c), c.span.start.line, c.span.start.line, forceBlank && i === 0));
      return own.length > 0;
    };
    members.forEach((member, i) => {
      const separate = top && i > 0;
      const commented = comments(headEnd(member), i > 0, separate);
      put(this.statement(member), member.span.start.line, member.span.end.line, separate && !commented);
      this.codeEnd = member.span.end;
    });
    comments(end, members.length > 0, false);
    return out;
  }

  private statement(statement: Statement): Doc {
    switch (statement.kind) {
      case "Network":
        return this.body(["network ", statement.name.name], statement.items, statement.span);
      case "Section":
        return this.body(statement.section, statement.entries, statement.span);
      case "Block": {
        const params = this.list(statement.params, (p) => this.param(p), parenthesesList, undefined);
        return this.body(["block ", statement.name.name, params], statement.body, statement.span);
      }
      case "Input": {
        const shape = this.list(statement.shape, (v) => this.value(v), bracketList, closer(statement.span));
        return ["input ", statement.name.name, ": ", statement.dtype.name, shape];
      }
      case "Const":
        return ["const ", statement.name.name, " = ", this.value(statement.value)];
      case "Property":
      case "NamedArg":
        return this.named(statement);
      case "Layer": {
        // Inputs and attributes are separate in the AST; the source order is kept.
        const args = [...statement.inputs, ...statement.attrs].sort(
          (a, b) => a.span.start.offset - b.span.start.offset,
        );
        const print = (arg: ast.Value | ast.NamedArg) =>
          arg.kind === "NamedArg" ? this.named(arg) : this.value(arg);
        return [
          statement.name.name,
          " = ",
          statement.op.name,
          this.list(args, print, parenthesesList, closer(statement.span)),
        ];
      }
    }
  }

  /** `header {`, the members one level deeper, `}`; `header {}` when nothing is inside. */
  private body(header: Doc, members: readonly Statement[], span: ast.Span): Doc {
    const lines = this.statements(members, span.end.offset, false);
    return lines.length === 0 ? [header, " {}"] : [header, " {", indent([hardline, lines]), hardline, "}"];
  }

  private named(arg: { name: ast.Identifier; value: ast.Value }): Doc {
    return [arg.name.name, ": ", this.value(arg.value)];
  }

  private param(param: ast.BlockParam): Doc {
    return param.default === undefined
      ? param.name.name
      : [param.name.name, " = ", this.value(param.default)];
  }

  // ---- lists ----

  /**
   * `open element, element close` on one line if it fits, else one element per line. `closeAt`: the
   * offset of the closing bracket, for comments before it; undefined where the AST does not know it
   * (a block's `)`), and those comments go to the next break point.
   */
  private list<T extends Element>(
    items: readonly T[],
    print: (item: T) => Doc,
    style: ListStyle,
    closeAt: number | undefined,
  ): Doc {
    const parts: Doc[] = [];
    items.forEach((item, i) => {
      const { trailing, own } = this.take(elementHeadEnd(item), i > 0);
      if (i > 0) parts.push(",", trailingDoc(trailing), line);
      for (const comment of own) parts.push(commentText(comment), hardline);
      parts.push(print(item));
      this.codeEnd = item.span.end;
    });
    if (items.length > 0 && style.trailingComma) parts.push(ifBreak(","));
    if (closeAt !== undefined) {
      const { trailing, own } = this.take(closeAt, items.length > 0);
      parts.push(trailingDoc(trailing));
      own.forEach((comment, i) =>
        parts.push(items.length > 0 || i > 0 ? hardline : "", commentText(comment)),
      );
      if (own.length > 0) parts.push(breakParent);
    }
    if (parts.length === 0) return [style.open, style.close];
    return group([style.open, indent([softline, parts]), softline, style.close]);
  }

  // ---- values ----

  private value(value: ast.Value): Doc {
    switch (value.kind) {
      case "Number":
        return value.text;
      case "String":
        return printString(value.value);
      case "Name":
        return value.name;
      case "Call":
        return [
          value.callee.name,
          this.list(value.args, (v) => this.value(v), callArguments, closer(value.span)),
        ];
      case "Tuple":
        return this.list(value.items, (v) => this.value(v), parenthesesList, closer(value.span));
      case "List":
        return this.list(value.items, (v) => this.value(v), bracketList, closer(value.span));
      case "Binary": {
        const strength = precedence(value);
        // Operators are left-associative: `a - (b - c)` keeps its parentheses, `(a - b) - c` does not.
        const left = this.operand(value.left, precedence(value.left) < strength);
        this.codeEnd = value.left.span.end;
        const gap = this.gap(value.right);
        const right = this.operand(value.right, precedence(value.right) <= strength);
        return gap === undefined
          ? [left, " ", value.op, " ", right]
          : [left, " ", value.op, indent([gap, right])];
      }
      case "Unary": {
        this.codeEnd = value.span.start; // the `-`
        const gap = this.gap(value.operand);
        const operand = this.operand(value.operand, precedence(value.operand) < 3);
        return gap === undefined ? ["-", operand] : ["-", indent([gap, operand])];
      }
      case "Error":
        return "<error>";
    }
  }

  private operand(value: ast.Value, parenthesized: boolean): Doc {
    return parenthesized ? ["(", this.value(value), ")"] : this.value(value);
  }

  /** Comments inside an expression, before `next`: they end the line, and `next` continues indented. */
  private gap(next: ast.Value): Doc | undefined {
    const { trailing, own } = this.take(next.span.start.offset, true);
    if (trailing === undefined && own.length === 0) return undefined;
    return [trailingDoc(trailing), own.map((comment) => [hardline, commentText(comment)]), hardline];
  }
}

/** The offset of a node's closing bracket, its last character. */
function closer(span: ast.Span): number {
  return span.end.offset - 1;
}
