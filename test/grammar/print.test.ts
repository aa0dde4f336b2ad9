// The printer's canonical form, case by case; test/grammar/format.property.test.ts holds its contract
// (same AST, same comments, idempotent) on generated inputs.
import { readFileSync } from "node:fs";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type * as ast from "../../grammar/ast.ts";
import { parse } from "../../grammar/parse.ts";
import { PRINT_WIDTH, printSource } from "../../grammar/print.ts";
import { sourceFile, stripSpans } from "./arbitraries.ts";

const alexnet = readFileSync(new URL("../../models/alexnet.net", import.meta.url), "utf8");

/** Parses text that must be free of syntax errors. */
function parseClean(text: string): ast.SourceFile {
  const { ast: file, diagnostics } = parse(text);
  expect(diagnostics, text).toEqual([]);
  return file;
}

/** Prints `text`, checking the contract on the way: same AST, same comments, canonical. */
function format(text: string): string {
  const original = parseClean(text);
  const printed = printSource(original);
  const reparsed = parseClean(printed);
  expect(stripSpans(reparsed.items)).toEqual(stripSpans(original.items));
  expect(reparsed.comments.map((c) => c.text)).toEqual(original.comments.map((c) => c.text.trimEnd()));
  expect(printSource(reparsed)).toBe(printed);
  return printed;
}

/** Lines joined into a file, for readable expectations. */
function lines(...text: string[]): string {
  return `${text.join("\n")}\n`;
}

describe("printSource", () => {
  it("round-trips alexnet.net, comments included", () => {
    const printed = format(alexnet);
    expect(printed).toBe(alexnet); // the models are kept in canonical form
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
    expect(format(text)).toBe(`# head
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
  y = cr(stride: 2, x, f: 3)
  # inside end
}

data {}
// tail
`);
  });

  it("keeps exactly the parentheses the tree needs", () => {
    const value = (text: string) => {
      const printed = format(`network n { x: ${text} }`);
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
    expect(format("")).toBe("");
    expect(format("  \n\n")).toBe("");
    expect(format("# only a comment  ")).toBe("# only a comment\n");
  });

  it("normalises line ends, blank lines and indentation", () => {
    const text = "\r\n\r\n  network n {\r\n\r\n\r\n\tx: 1\r\r\r\ty: 2\n\n}\n\n\n\ndata{}";
    expect(format(text)).toBe(lines("network n {", "  x: 1", "", "  y: 2", "}", "", "data {}"));
  });

  it("breaks a list that does not fit, one element per line, trailing comma where the grammar allows", () => {
    const attrs = Array.from({ length: 12 }, (_, i) => `attribute${i}: ${i}`).join(", ");
    expect(format(`network n { c = conv(x, ${attrs}, init: normal(0, 0.01), sizes: [1, 2]) }`)).toBe(
      lines(
        "network n {",
        "  c = conv(",
        "    x,",
        ...Array.from({ length: 12 }, (_, i) => `    attribute${i}: ${i},`),
        "    init: normal(0, 0.01),",
        "    sizes: [1, 2],",
        "  )",
        "}",
      ),
    );
    // A value call takes no trailing comma (docs/language.md), so none is added.
    const args = Array.from({ length: 20 }, (_, i) => `argument${i}`).join(", ");
    const printed = format(`network n { x: f(${args}) }`);
    expect(printed).toContain("    argument19\n  )\n");
    // The first line that does not fit breaks; a line that fits exactly does not.
    const fits = `network n {\n  x: [${"1, ".repeat(30)}${"9".repeat(PRINT_WIDTH - 97)}]\n}\n`;
    expect(fits.split("\n")[1]).toHaveLength(PRINT_WIDTH);
    expect(format(fits)).toBe(fits);
    expect(format(fits.replace("[1,", "[10,"))).toContain("  x: [\n    10,\n");
  });

  it("puts each comment after the code it follows or on its own line, never dropping one", () => {
    const text = `network n # after name
{ # after brace
  conv1 # in the head
    = conv(image, # input
      filters: # in an argument's head
        96, kernel: 11 # eleven
      # before the closing bracket
    ) # after the layer
  q: 1 + # after plus
     2
  u: - # after minus
    4
  w: normal( # after a bracket
    0, 0.01)
  input img: f32 [3, 224, 224] # after the input
  block b(x, y) { # after a block's brace
    r = relu(x)
  }
  # at the end of the body
} # after the network
`;
    expect(format(text)).toBe(`network n {
  # after name
  # after brace
  # in the head
  conv1 = conv(
    image, # input
    # in an argument's head
    filters: 96,
    kernel: 11, # eleven
    # before the closing bracket
  ) # after the layer
  q: 1 + # after plus
    2
  u: - # after minus
    4
  w: normal(
    # after a bracket
    0,
    0.01
  )
  input img: f32[3, 224, 224] # after the input
  block b(x, y) {
    # after a block's brace
    r = relu(x)
  }
  # at the end of the body
} # after the network
`);
  });

  it("keeps one blank line around comments where the source has them", () => {
    const text =
      "# file\n\n\n# network\nnetwork n {\n  # first\n\n  x: 1\n\n  # last\n\n}\n# tail\ntrain {}\n";
    expect(format(text)).toBe(
      lines(
        "# file",
        "",
        "# network",
        "network n {",
        "  # first",
        "",
        "  x: 1",
        "",
        "  # last",
        "}",
        "",
        "# tail",
        "train {}",
      ),
    );
  });
});

// ---- generated ASTs ------------------------------------------------------------------------------------

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
