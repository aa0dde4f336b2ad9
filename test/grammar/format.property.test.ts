// The formatter's contract (issue #6): formatting any file that parses gives a file that parses to
// the same AST (spans aside), keeps every comment in order, and formats to itself. Checked on
// generated networks laid out at random (comments between any two tokens, odd whitespace, redundant
// parentheses, optional commas) and on every model with its tokens re-spaced and comments added.
import { readdirSync, readFileSync } from "node:fs";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type * as ast from "../../grammar/ast.ts";
import { formatSource } from "../../grammar/format.ts";
import { parse } from "../../grammar/parse.ts";
import { lexer } from "../../grammar/tokens.ts";
import { commentBody, Layout, layOut, layoutChoices, sourceFile, stripSpans } from "./arbitraries.ts";

/** Runs per property; raise it for a long session: ALEXC_FORMAT_RUNS=20000 npx vitest run test/grammar/format. */
const runs = Number(process.env.ALEXC_FORMAT_RUNS ?? 300);

const modelsDir = new URL("../../models/", import.meta.url);
const models = readdirSync(modelsDir)
  .filter((f) => f.endsWith(".net"))
  .map((f) => ({ file: f, text: readFileSync(new URL(f, modelsDir), "utf8") }));

function parseClean(text: string): ast.SourceFile {
  const { ast: file, diagnostics } = parse(text);
  expect(diagnostics, text).toEqual([]);
  return file;
}

/** The formatter's contract for one input; `items`: the AST it must keep (spans aside). */
function expectFormatContract(text: string, items: unknown): void {
  const original = parseClean(text);
  expect(stripSpans(original.items), text).toEqual(items);
  const formatted = formatSource(text);
  if (!formatted.ok) throw new Error(`formatSource refused: ${JSON.stringify(formatted.diagnostics)}`);
  const reparsed = parseClean(formatted.text);
  expect(stripSpans(reparsed.items), formatted.text).toEqual(items);
  const texts = (file: ast.SourceFile) => file.comments.map((c) => c.text.trimEnd());
  expect(texts(reparsed), formatted.text).toEqual(texts(original));
  expect(formatSource(formatted.text), formatted.text).toEqual({ ok: true, text: formatted.text });
  // Canonical text: LF line ends, one final newline, no trailing whitespace, no tabs outside comments.
  expect(formatted.text).not.toMatch(/\r|[ \t]\n|\n\n\n/);
  if (formatted.text !== "") expect(formatted.text).toMatch(/[^\n]\n$/);
}

describe("formatSource on generated networks", () => {
  it("keeps the AST and the comments, and is idempotent, whatever the layout", () => {
    fc.assert(
      fc.property(
        sourceFile,
        layoutChoices,
        fc.array(commentBody, { minLength: 1, maxLength: 4 }),
        (file, choices, bodies) => {
          const layout = new Layout(choices, bodies);
          layOut(file, layout);
          const text = layout.text();
          expectFormatContract(text, stripSpans(file.items));
          // The layout really did write its comments (guards the generator, not the formatter).
          expect(parseClean(text).comments.map((c) => c.text)).toEqual(layout.comments);
        },
      ),
      { numRuns: runs },
    );
  });
});

describe("formatSource on the models", () => {
  it.each(models)("$file: re-spaced tokens and added comments", ({ text }) => {
    const items = stripSpans(parseClean(text).items);
    const lexed = lexer.tokenize(text);
    const tokens = [...lexed.tokens, ...(lexed.groups.comments ?? [])].sort(
      (a, b) => a.startOffset - b.startOffset,
    );
    fc.assert(
      fc.property(layoutChoices, fc.array(commentBody, { minLength: 1, maxLength: 4 }), (choices, bodies) => {
        const layout = new Layout(choices, bodies);
        for (const token of tokens) {
          if (token.tokenType.name === "Comment") layout.existingComment(token.image);
          else layout.token(token.image);
        }
        expectFormatContract(layout.text(), items);
      }),
      { numRuns: Math.ceil(runs / 4) },
    );
  });

  it.each(models)("$file is in canonical form", ({ text }) => {
    expect(formatSource(text)).toEqual({ ok: true, text });
  });
});
