// Property tests: `parse` never throws, and every span it produces, in diagnostics and in the AST,
// lies inside the text with line and column consistent with the offset.
import { readFileSync } from "node:fs";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { Position, Span } from "../../grammar/ast.ts";
import { MAX_SYNTAX_ERRORS, parse } from "../../grammar/parse.ts";

const alexnet = readFileSync(new URL("../../models/alexnet.net", import.meta.url), "utf8");

/** Runs per property; raise it for a long fuzzing session: ALEXC_FUZZ_RUNS=100000 npx vitest run test/grammar/fuzz. */
const runs = Number(process.env.ALEXC_FUZZ_RUNS ?? 800);

/** Line starts under the lexer's rule: a line ends at `\n`, `\r\n` or `\r`. */
function lineStarts(text: string): number[] {
  const starts = [0];
  for (const match of text.matchAll(/\r\n?|\n/g)) starts.push(match.index + match[0].length);
  return starts;
}

function expectedPosition(starts: number[], offset: number): Pick<Position, "line" | "column"> {
  let lo = 0;
  let hi = starts.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (starts[mid] <= offset) lo = mid;
    else hi = mid - 1;
  }
  return { line: lo + 1, column: offset - starts[lo] + 1 };
}

/** Every `span` anywhere under `node`. */
function* spansIn(node: unknown): Generator<Span> {
  if (Array.isArray(node)) {
    for (const child of node) yield* spansIn(child);
  } else if (node !== null && typeof node === "object") {
    for (const [key, child] of Object.entries(node)) {
      if (key === "span" && child !== undefined) yield child as Span;
      else yield* spansIn(child);
    }
  }
}

/** What is wrong with the spans and diagnostics of `parse(text)`, as readable lines. */
function problems(text: string, result: ReturnType<typeof parse>): string[] {
  const starts = lineStarts(text);
  const found: string[] = [];
  const check = (what: string, p: Position) => {
    const want = expectedPosition(starts, p.offset);
    if (p.line !== want.line || p.column !== want.column)
      found.push(`${what} ${JSON.stringify(p)}, expected ${want.line}:${want.column}`);
  };
  for (const d of result.diagnostics) {
    if (!d.code.startsWith("AX10")) found.push(`not a syntax diagnostic: ${d.code} ${d.message}`);
    if (d.span === undefined) found.push(`no span: ${d.code} ${d.message}`);
  }
  const spans = [...spansIn(result.ast), ...result.diagnostics.flatMap((d) => (d.span ? [d.span] : []))];
  for (const { start, end } of spans) {
    if (!(0 <= start.offset && start.offset <= end.offset && end.offset <= text.length)) {
      found.push(`span outside the text: ${start.offset}..${end.offset} of ${text.length}`);
    }
    check("start", start);
    check("end", end);
  }
  if (result.diagnostics.length > MAX_SYNTAX_ERRORS) found.push(`${result.diagnostics.length} diagnostics`);
  return found;
}

/** Parses and checks the invariants (one `expect`, so hundreds of spans stay cheap to check). */
function parseChecked(text: string): ReturnType<typeof parse> {
  const result = parse(text);
  expect(problems(text, result), JSON.stringify(text.slice(0, 200))).toEqual([]);
  return result;
}

// ---- input generators ----------------------------------------------------------------------------------

// prettier-ignore
const fragments = [
  "network", "input", "const", "block", "train", "data", "conv", "x", "f32", "on", "_a1",
  "{", "}", "(", ")", "[", "]", ",", ":", "=", "+", "-", "*", "/",
  "0", "96", "0.75", "1e-4", ".5", "1e400", "1.", "1e", '"s"', '"a\\"b"', '"open', "\\",
  "# c", "// c", "/", "\n", "\r\n", "\r", " ", "\t", "@", "$", ".", "é", "😀", "\u2028", "\u0000", "\ufeff",
];

const tokenSoup = fc
  .array(fc.constantFrom(...fragments), { maxLength: 80 })
  .chain((parts) => fc.constantFrom("", " ").map((separator) => parts.join(separator)));

const randomText = fc.oneof(
  fc.string({ unit: "binary", maxLength: 200 }),
  fc.string({ unit: fc.constantFrom(...'network{}()[],:=+-*/#"\\.0123456789eE \n\rxab_'), maxLength: 200 }),
);

type Mutation = { at: number; kind: "insert" | "delete" | "replace"; length: number; text: string };
const mutation: fc.Arbitrary<Mutation> = fc.record({
  at: fc.nat(),
  kind: fc.constantFrom("insert", "delete", "replace"),
  length: fc.integer({ min: 1, max: 20 }),
  text: fc.oneof(fc.constantFrom(...fragments), fc.string({ unit: "binary", maxLength: 5 })),
});

function mutate(text: string, mutations: Mutation[]): string {
  for (const m of mutations) {
    const at = m.at % (text.length + 1);
    const cut = m.kind === "insert" ? 0 : m.length;
    text = text.slice(0, at) + (m.kind === "delete" ? "" : m.text) + text.slice(at + cut);
  }
  return text;
}

const mutatedAlexnet = fc.array(mutation, { minLength: 1, maxLength: 6 }).map((ms) => mutate(alexnet, ms));

// ---- properties ----------------------------------------------------------------------------------------

describe("parse on arbitrary input", () => {
  it("random strings: never throws, spans inside the text", () => {
    fc.assert(
      fc.property(randomText, (text) => void parseChecked(text)),
      { numRuns: runs },
    );
  });

  it("token soups: never throws, spans inside the text", () => {
    fc.assert(
      fc.property(tokenSoup, (text) => void parseChecked(text)),
      { numRuns: runs },
    );
  });

  it("mutated alexnet.net: never throws, spans inside the text", () => {
    fc.assert(
      fc.property(mutatedAlexnet, (text) => void parseChecked(text)),
      { numRuns: runs },
    );
  });

  it("one small edit inside the network's body loses at most a few layers", () => {
    // Edits that can legitimately end the body early (`}`), open a line comment or start another
    // section or a block definition (whose body then runs to the next `}`) are left out (measured:
    // `block` replacing the newline after relu6's line left 16 of the 23 layers).
    const first = alexnet.indexOf("{") + 1;
    const last = alexnet.indexOf("loss =");
    const edit = fc.record({
      at: fc.integer({ min: first, max: last }),
      kind: fc.constantFrom("insert", "delete", "replace" as const),
      length: fc.integer({ min: 1, max: 3 }),
      text: fc.constantFrom(
        ...fragments.filter((f) => !/[}#\n\r\u2028]|\/\/|network|train|data|block/.test(f)),
      ),
    });
    fc.assert(
      fc.property(edit, (m) => {
        const { ast } = parseChecked(mutate(alexnet, [m]));
        const layers = ast.items
          .flatMap((i) => (i.kind === "Network" ? i.items : []))
          .filter((i) => i.kind === "Layer");
        expect(layers.length).toBeGreaterThanOrEqual(20); // of 23
      }),
      { numRuns: Math.ceil(runs / 2) },
    );
  });
});

describe("parse on large input", () => {
  const body = alexnet.slice(alexnet.indexOf("{") + 1, alexnet.indexOf("loss ="));

  it("parses 1 MB of valid statements in bounded time", () => {
    const text = `network big {${body.repeat(Math.ceil(1_000_000 / body.length))}}`;
    const started = performance.now();
    const { ast, diagnostics } = parse(text);
    const seconds = (performance.now() - started) / 1000;
    expect(diagnostics).toEqual([]);
    expect(ast.items[0].kind === "Network" && ast.items[0].items.length).toBeGreaterThan(10_000);
    expect(seconds).toBeLessThan(15); // ~2 s on a laptop; generous for slow CI machines
  });

  it("stops early on megabytes of garbage", () => {
    const garbage = [
      "x = = ".repeat(200_000),
      "network { ( ] , ".repeat(70_000),
      Array.from({ length: 1_000_000 }, (_, i) => String.fromCharCode((i * 7919) % 0x3000)).join(""),
      `network a { ${"- ( [ ".repeat(150_000)} }`,
    ];
    for (const text of garbage) {
      const started = performance.now();
      parseChecked(text);
      expect((performance.now() - started) / 1000).toBeLessThan(10);
    }
  });
});
