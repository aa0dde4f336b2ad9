// fast-check generators for the `.net` language, shared by the printer and formatter tests: ASTs
// (spans left at zero), and source texts for an AST laid out at random — any legal spacing, line
// breaks, comments between any two tokens, redundant parentheses and optional commas.
import fc from "fast-check";
import type * as ast from "../../grammar/ast.ts";

const keywords = new Set(["network", "input", "const", "block", "train", "data"]);
const span: ast.Span = { start: { offset: 0, line: 1, column: 1 }, end: { offset: 0, line: 1, column: 1 } };

/** The AST without spans: what "equal modulo spans" compares. */
export function stripSpans(node: unknown): unknown {
  return JSON.parse(JSON.stringify(node, (key, value) => (key === "span" ? undefined : value)));
}

const name = fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_]{0,7}$/).filter((n) => !keywords.has(n));
const identifier = name.map((n): ast.Identifier => ({ kind: "Identifier", name: n, span }));

const numberText = fc
  .tuple(
    fc.oneof(
      fc.stringMatching(/^\d{1,5}$/),
      fc.stringMatching(/^\d{1,3}\.\d{1,3}$/),
      fc.stringMatching(/^\.\d{1,3}$/),
    ),
    fc.oneof(fc.constant(""), fc.stringMatching(/^[eE][+-]?\d{1,2}$/)),
  )
  .map(([mantissa, exponent]) => mantissa + exponent);

/** Strings as the lexer can spell them: any characters but raw line breaks (escaped `\n` is fine). */
const stringValue = fc.string({ unit: "binary", maxLength: 12 }).filter((s) => !s.includes("\r"));

export const { value } = fc.letrec<{ value: ast.Value }>((tie) => ({
  value: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    numberText.map((text): ast.Value => ({ kind: "Number", value: Number(text), text, span })),
    stringValue.map((v): ast.Value => ({ kind: "String", value: v, span })),
    name.map((n): ast.Value => ({ kind: "Name", name: n, span })),
    fc
      .record({ callee: identifier, args: fc.array(tie("value"), { maxLength: 3 }) })
      .map((c): ast.Value => ({ kind: "Call", ...c, span })),
    fc
      .array(tie("value"), { minLength: 2, maxLength: 3 })
      .map((items): ast.Value => ({ kind: "Tuple", items, span })),
    fc.array(tie("value"), { maxLength: 3 }).map((items): ast.Value => ({ kind: "List", items, span })),
    fc
      .record({ op: fc.constantFrom("+", "-", "*", "/" as const), left: tie("value"), right: tie("value") })
      .map((b): ast.Value => ({ kind: "Binary", ...b, span })),
    tie("value").map((operand): ast.Value => ({ kind: "Unary", op: "-", operand, span })),
  ),
}));

const namedArg = fc
  .record({ name: identifier, value })
  .map((a): ast.NamedArg => ({ kind: "NamedArg", ...a, span }));

const layer = fc
  .record({
    name: identifier,
    op: identifier,
    inputs: fc.array(value, { maxLength: 2 }),
    attrs: fc.array(namedArg, { maxLength: 3 }),
  })
  .map((l): ast.LayerStmt => ({ kind: "Layer", ...l, span }));

const param = fc
  .record({ name: identifier, default: fc.option(value, { nil: undefined }) })
  .map((p): ast.BlockParam =>
    p.default === undefined ? { kind: "BlockParam", name: p.name, span } : { kind: "BlockParam", ...p, span },
  );

const item: fc.Arbitrary<ast.NetworkItem> = fc.oneof(
  fc
    .record({ name: identifier, dtype: identifier, shape: fc.array(value, { minLength: 1, maxLength: 3 }) })
    .map((i): ast.NetworkItem => ({ kind: "Input", ...i, span })),
  namedArg.map((a): ast.NetworkItem => ({ kind: "Property", name: a.name, value: a.value, span })),
  fc.record({ name: identifier, value }).map((c): ast.NetworkItem => ({ kind: "Const", ...c, span })),
  fc
    .record({
      name: identifier,
      params: fc.array(param, { maxLength: 3 }),
      body: fc.array(layer, { maxLength: 3 }),
    })
    .map((b): ast.NetworkItem => ({ kind: "Block", ...b, span })),
  layer,
);

const topLevel: fc.Arbitrary<ast.NetworkDecl | ast.SectionDecl> = fc.oneof(
  fc
    .record({ name: identifier, items: fc.array(item, { maxLength: 6 }) })
    .map((n): ast.NetworkDecl => ({ kind: "Network", ...n, span })),
  fc
    .record({
      section: fc.constantFrom("train", "data" as const),
      entries: fc.array(namedArg, { maxLength: 3 }),
    })
    .map((s): ast.SectionDecl => ({
      kind: "Section",
      ...s,
      name: { kind: "Identifier", name: s.section, span },
      span,
    })),
);

/** A file without comments; spans are all zero. */
export const sourceFile = fc
  .array(topLevel, { maxLength: 3 })
  .map((items): ast.SourceFile => ({ kind: "SourceFile", items, comments: [], span }));

// ---- random layout ---------------------------------------------------------------------------------------

/** Comment bodies: any characters but line breaks, sometimes with trailing whitespace. */
export const commentBody = fc
  .oneof(
    fc.string({ unit: "binary", maxLength: 10 }),
    fc.string({ unit: fc.constantFrom(" ", "\t", "#", "/", "a", "(", ",", "\u2028"), maxLength: 8 }),
  )
  .map((s) => s.replace(/[\r\n]/g, ""));

/**
 * What may stand between two tokens. `C` is replaced by a comment, which is always preceded by a
 * space (`/` then `// c` would lex as one comment) and followed by a line break.
 */
const separators = [
  " ",
  "",
  "  ",
  "\t",
  "\n",
  "\r\n",
  "\r",
  "\n\n\n",
  " \f\v\u00a0",
  "\n\t  ",
  " C",
  "\nC",
  " C\n\nC",
];

/** Choices for a layout, consumed in order and reused cyclically. */
export const layoutChoices = fc.array(fc.nat({ max: 9999 }), { minLength: 1, maxLength: 300 });

export class Layout {
  private next = 0;
  private readonly parts: string[] = [];
  /** The comments written, in order. */
  readonly comments: string[] = [];

  private readonly choices: readonly number[];
  private readonly commentBodies: readonly string[];

  constructor(choices: readonly number[], commentBodies: readonly string[]) {
    this.choices = choices;
    this.commentBodies = commentBodies;
  }

  pick(n: number): number {
    return this.choices[this.next++ % this.choices.length] % n;
  }

  /** Appends a token after a random separator; tokens that would merge are kept apart. */
  token(text: string): void {
    const previous = this.parts.at(-1) ?? "";
    let separator = separators[this.pick(separators.length)];
    if (separator === "" && /[\w.]$/.test(previous) && /^[\w.]/.test(text)) separator = " ";
    this.parts.push(
      separator.replace(/C/g, () => this.comment()),
      text,
    );
  }

  /** A comment token found in existing source, kept as it is. */
  existingComment(text: string): void {
    this.comments.push(text);
    this.parts.push(" ", text, "\n");
  }

  private comment(): string {
    const text = `${this.pick(2) === 0 ? "#" : "//"}${this.commentBodies[this.pick(this.commentBodies.length)]}`;
    this.comments.push(text);
    return `${text}\n`;
  }

  text(): string {
    // A final separator, so that comments can also end the file.
    return `${this.parts.join("")}${separators[this.pick(separators.length)].replace(/C/g, () => this.comment())}`;
  }
}

function precedence(value: ast.Value): number {
  if (value.kind === "Binary") return value.op === "+" || value.op === "-" ? 1 : 2;
  if (value.kind === "Unary") return 3;
  return 4;
}

function stringToken(value: string): string {
  return `"${value.replace(/[\\"\n\t]/g, (c) => (c === "\n" ? "\\n" : c === "\t" ? "\\t" : `\\${c}`))}"`;
}

/** Writes `file` with a random layout; the text parses back to `file` (spans and comments aside). */
export function layOut(file: ast.SourceFile, out: Layout): void {
  const t = (text: string) => out.token(text);
  const list = <T>(
    open: string,
    items: readonly T[],
    write: (item: T) => void,
    close: string,
    trailing: boolean,
  ) => {
    t(open);
    items.forEach((item, i) => {
      if (i > 0) t(",");
      write(item);
    });
    if (trailing && items.length > 0 && out.pick(3) === 0) t(",");
    t(close);
  };
  const named = (arg: { name: ast.Identifier; value: ast.Value }) => {
    t(arg.name.name);
    t(":");
    writeValue(arg.value);
  };
  const operand = (v: ast.Value, needed: boolean) => {
    const parenthesized = needed || out.pick(6) === 0;
    if (parenthesized) t("(");
    writeValue(v);
    if (parenthesized) t(")");
  };
  const writeValue = (v: ast.Value): void => {
    switch (v.kind) {
      case "Number":
        return t(v.text);
      case "String":
        return t(stringToken(v.value));
      case "Name":
        return t(v.name);
      case "Call":
        t(v.callee.name);
        return list("(", v.args, writeValue, ")", false);
      case "Tuple":
        return list("(", v.items, writeValue, ")", true);
      case "List":
        return list("[", v.items, writeValue, "]", true);
      case "Binary":
        operand(v.left, precedence(v.left) < precedence(v));
        t(v.op);
        return operand(v.right, precedence(v.right) <= precedence(v));
      case "Unary":
        t("-");
        return operand(v.operand, precedence(v.operand) < 3);
      case "Error":
        throw new Error("no error values in generated files");
    }
  };
  const layer = (l: ast.LayerStmt) => {
    t(l.name.name);
    t("=");
    t(l.op.name);
    // Inputs and attributes interleaved at random: the AST keeps each group's order only.
    const args: (ast.Value | ast.NamedArg)[] = [];
    let i = 0;
    let j = 0;
    while (i < l.inputs.length || j < l.attrs.length) {
      const takeInput = j >= l.attrs.length || (i < l.inputs.length && out.pick(2) === 0);
      args.push(takeInput ? l.inputs[i++] : l.attrs[j++]);
    }
    list("(", args, (a) => (a.kind === "NamedArg" ? named(a) : writeValue(a)), ")", true);
  };
  const item = (it: ast.NetworkItem) => {
    switch (it.kind) {
      case "Input":
        t("input");
        t(it.name.name);
        t(":");
        t(it.dtype.name);
        return list("[", it.shape, writeValue, "]", true);
      case "Property":
        return named(it);
      case "Const":
        t("const");
        t(it.name.name);
        t("=");
        return writeValue(it.value);
      case "Block":
        t("block");
        t(it.name.name);
        list(
          "(",
          it.params,
          (p) => {
            t(p.name.name);
            if (p.default !== undefined) {
              t("=");
              writeValue(p.default);
            }
          },
          ")",
          true,
        );
        t("{");
        it.body.forEach(layer);
        return t("}");
      case "Layer":
        return layer(it);
    }
  };
  for (const top of file.items) {
    if (top.kind === "Network") {
      t("network");
      t(top.name.name);
      t("{");
      top.items.forEach(item);
    } else {
      t(top.section);
      t("{");
      top.entries.forEach(named);
    }
    t("}");
  }
}
