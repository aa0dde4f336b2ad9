// Property tests of the whole front end (parse + check): random and mutated inputs never throw,
// and every diagnostic's span lies inside the text with line/column matching its offset.
import { readFileSync, readdirSync } from "node:fs";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { Position } from "../../grammar/ast.ts";
import { catalogue, type Diagnostic } from "../../compiler/diagnostics.ts";
import { compileSource } from "../../compiler/frontend.ts";

const modelsDir = new URL("../../models/", import.meta.url);
const models = readdirSync(modelsDir)
  .filter((f) => f.endsWith(".net"))
  .map((f) => readFileSync(new URL(f, modelsDir), "utf8"));

/** Line breaks are \r\n, \n or a lone \r, as in editors and the Language Server Protocol. */
function positionOk(text: string, p: Position): boolean {
  if (p.offset < 0 || p.offset > text.length) return false;
  if (text[p.offset - 1] === "\r" && text[p.offset] === "\n") return false; // inside a \r\n
  const before = text.slice(0, p.offset).split(/\r\n|\r|\n/);
  return p.line === before.length && p.column === before.at(-1)!.length + 1;
}

function assertWellFormed(text: string, diagnostics: Diagnostic[]) {
  for (const d of diagnostics) {
    expect(Object.hasOwn(catalogue, d.code), d.code).toBe(true);
    expect(d.message.length).toBeGreaterThan(0);
    for (const span of [d.span, ...d.labels.map((l) => l.span), ...(d.fix?.edits.map((e) => e.span) ?? [])]) {
      if (!span) continue;
      expect(positionOk(text, span.start), `${d.code} start ${JSON.stringify(span.start)}`).toBe(true);
      expect(positionOk(text, span.end), `${d.code} end ${JSON.stringify(span.end)}`).toBe(true);
      expect(span.start.offset).toBeLessThanOrEqual(span.end.offset);
    }
  }
}

/** Pieces that make plausible-but-wrong programs when spliced into a model. */
const fragments = [
  "0",
  "-1",
  "1e400",
  "96 / 0",
  "2.5",
  "(0, 3)",
  "[1, 2]",
  "on(5)",
  "on(-1)",
  "local",
  "cross",
  "ceil",
  "conv",
  "dense(",
  ")",
  "(",
  "{",
  "}",
  ",",
  ":",
  "=",
  '"s',
  "block b(x) { y = b(x) }",
  "classes",
  "towers: 3",
  "const c = c",
  "relu(relu1)",
  "filters: 7",
  "kernel: 300",
  "stride: 0",
  "pad: (9, 9)",
  "softmax_cross_entropy(fc8)",
  "network n {",
  "train {",
  "input x: f32[]",
  "#",
  "\n",
  "/",
  "*",
];

const mutation = fc.oneof(
  fc.record({ kind: fc.constant("insert" as const), at: fc.nat(), text: fc.constantFrom(...fragments) }),
  fc.record({ kind: fc.constant("delete" as const), at: fc.nat(), length: fc.integer({ min: 1, max: 40 }) }),
  fc.record({
    kind: fc.constant("replace" as const),
    at: fc.nat(),
    length: fc.integer({ min: 1, max: 12 }),
    text: fc.constantFrom(...fragments),
  }),
  fc.record({ kind: fc.constant("swapLines" as const), a: fc.nat(), b: fc.nat() }),
);

type Mutation = typeof mutation extends fc.Arbitrary<infer M> ? M : never;

function mutate(text: string, m: Mutation): string {
  switch (m.kind) {
    case "insert": {
      const at = m.at % (text.length + 1);
      return text.slice(0, at) + m.text + text.slice(at);
    }
    case "delete": {
      const at = m.at % (text.length + 1);
      return text.slice(0, at) + text.slice(at + m.length);
    }
    case "replace": {
      const at = m.at % (text.length + 1);
      return text.slice(0, at) + m.text + text.slice(at + m.length);
    }
    case "swapLines": {
      const lines = text.split("\n");
      const a = m.a % lines.length;
      const b = m.b % lines.length;
      [lines[a], lines[b]] = [lines[b], lines[a]];
      return lines.join("\n");
    }
  }
}

describe("front end robustness", () => {
  it("mutated models never throw and every diagnostic is well-formed", () => {
    fc.assert(
      fc.property(
        fc.nat(models.length - 1),
        fc.array(mutation, { minLength: 1, maxLength: 4 }),
        (which, ms) => {
          const text = ms.reduce(mutate, models[which]);
          assertWellFormed(text, compileSource(text).diagnostics);
        },
      ),
      { numRuns: 2500 },
    );
  });

  it("random text never throws and every diagnostic is well-formed", () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 300, unit: "binary" }), (text) => {
        assertWellFormed(text, compileSource(text).diagnostics);
      }),
      { numRuns: 1000 },
    );
  });

  it("token soups built from the language's own pieces never throw", () => {
    const word = fc.constantFrom(
      ...fragments,
      "network",
      "input",
      "image",
      "x",
      "1",
      "relu",
      "maxpool",
      " ",
      "  ",
    );
    fc.assert(
      fc.property(fc.array(word, { maxLength: 80 }), (words) => {
        const text = words.join(" ");
        assertWellFormed(text, compileSource(text).diagnostics);
      }),
      { numRuns: 1000 },
    );
  });
});
