import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import type { LayerStmt, NetworkDecl, SectionDecl, Value } from "../../grammar/ast.ts";
import { MAX_NESTING, MAX_SYNTAX_ERRORS, parse } from "../../grammar/parse.ts";

const alexnet = readFileSync(new URL("../../models/alexnet.net", import.meta.url), "utf8");

/** `CODE line:column-line:column message` for each diagnostic: exact places in one string. */
function errors(text: string): string[] {
  return parse(text).diagnostics.map((d) => {
    const s = d.span!;
    return `${d.code} ${s.start.line}:${s.start.column}-${s.end.line}:${s.end.column} ${d.message}`;
  });
}

function network(text: string): NetworkDecl {
  const item = parse(text).ast.items[0];
  if (item?.kind !== "Network") throw new Error("test bug: no network");
  return item;
}

/** The value of the first property of `network t { x: <value> }`, spans removed. */
function valueOf(value: string): unknown {
  const item = network(`network t { x: ${value} }`).items[0];
  if (item?.kind !== "Property") throw new Error("test bug: no property");
  return strip(item.value);
}

function strip(value: Value): unknown {
  return JSON.parse(JSON.stringify(value, (key, v) => (key === "span" ? undefined : v)));
}

const num = (text: string) => ({ kind: "Number", value: Number(text), text });
const name = (n: string) => ({ kind: "Name", name: n });

describe("alexnet.net", () => {
  const { ast, diagnostics } = parse(alexnet);
  const net = ast.items[0] as NetworkDecl;
  const layers = net.items.filter((i): i is LayerStmt => i.kind === "Layer");
  const layer = (n: string) => layers.find((l) => l.name.name === n)!;

  it("parses without diagnostics into one network, a train and a data section", () => {
    expect(diagnostics).toEqual([]);
    expect(ast.items.map((i) => i.kind)).toEqual(["Network", "Section", "Section"]);
    expect(net.name.name).toBe("alexnet");
    expect(ast.comments).toHaveLength(15);
    expect(ast.comments[0].text).toMatch(/^# AlexNet — Krizhevsky/);
    expect(ast.span).toEqual({
      start: { offset: 0, line: 1, column: 1 },
      end: expect.objectContaining({ offset: alexnet.length }),
    });
  });

  it("has the layers conv1 … fc8 and the loss, in order", () => {
    // prettier-ignore
    expect(layers.map((l) => l.name.name)).toEqual([
      "conv1", "relu1", "norm1", "pool1",
      "conv2", "relu2", "norm2", "pool2",
      "conv3", "relu3", "conv4", "relu4", "conv5", "relu5", "pool5",
      "fc6", "relu6", "drop6", "fc7", "relu7", "drop7", "fc8",
      "loss",
    ]);
  });

  it("splits inputs from attributes", () => {
    const conv1 = layer("conv1");
    expect(conv1.op.name).toBe("conv");
    expect(conv1.inputs.map(strip)).toEqual([name("image")]);
    // prettier-ignore
    expect(conv1.attrs.map((a) => [a.name.name, strip(a.value)])).toEqual([
      ["filters", num("96")], ["kernel", num("11")], ["stride", num("4")], ["pad", num("2")],
      ["towers", name("cross")], ["init", name("w")], ["bias", num("0")],
    ]);
    expect(strip(layer("fc8").attrs.find((a) => a.name.name === "towers")!.value)).toEqual({
      kind: "Call",
      callee: { kind: "Identifier", name: "on" },
      args: [num("0")],
    });
  });

  it("reads the input, properties and constants", () => {
    const [input, classes, towers, w] = net.items;
    expect(input).toMatchObject({ kind: "Input", name: { name: "image" }, dtype: { name: "f32" } });
    expect(input.kind === "Input" && input.shape.map(strip)).toEqual([num("3"), num("224"), num("224")]);
    expect(classes).toMatchObject({ kind: "Property", name: { name: "classes" }, value: { value: 1000 } });
    expect(towers).toMatchObject({ kind: "Property", name: { name: "towers" }, value: { value: 2 } });
    expect(w).toMatchObject({
      kind: "Const",
      name: { name: "w" },
      value: { kind: "Call", callee: { name: "normal" } },
    });
    const alpha = net.items.find((i) => i.kind === "Const" && i.name.name === "lrn_alpha");
    expect(alpha).toMatchObject({ value: { kind: "Number", value: 1e-4, text: "1e-4" } });
  });

  it("reads the train section", () => {
    const train = ast.items[1] as SectionDecl;
    expect(train).toMatchObject({ section: "train", name: { name: "train" } });
    expect(train.entries.map((e) => [e.name.name, strip(e.value)])).toEqual([
      ["batch", num("128")],
      ["epochs", num("90")],
      ["lr", num("0.01")],
      ["momentum", num("0.9")],
      ["weight_decay", num("0.0005")],
      [
        "schedule",
        expect.objectContaining({ kind: "Call", callee: expect.objectContaining({ name: "plateau" }) }),
      ],
      ["max_drops", num("3")],
      ["dropout", expect.objectContaining({ kind: "List" })],
      ["seed", num("1")],
    ]);
  });

  it("gives exact spans: 1-based line and column, 0-based offset, end exclusive", () => {
    const conv1 = layer("conv1");
    const line = alexnet.split("\n").findIndex((l) => l.startsWith("  conv1 =")) + 1;
    const offset = alexnet.indexOf("conv1 =");
    const text = alexnet.slice(offset, alexnet.indexOf("\n", offset));
    expect(conv1.span).toEqual({
      start: { offset, line, column: 3 },
      end: { offset: offset + text.length, line, column: 3 + text.length },
    });
    expect(conv1.name.span).toEqual({
      start: { offset, line, column: 3 },
      end: { offset: offset + 5, line, column: 8 },
    });
    expect(alexnet.slice(net.span.start.offset, net.span.end.offset)).toMatch(/^network alexnet \{[^]*\}$/);
  });
});

describe("values", () => {
  it("reads numbers as written", () => {
    for (const text of ["96", "0.75", "1e-4", "1E+5", ".5", "2.5e3"])
      expect(valueOf(text)).toEqual(num(text));
  });

  it("reads the keyword `data` as a word where a value stands (`placement: data`)", () => {
    expect(valueOf("data")).toMatchObject({ kind: "Name", name: "data" });
    expect(errors("train {\n  placement: data\n}\ndata {\n  validation: 10\n}\n")).toEqual([]);
  });

  it("reads negative numbers as unary minus", () => {
    expect(valueOf("-1")).toEqual({ kind: "Unary", op: "-", operand: num("1") });
    expect(valueOf("--0.5")).toEqual({
      kind: "Unary",
      op: "-",
      operand: { kind: "Unary", op: "-", operand: num("0.5") },
    });
  });

  it("gives `*` and `/` precedence over `+` and `-`, all left-associative", () => {
    const bin = (op: string, left: unknown, right: unknown) => ({ kind: "Binary", op, left, right });
    // 1 + 2 * 3 - 4 / -2  ==  (1 + (2 * 3)) - (4 / (-2))
    expect(valueOf("1 + 2 * 3 - 4 / -2")).toEqual(
      bin(
        "-",
        bin("+", num("1"), bin("*", num("2"), num("3"))),
        bin("/", num("4"), { kind: "Unary", op: "-", operand: num("2") }),
      ),
    );
    expect(valueOf("(1 + 2) * 3")).toEqual(bin("*", bin("+", num("1"), num("2")), num("3")));
    expect(valueOf("8 / 4 / 2")).toEqual(bin("/", bin("/", num("8"), num("4")), num("2")));
  });

  it("tells tuples from grouping, and reads lists, calls and strings", () => {
    expect(valueOf("(0, 3)")).toEqual({ kind: "Tuple", items: [num("0"), num("3")] });
    expect(valueOf("(0, 3,)")).toEqual({ kind: "Tuple", items: [num("0"), num("3")] });
    expect(valueOf("(7)")).toEqual(num("7"));
    expect(valueOf("[3, 224, 224,]")).toEqual({ kind: "List", items: [num("3"), num("224"), num("224")] });
    expect(valueOf("[]")).toEqual({ kind: "List", items: [] });
    expect(valueOf("normal(0, std * 2)")).toMatchObject({
      kind: "Call",
      callee: { name: "normal" },
      args: [num("0"), { kind: "Binary" }],
    });
    expect(valueOf("f()")).toEqual({ kind: "Call", callee: { kind: "Identifier", name: "f" }, args: [] });
    expect(valueOf(String.raw`"a\"b\\c\nd\te"`)).toEqual({ kind: "String", value: 'a"b\\c\nd\te' });
  });

  it("treats keywords as reserved only as whole words", () => {
    expect(valueOf("networks")).toEqual(name("networks"));
    expect(valueOf("data_dir")).toEqual(name("data_dir"));
  });
});

describe("statements", () => {
  it("reads blocks with default parameters and their uses", () => {
    const net = network(`network t {
  block conv_relu(x, filters, stride = 1, pad = (0, 3),) {
    c = conv(x, filters: filters, stride: stride)
    r = relu(c)
  }
  a = conv_relu(image, filters: 64)
}`);
    const [block, use] = net.items;
    expect(block.kind).toBe("Block");
    if (block.kind !== "Block") return;
    expect(block.name.name).toBe("conv_relu");
    // prettier-ignore
    expect(block.params.map((p) => [p.name.name, p.default && strip(p.default)])).toEqual([
      ["x", undefined], ["filters", undefined], ["stride", num("1")], ["pad", { kind: "Tuple", items: [num("0"), num("3")] }],
    ]);
    expect(block.body.map((l) => `${l.name.name}=${l.op.name}`)).toEqual(["c=conv", "r=relu"]);
    expect(use).toMatchObject({
      kind: "Layer",
      name: { name: "a" },
      op: { name: "conv_relu" },
      attrs: [{ name: { name: "filters" } }],
    });
  });

  it("reads train and data sections in source order, with `//` comments", () => {
    const { ast, diagnostics } = parse('data { path: "x" } // d\nnetwork n {}\ntrain { lr: 0.01 }');
    expect(diagnostics).toEqual([]);
    expect(ast.items.map((i) => i.kind)).toEqual(["Section", "Network", "Section"]);
    expect(ast.comments).toEqual([
      { text: "// d", span: expect.objectContaining({ start: { offset: 19, line: 1, column: 20 } }) },
    ]);
  });

  it("counts lines across \\n, \\r\\n and \\r", () => {
    expect(errors("network a {\r\n  x: 1\r  y: 2 @\n}")).toEqual(["AX1003 3:8-3:9 unexpected character `@`"]);
  });
});

describe("syntax errors", () => {
  it("AX1001: expected X, found Y on the offending token", () => {
    expect(errors("network a {\n  conv1 = conv(x, filters = 3)\n}")).toEqual([
      "AX1001 2:27-2:28 expected `,` or `)`, found `=`",
    ]);
    expect(errors("network a {\n  input image f32[3]\n}")).toEqual([
      "AX1001 2:15-2:18 expected `:`, found `f32`",
    ]);
    expect(errors("network {}")).toEqual(["AX1001 1:9-1:10 expected a name, found `{`"]);
    expect(errors("network a { x: }")).toEqual(["AX1001 1:16-1:17 expected a value, found `}`"]);
    // Keywords are reserved: `input` cannot name a property.
    expect(errors("network a { input: 3 }")).toEqual([
      "AX1001 1:13-1:18 expected a statement or `}`, found `input`",
    ]);
    expect(errors("layer = conv(x)")).toEqual([
      "AX1001 1:1-1:6 expected `network`, `train` or `data`, found `layer`",
    ]);
  });

  it("AX1001 at end of input is a zero-width span at the end", () => {
    expect(errors("network a {\n  x: 1")).toEqual([
      "AX1001 2:7-2:7 expected a statement or `}`, found end of file",
    ]);
    const { diagnostics } = parse("network a {\n  x: 1");
    expect(diagnostics[0].span!.start.offset).toBe(18);
  });

  it("AX1002: unterminated string, parsed as a string so nothing cascades", () => {
    expect(errors('network a {\n  path: "abc\n  y: 2\n}')).toEqual(["AX1002 2:9-2:13 unterminated string"]);
    const item = network('network a { p: "ab\\"c\n}').items[0];
    expect(item).toMatchObject({ kind: "Property", value: { kind: "String", value: 'ab"c' } });
  });

  it("AX1003: unexpected characters, one diagnostic per run", () => {
    expect(errors("network a {\n  x: 1 $\n}")).toEqual(["AX1003 2:8-2:9 unexpected character `$`"]);
    const [run] = parse("network a { x: 1 @@@ }").diagnostics;
    expect(run).toMatchObject({
      code: "AX1003",
      message: "unexpected character `@`",
      notes: ["followed by 2 more unexpected character(s)"],
    });
    expect(run.span).toMatchObject({ start: { column: 18 }, end: { column: 21 } });
    expect(errors("network a { x: 1. }")).toEqual(["AX1003 1:17-1:18 unexpected character `.`"]);
  });

  it("AX1004: a number that overflows to Infinity", () => {
    expect(errors("network a {\n  x: 1e400\n}")).toEqual([
      "AX1004 2:6-2:11 number `1e400` is not a finite 64-bit float",
    ]);
    expect(network("network a { x: -1e400 }").items[0]).toMatchObject({
      value: { kind: "Unary", operand: { kind: "Error" } },
    });
    expect(errors("network a { x: 1e-400 }")).toEqual([]); // underflow to 0 is fine
  });

  it("reports at most one diagnostic per offending token", () => {
    // Both the missing value and the missing `}` are found at end of input: one report.
    expect(errors("network a { x:")).toEqual(["AX1001 1:15-1:15 expected a value, found end of file"]);
  });

  it(`stops after ${MAX_SYNTAX_ERRORS} syntax errors`, () => {
    for (const line of ["  x = relu(=)\n", "  x: 1 2\n", "  x: 1 $\n"]) {
      const { diagnostics } = parse(`network a {\n${line.repeat(500)}}`);
      expect(diagnostics).toHaveLength(MAX_SYNTAX_ERRORS);
      expect(diagnostics.at(-1)!.notes).toContain(`stopped after ${MAX_SYNTAX_ERRORS} syntax errors`);
    }
  });

  it(`limits nesting to ${MAX_NESTING} levels instead of overflowing the stack`, () => {
    const deep = "(".repeat(100_000);
    expect(() => parse(`network a { x: ${deep}1 }`)).not.toThrow();
    expect(errors(`network a { x: ${"-".repeat(200)}1 }`)).toEqual([
      `AX1001 1:${16 + MAX_NESTING}-1:${17 + MAX_NESTING} expected at most ${MAX_NESTING} nested brackets and \`-\` signs, found \`-\``,
    ]);
    expect(errors(`network a { x: ${"[".repeat(MAX_NESTING)}1${"]".repeat(MAX_NESTING)} }`)).toEqual([]);
  });
});

describe("recovery", () => {
  const names = (text: string) => network(text).items.map((i) => ("name" in i ? i.name.name : i));

  it("keeps the statements around a broken one", () => {
    const text = "network a {\n  conv1 = conv(x, filters: )\n  relu1 = relu(conv1)\n}";
    expect(errors(text)).toEqual(["AX1001 2:28-2:29 expected a value, found `)`"]);
    expect(names(text)).toEqual(["conv1", "relu1"]);
    const conv1 = network(text).items[0] as LayerStmt;
    expect(conv1.attrs[0].value).toEqual({
      kind: "Error",
      span: expect.objectContaining({ start: expect.objectContaining({ column: 27 }) }),
    });
  });

  it("keeps a statement whose operation is missing, with an empty name", () => {
    const text = "network a {\n  conv1 = (x)\n  relu1 = relu(conv1)\n}";
    expect(errors(text)).toEqual(["AX1001 2:11-2:12 expected a name, found `(`"]);
    expect(network(text).items[0]).toMatchObject({
      kind: "Layer",
      name: { name: "conv1" },
      op: { name: "" },
    });
    expect(names(text)).toEqual(["conv1", "relu1"]);
  });

  it("resumes after a missing operand and after garbage between statements", () => {
    expect(names("network a {\n  x: 1 +\n  const y = 2\n}")).toEqual(["x", "y"]);
    expect(names("network a { x: 1 ) ) ) y: 2 }")).toEqual(["x", "y"]);
    expect(names("network a { x: [1, 2 y: 3 }")).toEqual(["x", "y"]);
  });

  it("reports a missing comma once and keeps both elements", () => {
    const text = "network a {\n  c1 = conv(image filters: 4)\n  input x: f32[3 224]\n}";
    expect(errors(text)).toEqual([
      "AX1001 2:19-2:26 expected `,` or `)`, found `filters`",
      "AX1001 3:18-3:21 expected `,` or `]`, found `224`",
    ]);
    const [c1, input] = network(text).items;
    expect(c1).toMatchObject({ inputs: [{ name: "image" }], attrs: [{ name: { name: "filters" } }] });
    expect(input).toMatchObject({ kind: "Input", shape: [{ value: 3 }, { value: 224 }] });
  });

  it("reports a missing `)` or `]` at the end of a line where the next statement starts", () => {
    const text = "network a {\n  c1 = conv(image, filters: 4\n  r = relu(c1)\n  z: [1, 2\n  y: f(3\n}";
    expect(errors(text)).toEqual([
      "AX1001 3:3-3:4 expected `,` or `)`, found `r`",
      "AX1001 5:3-5:4 expected `,` or `]`, found `y`",
      "AX1001 6:1-6:2 expected `,` or `)`, found `}`",
    ]);
    expect(names(text)).toEqual(["c1", "r", "z", "y"]);
  });

  it("reports a run of stray tokens once, and keeps what follows", () => {
    // Regression: a lone name (which could start a statement) made recovery skip the rest of the body.
    const text = "network a {\n  relu1 relu(x)\n  y: 2\n  block b() { r = relu(x) 1 2 }\n}";
    expect(errors(text)).toEqual([
      "AX1001 2:3-2:8 expected a statement or `}`, found `relu1`",
      "AX1001 4:27-4:28 expected a layer or `}`, found `1`",
    ]);
    expect(names(text)).toEqual(["y", "b"]);
    expect(errors("train { a 1 b: 2 }")).toEqual([
      "AX1001 1:9-1:10 expected `name: value` or `}`, found `a`",
    ]);
  });

  it("resumes at the next top-level keyword", () => {
    const { ast, diagnostics } = parse("garbage here\nnetwork b { z: 1 }\n} } train { a: 1 }");
    expect(ast.items.map((i) => i.kind)).toEqual(["Network", "Section"]);
    expect(diagnostics.map((d) => d.span!.start.line)).toEqual([1, 3]);
  });

  it("never loses a recovered block's layers", () => {
    const net = network("network a {\n  block b(x = ) { y = relu(x) }\n  z: 1\n}");
    expect(net.items.map((i) => i.kind)).toEqual(["Block", "Property"]);
    expect(net.items[0]).toMatchObject({
      params: [{ default: { kind: "Error" } }],
      body: [{ name: { name: "y" } }],
    });
  });
});
