// The symbol index, rename checks and completion contexts in process: scoping corners the stdio
// tests (server.test.ts) do not reach.
import { TextDocument } from "vscode-languageserver-textdocument";
import { describe, expect, it } from "vitest";
import { parse } from "../../../grammar/parse.ts";
import { completionContext } from "../../../compiler/lsp/completion.ts";
import { spanToRange } from "../../../compiler/lsp/positions.ts";
import { renameProblem } from "../../../compiler/lsp/rename.ts";
import { buildIndex, occurrencesOf, type SymbolIndex } from "../../../compiler/lsp/symbols.ts";

const source = `network n {
  input x: f32[3, 8, 8]
  classes: 2
  const k = 3
  const f = 4
  block b(x, k) {
    c = conv(x, filters: f, kernel: k, towers: cross)
  }
  y = b(x, k: 5)
  l = softmax_cross_entropy(y)
}
`;

const indexOf = (text: string) => buildIndex(parse(text).ast);
const find = (index: SymbolIndex, kind: string, name: string) =>
  index.symbols.find((s) => s.kind === kind && s.name === name)!;
const usesOf = (index: SymbolIndex, kind: string, name: string) =>
  occurrencesOf(index, find(index, kind, name)).map((o) => `${o.span.start.line}:${o.span.start.column}`);

describe("symbol index", () => {
  const index = indexOf(source);

  it("a block's parameters hide the network's names inside its body, and only there", () => {
    expect(usesOf(index, "const", "k")).toEqual(["4:9"]); // `kernel: k` reads the parameter
    expect(usesOf(index, "param", "k")).toEqual(["6:14", "7:37", "9:12"]); // `k: 5` names it
    expect(usesOf(index, "input", "x")).toEqual(["2:9", "9:9"]);
    expect(usesOf(index, "param", "x")).toEqual(["6:11", "7:14"]);
    expect(usesOf(index, "const", "f")).toEqual(["5:9", "7:26"]);
    expect(usesOf(index, "block", "b")).toEqual(["6:9", "9:7"]);
    expect(index.words.map((w) => w.name)).toEqual(["cross"]);
  });

  it("rename is refused where the new name would change what another name means", () => {
    const problem = (kind: string, name: string, to: string) =>
      renameProblem(index, find(index, kind, name), to);
    expect(problem("param", "k", "f")).toMatch(/block `b` uses the network's `f` \(line 5\)/);
    expect(problem("const", "f", "c")).toMatch(/block `b` uses `f` but defines its own `c` \(line 7\)/);
    expect(problem("const", "f", "k")).toMatch(/`k` is already defined \(line 4\)/);
    expect(problem("const", "f", "cross")).toMatch(/`cross` already stands as a word on line 7/);
    expect(problem("layer", "c", "x")).toMatch(/already defined in block `b`/);
    expect(problem("layer", "y", "k")).toMatch(/`k` is already defined \(line 4\)/);
    expect(problem("block", "b", "dense")).toMatch(/built-in layer kind/);
    expect(problem("const", "f", "z")).toBeUndefined();
    expect(problem("param", "k", "kernel_size")).toBeUndefined();
    // `y` is a top-level layer: invisible in block bodies, so a block's own `c` is no clash.
    expect(problem("layer", "y", "c")).toBeUndefined();
  });

  it("ranges come from offsets, so `\\r` and `\\r\\n` line ends agree with the AST's lines and columns", () => {
    for (const newline of ["\r", "\r\n"]) {
      const text = source.replaceAll("\n", newline);
      const doc = TextDocument.create("file:///t.net", "alexc", 1, text);
      for (const symbol of indexOf(text).symbols) {
        const range = spanToRange(doc, symbol.span);
        expect(range.start).toEqual({
          line: symbol.span.start.line - 1,
          character: symbol.span.start.column - 1,
        });
      }
    }
  });
});

describe("completion context", () => {
  const contextAt = (text: string) => completionContext(text.replace("|", ""), text.indexOf("|"));

  it("reads the statement around the cursor across lines, skipping comments and strings", () => {
    expect(contextAt("network n {\n  c = conv(x,\n    kernel: 3, # (a note\n    fi|")).toEqual({
      kind: "argument",
      op: "conv",
      given: ["kernel"],
      statement: 14,
    });
    expect(contextAt('  c = conv(x, init: normal(0, ")"), towers: |, pad: 1)')).toMatchObject({
      kind: "argument",
      attribute: "towers",
      given: ["init", "pad"],
    });
    expect(contextAt("  c = co|")).toEqual({ kind: "op" });
    expect(contextAt("  const w = normal(|")).toEqual({ kind: "value" });
    expect(contextAt("  const w = |")).toEqual({ kind: "none" });
    expect(contextAt("  classes: |")).toEqual({ kind: "none" });
  });
});
