// Pathological inputs (issue #6, point 5): each ends in diagnostics, through check, lint and format,
// within a time bound and a rough heap bound, and without overflowing the stack. The bounds are
// generous (a loaded 2-core machine); the measured times are printed at the end for the record.
import { afterAll, describe, expect, it } from "vitest";
import { MAX_BLOCK_DEPTH, MAX_LAYERS } from "../../compiler/check/limits.ts";
import { MAX_VALUE_SIZE } from "../../compiler/check/values.ts";
import type { Diagnostic } from "../../compiler/diagnostics.ts";
import { compileSource } from "../../compiler/frontend.ts";
import { defaultLintConfig, lintSource } from "../../compiler/lint/index.ts";
import { formatSource, type FormatResult } from "../../grammar/format.ts";
import { MAX_NESTING, MAX_SOURCE_LENGTH, MAX_SYNTAX_ERRORS, MAX_TOKENS } from "../../grammar/parse.ts";
import { MAX_VALUE_DEPTH } from "../../grammar/to-ast.ts";

const SECONDS_PER_STAGE = 10;
const HEAP_MIB_PER_STAGE = 1536;

const times: string[] = [];
afterAll(() => console.log(`pathological inputs, time and heap growth per stage:\n${times.join("\n")}`));

interface Run {
  check: Diagnostic[];
  lint: Diagnostic[];
  format: FormatResult;
  /** Graph node count when the text checks clean. */
  nodes?: number;
}

/** Check, lint and format `text`, each within the time and heap bounds. */
function run(name: string, text: string): Run {
  const stage = <T>(what: string, work: () => T): T => {
    const heap = process.memoryUsage().heapUsed;
    const start = performance.now();
    const result = work();
    const ms = performance.now() - start;
    const grown = (process.memoryUsage().heapUsed - heap) / 2 ** 20;
    expect(ms, `${name}: ${what}`).toBeLessThan(SECONDS_PER_STAGE * 1000);
    expect(grown, `${name}: ${what}, heap MiB`).toBeLessThan(HEAP_MIB_PER_STAGE);
    timings.push(`${what} ${ms.toFixed(0)} ms ${grown >= 0 ? "+" : ""}${grown.toFixed(0)} MiB`);
    return result;
  };
  const timings: string[] = [];
  const compiled = stage("check", () => compileSource(text));
  const lint = stage("lint", () => lintSource(text, { config: defaultLintConfig }));
  const format = stage("format", () => formatSource(text));
  times.push(`  ${name} (${text.length} chars): ${timings.join(", ")}`);
  return { check: compiled.diagnostics, lint, format, nodes: compiled.graph?.nodes.length };
}

const codes = (ds: readonly Diagnostic[]) => [...new Set(ds.map((d) => d.code))].sort();
const errors = (ds: readonly Diagnostic[]) => ds.filter((d) => d.severity === "error");

/** A network around `body`, with an input and a loss after `last`. */
function network(body: string, last = "image"): string {
  return [
    "network n {",
    "  input image: f32[3, 16, 16]",
    "  classes: 10",
    body,
    `  flat = flatten(${last})`,
    "  logits = dense(flat, units: classes)",
    "  loss = softmax_cross_entropy(logits)",
    "}",
    "",
  ].join("\n");
}

/** `code` is the only diagnostic of check and the only error of lint (whose AST rules may warn). */
function expectOnly(r: Run, code: string, count?: number): void {
  expect(codes(r.check)).toEqual([code]);
  expect(codes(errors(r.lint))).toEqual([code]);
  if (count !== undefined) expect(r.check).toHaveLength(count);
}

describe("5 MB files", () => {
  it("a valid network padded with 5 MB of comments checks, lints and formats clean", () => {
    const comments = `  # ${"a comment long enough to fill a file ".repeat(25)}\n`.repeat(5_000);
    const r = run("5 MB of comments", network(`${comments}  r = relu(image)`, "r"));
    expect(r.check).toEqual([]);
    expect(errors(r.lint)).toEqual([]);
    expect(r.format.ok).toBe(true);
  });

  it("5 MB of garbage stops after the syntax-error cap", () => {
    // Mostly characters that start no token, with a few stray ones: few tokens, many errors.
    let state = 7;
    const random = () => (state = (Math.imul(state, 1103515245) + 12345) >>> 0) / 2 ** 32;
    const bad = [..."@$`'~!?;<>|&^%é😀\u0000\u00ad"];
    const stray = [...'{}()[],:=+-*/"x1 \n'];
    const parts: string[] = [];
    for (let length = 0; length < 5e6;) {
      const part =
        random() < 0.05 ? stray[Math.floor(random() * stray.length)] : bad[Math.floor(random() * bad.length)];
      parts.push(part);
      length += part.length;
    }
    const r = run("5 MB of garbage", parts.join(""));
    expect(codes(r.check).every((c) => ["AX1001", "AX1002", "AX1003"].includes(c))).toBe(true);
    expect(r.check.length).toBeLessThanOrEqual(MAX_SYNTAX_ERRORS);
    expect(r.check.at(-1)?.notes.at(-1)).toMatch(/stopped after/);
    expect(r.format.ok).toBe(false);
  });

  it(`5 MB of layers is past the ${MAX_TOKENS}-token limit: one AX1006`, () => {
    const layers = Array.from({ length: 200_000 }, (_, i) => `  l${i + 1} = relu(l${i})`).join("\n");
    const r = run("5 MB of layers", network(`  l0 = relu(image)\n${layers}`, "l200000"));
    expectOnly(r, "AX1006", 1);
    expect(r.check[0].message).toBe(`the file exceeds alexc's limit of ${MAX_TOKENS} tokens`);
    expect(r.check[0].span?.start.line).toBeGreaterThan(MAX_TOKENS / 8);
  });

  it(`a file past ${MAX_SOURCE_LENGTH} characters is one AX1006, without lexing it`, () => {
    const r = run("9 MB of comments", `# ${"x".repeat(98)}\n`.repeat(90_000));
    expectOnly(r, "AX1006", 1);
    expect(r.check[0].message).toBe(`the file exceeds alexc's limit of ${MAX_SOURCE_LENGTH} characters`);
  });
});

describe("10,000 layers", () => {
  it("a chain of 10,000 layers checks and lints without errors", () => {
    const kinds = [
      (x: string) => `conv(${x}, filters: 8, kernel: 1, init: normal(0.01))`,
      (x: string) => `relu(${x})`,
      (x: string) => `batchnorm(${x})`,
      (x: string) => `dropout(${x}, p: 0.1)`,
    ];
    const layers = Array.from(
      { length: 10_000 },
      (_, i) => `  l${i} = ${kinds[i % 4](i ? `l${i - 1}` : "image")}`,
    );
    const r = run("10,000 layers in a chain", network(layers.join("\n"), "l9999"));
    expect(r.check).toEqual([]);
    expect(r.nodes).toBe(10_003);
    expect(errors(r.lint)).toEqual([]);
    expect(r.format.ok).toBe(true);
  });

  it("10,000 layers reading one input: every unused one is reported", () => {
    const layers = Array.from({ length: 10_000 }, (_, i) => `  l${i} = relu(image)`).join("\n");
    const r = run("10,000 layers reading one input", network(layers, "l9999"));
    expect(r.check).toEqual([]);
    expect(r.lint.filter((d) => d.code === "AX5001")).toHaveLength(9_999);
  });

  // Regression: each unknown name compared itself with every name in scope (10,000 took 108 s).
  it("10,000 misspelt names are each reported, with suggestions only for the first", () => {
    const layers = Array.from({ length: 10_000 }, (_, i) => `  l${i} = relu(x${i})`).join("\n");
    const r = run("10,000 misspelt names", network(layers, "l9999"));
    expectOnly(r, "AX2006", 10_000);
    expect(r.check[10].help).toMatch(/^did you mean `l0` or `l1`\?$/);
    expect(r.check[9_999].help).not.toMatch(/did you mean/);
  });

  // Regression: ten blocks each using the previous one twice expanded 2^30 layers (out of memory).
  it(`blocks that multiply stop at ${MAX_LAYERS} layers`, () => {
    const blocks = Array.from(
      { length: 30 },
      (_, i) => `  block b${i + 1}(x) {\n    y = b${i}(x)\n    z = b${i}(y)\n  }`,
    ).join("\n");
    const r = run(
      "30 doubling blocks",
      network(`  block b0(x) { y = relu(x) }\n${blocks}\n  out = b30(image)`, "out"),
    );
    expectOnly(r, "AX2030", 1);
    expect(r.check[0].message).toBe(`the network exceeds alexc's limit of ${MAX_LAYERS} layers`);
  });
});

describe("nesting 1,000 deep", () => {
  const value = (v: string) => run(`nested ${v.slice(0, 12)}…`, network(`  const c = ${v}`));
  const deep = (open: string, close: string) => `${open.repeat(1_000)}1${close.repeat(1_000)}`;

  it.each([
    ["parentheses", deep("(", ")")],
    ["brackets", deep("[", "]")],
    ["unary minus", deep("-", "")],
    ["minus and parentheses", deep("-(", ")")],
    ["calls", deep("f(", ")")],
  ])("%s: one AX1001 at the limit", (_, text) => {
    const r = value(text);
    expectOnly(r, "AX1001", 1);
    expect(r.check[0].message).toMatch(`expected at most ${MAX_NESTING} nested brackets`);
    expect(r.format.ok).toBe(false);
  });

  // Regression: a chain of n operators was folded in n² steps (100,000 took 192 s), into a tree n
  // deep that overflowed the checker's stack.
  it(`100,000 operators in a row: one AX1001 past ${MAX_VALUE_DEPTH} levels`, () => {
    const r = value(Array.from({ length: 100_000 }, () => "1").join(" + "));
    expectOnly(r, "AX1001", 1);
    expect(r.check[0].message).toMatch(`expected at most ${MAX_VALUE_DEPTH} levels of operators`);
    const fine = value(Array.from({ length: MAX_VALUE_DEPTH }, () => "1").join(" * "));
    expect(errors(fine.check)).toEqual([]);
  });

  // Regression: 3,000 blocks each using the previous one overflowed the checker's stack.
  it.each([1_000, 10_000])(`%i blocks using one another: one AX2030 at ${MAX_BLOCK_DEPTH} levels`, (n) => {
    const blocks = Array.from({ length: n - 1 }, (_, i) => `  block b${i + 1}(x) { y = b${i}(x) }`).join(
      "\n",
    );
    const r = run(
      `${n} nested blocks`,
      network(`  block b0(x) { y = relu(x) }\n${blocks}\n  out = b${n - 1}(image)`, "out"),
    );
    expectOnly(r, "AX2030", 1);
    expect(r.check[0].message).toMatch(`limit of ${MAX_BLOCK_DEPTH} nested blocks`);
  });

  it("a block using itself, directly or through another: AX2022", () => {
    const self = run("self-recursive block", network("  block a(x) { y = a(x) }\n  out = a(image)", "out"));
    expectOnly(self, "AX2022", 1);
    const mutual = run(
      "mutually recursive blocks",
      network("  block a(x) { y = b(x) }\n  block b(x) { y = a(x) }\n  out = a(image)", "out"),
    );
    expectOnly(mutual, "AX2022", 1);
    expect(mutual.check[0].notes).toEqual(["expansion: a → b → a"]);
  });

  // Regression: `const b = [a, a]` forty times made a value of 2^40 parts (a hang).
  it(`constants that double stop at ${MAX_VALUE_SIZE} parts`, () => {
    const consts = Array.from({ length: 40 }, (_, i) => `  const c${i + 1} = [c${i}, c${i}]`).join("\n");
    const r = run(
      "doubling constants",
      network(`  const c0 = 1\n${consts}\n  r = dropout(image, p: c40)`, "r"),
    );
    expect(codes(r.check)).toEqual(["AX2030"]);
    expect(r.check[0].message).toBe(
      `this value (16383 parts) exceeds alexc's limit of ${MAX_VALUE_SIZE} parts`,
    );
  });
});

describe("numbers and sizes", () => {
  it("1e400 and -1e400: AX1004 each", () => {
    const r = run("1e400", network("  const a = 1e400\n  const b = -1e400"));
    expectOnly(r, "AX1004", 2);
  });

  // Regression: element counts past 2^53 were accepted, rounded (and so wrong) in the graph.
  it.each([
    [
      "a layer's output",
      "  input big: f32[3, 100000, 100000]\n  c = conv(big, filters: 2147483647, kernel: 1)",
      "c",
      /the output of `c` \(2147483647 × 100000 × 100000 = 21474836470000000000 elements\)/,
    ],
    ["an input", "  input big: f32[2147483647, 2147483647, 2147483647]", "big", /input `big`/],
    [
      "a weight",
      "  input big: f32[1, 94906265, 94906265]\n  f = flatten(big)\n  d = dense(f, units: 2)",
      "d",
      /the weight of `d` \(2 × 9007199136250225 = 18014398272500450 elements\)/,
    ],
  ])("%s with more than 2^53 elements: AX2030", (_, body, last, message) => {
    const r = run(`2^53: ${_}`, network(body, last));
    expectOnly(r, "AX2030", 1);
    expect(r.check[0].message).toMatch(message);
    expect(r.check[0].message).toMatch(/exceeds alexc's limit of 2\^53$/);
  });
});

describe("long names and lone braces", () => {
  const long = "a".repeat(100_000);

  // Regression: "did you mean" compared two 100,000-character names in 10^10 steps.
  it("a 100,000-character name works, and a misspelling of it is suggested", () => {
    const ok = run("100,000-character name", network(`  ${long} = relu(image)`, long));
    expect(ok.check).toEqual([]);
    expect(ok.format.ok).toBe(true);
    const typo = run("misspelt 100,000-character name", network(`  ${long} = relu(image)`, `${long}b`));
    expectOnly(typo, "AX2006", 1);
    expect(typo.check[0].help).toBe(`did you mean \`${long}\`?`);
  });

  it.each([
    ["100,000 `{`", "{".repeat(100_000)],
    ["a network and 100,000 `{`", `network n {${"{".repeat(100_000)}`],
  ])("%s: AX1001, capped", (name, text) => {
    const r = run(name, text);
    expect(codes(r.check)).toEqual(["AX1001"]);
    expect(r.check.length).toBeLessThanOrEqual(MAX_SYNTAX_ERRORS);
  });
});
