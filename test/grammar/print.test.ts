import { readFileSync } from "node:fs";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type * as ast from "../../grammar/ast.ts";
import { parse } from "../../grammar/parse.ts";
import { printSource } from "../../grammar/print.ts";

const alexnet = readFileSync(new URL("../../models/alexnet.net", import.meta.url), "utf8");

/** The AST without spans: what "equal modulo spans" compares. */
function stripSpans(node: unknown): unknown {
  return JSON.parse(JSON.stringify(node, (key, value) => (key === "span" ? undefined : value)));
}

/** Parses text that must be free of syntax errors. */
function parseClean(text: string): ast.SourceFile {
  const { ast: file, diagnostics } = parse(text);
  expect(diagnostics, text).toEqual([]);
  return file;
}

function expectRoundTrip(text: string): void {
  const original = parseClean(text);
  const printed = printSource(original);
  expect(stripSpans(parseClean(printed))).toEqual(stripSpans(original));
  // Canonical: printing the printed text changes nothing.
  expect(printSource(parseClean(printed))).toBe(printed);
}

describe("printSource", () => {
  it("round-trips alexnet.net, comments included", () => {
    expectRoundTrip(alexnet);
    const printed = printSource(parse(alexnet).ast);
    // The canonical form differs from the hand-written file only in trailing-comment alignment.
    expect(printed).toBe(alexnet.replace(/(\S) {2,}# /g, "$1 # "));
  });

  it("prints the canonical form", () => {
    const text = `# head
network n { block cr(x, f, s = 1,) { c = conv(x, filters: f, stride: s) # t
 r = relu(c) }
 const a = -(1 + 2) * 3 - (4 - 5) - -6 / (7 * 8)


 s: "a\\"b\\\\c\\n"
 t: (1, 2,)   l: [] e: f() // trailing
 y = cr(stride: 2, x, f: 3)
 # inside end
}
data {}
// tail
`;
    expect(printSource(parseClean(text))).toBe(`# head
network n {
  block cr(x, f, s = 1) {
    c = conv(x, filters: f, stride: s) # t
    r = relu(c)
  }
  const a = -(1 + 2) * 3 - (4 - 5) - -6 / (7 * 8)

  s: "a\\"b\\\\c\\n"
  t: (1, 2)
  l: []
  e: f() // trailing
  y = cr(x, stride: 2, f: 3)
  # inside end
}

data {}
// tail
`);
    expectRoundTrip(text);
  });

  it("keeps exactly the parentheses the tree needs", () => {
    const value = (text: string) => {
      const printed = printSource(parseClean(`network n { x: ${text} }`));
      return printed.slice(printed.indexOf(": ") + 2, printed.indexOf("\n}"));
    };
    expect(value("((1 + 2)) + 3")).toBe("1 + 2 + 3");
    expect(value("1 + (2 + 3)")).toBe("1 + (2 + 3)");
    expect(value("1 - (2 - 3)")).toBe("1 - (2 - 3)");
    expect(value("(1 * 2) / (3 / 4)")).toBe("1 * 2 / (3 / 4)");
    expect(value("-(1) * -(2 + 3)")).toBe("-1 * -(2 + 3)");
    expect(value("- - 1")).toBe("--1");
    expect(value("8 / (-2)")).toBe("8 / -2");
    expect(value("[(1), (2, 3)]")).toBe("[1, (2, 3)]");
  });

  it("prints an empty file as empty text", () => {
    expect(printSource(parseClean(""))).toBe("");
    expect(printSource(parseClean("# only a comment"))).toBe("# only a comment\n");
  });
});

// ---- generated ASTs ------------------------------------------------------------------------------------

const keywords = new Set(["network", "input", "const", "block", "train", "data"]);
const span: ast.Span = { start: { offset: 0, line: 1, column: 1 }, end: { offset: 0, line: 1, column: 1 } };

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

const { value } = fc.letrec<{ value: ast.Value }>((tie) => ({
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

const sourceFile = fc
  .array(topLevel, { maxLength: 3 })
  .map((items): ast.SourceFile => ({ kind: "SourceFile", items, comments: [], span }));

describe("printSource on generated ASTs", () => {
  it("prints every AST to text that parses back to the same AST", () => {
    fc.assert(
      fc.property(sourceFile, (file) => {
        const printed = printSource(file);
        const reparsed = parse(printed);
        expect(reparsed.diagnostics, printed).toEqual([]);
        expect(stripSpans(reparsed.ast)).toEqual(stripSpans(file));
      }),
      { numRuns: 500 },
    );
  });
});
