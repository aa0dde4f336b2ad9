// Drives `alexc lsp --stdio` as an editor would: one server process for the whole file, a real
// protocol client (client.ts), assertions on the replies.
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  CodeActionRequest,
  CompletionRequest,
  DefinitionRequest,
  DiagnosticSeverity,
  DocumentFormattingRequest,
  DocumentHighlightKind,
  DocumentHighlightRequest,
  DocumentSymbolRequest,
  HoverRequest,
  PrepareRenameRequest,
  ReferencesRequest,
  RenameRequest,
  type CompletionItem,
  type Location,
  type MarkupContent,
  type TextEdit,
} from "vscode-languageserver-protocol/node";
import { main } from "../../../compiler/cli.ts";
import { compileSource } from "../../../compiler/frontend.ts";
import { formatSource } from "../../../grammar/format.ts";
import { applyEdits, positionOf, root, startClient, uriOf, type Client } from "./client.ts";

const read = (path: string) => readFileSync(`${root}${path}`, "utf8");
const alexnet = read("models/alexnet.net");
const alexnetUri = uriOf("models/alexnet.net");
const fig1 = read("models/fig1-relu.net");
const fig1Uri = uriOf("models/fig1-relu.net");
const small = read("models/alexnet-small.net");
const smallUri = uriOf("models/alexnet-small.net");

let client: Client;
const request = <R>(method: string, params: object) =>
  client.connection.sendRequest(method, params) as Promise<R>;
const at = (uri: string, text: string, needle: string, nth = 0, delta = 0) => ({
  textDocument: { uri },
  position: positionOf(text, needle, nth, delta),
});
const lines = (locations: Location[]) => locations.map((l) => l.range.start.line + 1).sort((a, b) => a - b);
/** 1-based line numbers of the first occurrence of each needle. */
const lineOf = (text: string, ...needles: string[]) => needles.map((n) => positionOf(text, n).line + 1);

beforeAll(async () => {
  client = await startClient();
  const opened = await Promise.all([
    client.open(alexnetUri, alexnet),
    client.open(fig1Uri, fig1),
    client.open(smallUri, small),
  ]);
  for (const published of opened)
    expect(published.diagnostics.filter((d) => d.severity === DiagnosticSeverity.Error)).toEqual([]);
});

afterAll(() => {
  if (client?.child.exitCode === null) client.child.kill();
});

describe("alexc lsp over stdio", () => {
  it("announces its capabilities", () => {
    const caps = client.initialized.capabilities;
    expect(caps).toMatchObject({
      hoverProvider: true,
      definitionProvider: true,
      referencesProvider: true,
      renameProvider: { prepareProvider: true },
      documentFormattingProvider: true,
      completionProvider: {},
      codeActionProvider: { codeActionKinds: expect.arrayContaining(["quickfix"]) },
    });
    expect(client.initialized.serverInfo?.name).toBe("alexc");
  });

  it("hover on conv1: per-tower output shape, parameters, multiply-adds and FLOPs", async () => {
    for (const position of [
      at(alexnetUri, alexnet, "conv1 ="),
      at(alexnetUri, alexnet, "relu(conv1)", 0, 7),
    ]) {
      const hover = await request<{ contents: MarkupContent; range: unknown }>(HoverRequest.method, position);
      const text = hover.contents.value;
      expect(text).toContain("conv1 = conv(image, filters: 96");
      expect(text).toContain("| output | 48×55×55 | 48×55×55 | 96×55×55 |");
      expect(text).toContain("| parameters | 17,472 | 17,472 | 34,944 |");
      expect(text).toContain("| multiply-adds | 52,707,600 | 52,707,600 | 105,415,200 |");
      expect(text).toContain("| FLOPs | 105,415,200 | 105,415,200 | 210,830,400 |");
    }
  });

  it("hover on fc8 (`on(0)`): everything on tower 0; on a constant: its value", async () => {
    const fc8 = await request<{ contents: MarkupContent }>(
      HoverRequest.method,
      at(alexnetUri, alexnet, "fc8 ="),
    );
    expect(fc8.contents.value).toContain("| output | 1000 | — | 1000 |");
    expect(fc8.contents.value).toContain("| parameters | 4,097,000 | 0 | 4,097,000 |");
    const alpha = await request<{ contents: MarkupContent }>(
      HoverRequest.method,
      at(alexnetUri, alexnet, "alpha: lrn_alpha", 0, 8),
    );
    expect(alpha.contents.value).toContain("const lrn_alpha = 1e-4");
    expect(alpha.contents.value).toContain("= `0.0001`");
  });

  it("hover on a block's inner layer: one table per use of the block", async () => {
    const hover = await request<{ contents: MarkupContent }>(
      HoverRequest.method,
      at(smallUri, small, "norm ="),
    );
    expect(hover.contents.value).toContain("**stage1.norm**");
    expect(hover.contents.value).toContain("**stage2.norm**");
    expect(hover.contents.value).toContain("| output | 6×32×32 | 6×32×32 | 12×32×32 |");
  });

  it("go to definition: a layer, a constant, a block, a block parameter", async () => {
    const definition = (position: ReturnType<typeof at>) =>
      request<Location>(DefinitionRequest.method, position);
    const layer = await definition(at(alexnetUri, alexnet, "relu(conv1)", 0, 6));
    expect(layer.range).toEqual({
      start: positionOf(alexnet, "conv1 ="),
      end: positionOf(alexnet, "conv1 =", 0, 5),
    });
    const constant = await definition(at(alexnetUri, alexnet, "init: w", 3, 6));
    expect(constant.range.start).toEqual(positionOf(alexnet, "w = normal"));
    const block = await definition(at(fig1Uri, fig1, "layer2 = conv_pool", 0, 10));
    expect(block.range).toEqual({
      start: positionOf(fig1, "conv_pool(x"),
      end: positionOf(fig1, "conv_pool(x", 0, 9),
    });
    const param = await definition(at(fig1Uri, fig1, "filters: filters", 0, 9));
    expect(param.range.start).toEqual(positionOf(fig1, "filters) {"));
    // The named argument of a block use is the parameter too.
    const named = await definition(at(fig1Uri, fig1, "filters: 64"));
    expect(named.range.start).toEqual(positionOf(fig1, "filters) {"));
    const nothing = await definition(at(alexnetUri, alexnet, "towers: cross", 0, 9));
    expect(nothing).toBeNull();
  });

  it("find references: a layer (the train section's dropout list too), a constant, a block, a parameter", async () => {
    const references = (position: ReturnType<typeof at>, includeDeclaration = true) =>
      request<Location[]>(ReferencesRequest.method, { ...position, context: { includeDeclaration } });
    expect(lines(await references(at(alexnetUri, alexnet, "conv1 =")))).toEqual(
      lineOf(alexnet, "conv1 =", "relu(conv1)"),
    );
    expect(lines(await references(at(alexnetUri, alexnet, "drop6 =")))).toEqual(
      lineOf(alexnet, "drop6 =", "dense(drop6", "dropout: [drop6"),
    );
    expect(await references(at(alexnetUri, alexnet, "w = normal"))).toHaveLength(1 + 8);
    expect(await references(at(alexnetUri, alexnet, "w = normal"), false)).toHaveLength(8);
    const highlights = await request<{ range: { start: unknown }; kind: number }[]>(
      DocumentHighlightRequest.method,
      at(alexnetUri, alexnet, "conv1 ="),
    );
    expect(highlights.map((h) => h.kind)).toEqual([DocumentHighlightKind.Write, DocumentHighlightKind.Read]);
    expect(lines(await references(at(fig1Uri, fig1, "conv_pool(x")))).toEqual(
      lineOf(fig1, "conv_pool(x", "layer1 =", "layer2 =", "layer3 ="),
    );
    // `filters` the parameter: its definition, `filters: filters` (the value), three uses' named arguments.
    const filters = await references(at(fig1Uri, fig1, "filters) {"));
    expect(lines(filters)).toEqual(
      lineOf(fig1, "conv_pool(x", "filters: filters", "layer1 =", "layer2 =", "layer3 ="),
    );
    expect(
      filters.find((l) => l.range.start.line + 1 === lineOf(fig1, "filters: filters")[0])?.range.start,
    ).toEqual(positionOf(fig1, "filters: filters", 0, 9));
  });

  it("rename: every reference, and the result still checks", async () => {
    const edit = await request<{ changes: Record<string, TextEdit[]> }>(RenameRequest.method, {
      ...at(alexnetUri, alexnet, "drop6 ="),
      newName: "dropout6",
    });
    const renamed = applyEdits(alexnet, edit.changes[alexnetUri]);
    expect(renamed).toContain("dropout: [dropout6, drop7]");
    expect(renamed).toContain("fc7 = dense(dropout6,");
    const front = compileSource(renamed);
    expect(front.diagnostics).toEqual([]);
    expect(front.graph?.nodes.map((n) => n.name)).toContain("dropout6");

    const param = await request<{ changes: Record<string, TextEdit[]> }>(RenameRequest.method, {
      ...at(fig1Uri, fig1, "filters) {"),
      newName: "width",
    });
    const fig1Renamed = applyEdits(fig1, param.changes[fig1Uri]);
    expect(fig1Renamed).toContain("conv(x, filters: width,");
    expect(fig1Renamed).toContain("layer3 = conv_pool(layer2, width: 64)");
    expect(compileSource(fig1Renamed).graph?.params).toEqual(compileSource(fig1).graph?.params);

    const prepared = await request<{ range: unknown; placeholder: string }>(
      PrepareRenameRequest.method,
      at(alexnetUri, alexnet, "init: w", 0, 6),
    );
    expect(prepared.placeholder).toBe("w");
  });

  it("rename: an invalid or clashing name is an error, not an edit", async () => {
    const rename = (newName: string, position = at(alexnetUri, alexnet, "w = normal")) =>
      request<unknown>(RenameRequest.method, { ...position, newName });
    await expect(rename("conv1")).rejects.toThrow(
      `\`conv1\` is already defined (line ${lineOf(alexnet, "conv1 =")})`,
    );
    await expect(rename("network")).rejects.toThrow(/`network` is a keyword/);
    await expect(rename("1w")).rejects.toThrow(/not a name/);
    // `towers: local` would start to mean the constant.
    await expect(rename("local")).rejects.toThrow(
      `\`local\` already stands as a word on line ${lineOf(alexnet, "towers: local, init")}`,
    );
    await expect(rename("relu", at(fig1Uri, fig1, "conv_pool(x"))).rejects.toThrow(/built-in layer kind/);
    await expect(rename("act", at(fig1Uri, fig1, "x, filters)"))).rejects.toThrow(
      /already defined in block `conv_pool`/,
    );
    await expect(rename("x", at(alexnetUri, alexnet, "classes: 1000"))).rejects.toThrow(/network property/);
  });

  it("formatting: an unformatted document gets the formatter's text; one with a syntax error gets no edits", async () => {
    const uri = uriOf("test/compiler/lsp/untidy.net");
    const untidy =
      "network  n{input x:f32[3,8,8]\n classes:2\n  c=conv(x,filters:4,kernel:3)   # keep me\nl = softmax_cross_entropy( c )}\n";
    await client.open(uri, untidy);
    const edits = await request<TextEdit[]>(DocumentFormattingRequest.method, {
      textDocument: { uri },
      options: { tabSize: 2, insertSpaces: true },
    });
    const expected = formatSource(untidy);
    expect(expected.ok).toBe(true);
    expect(edits.length).toBeGreaterThan(0);
    expect(applyEdits(untidy, edits)).toBe(expected.ok && expected.text);

    const brokenUri = uriOf("test/compiler/lsp/broken.net");
    await client.open(brokenUri, "network n { c = conv(x, \n");
    const none = await request<TextEdit[]>(DocumentFormattingRequest.method, {
      textDocument: { uri: brokenUri },
      options: { tabSize: 2, insertSpaces: true },
    });
    expect(none).toEqual([]);
  });

  it("completion: layer kinds after `name =`, attribute names and values inside the argument list", async () => {
    const uri = uriOf("test/compiler/lsp/typing.net");
    const text =
      "network n {\n  input x: f32[3, 8, 8]\n  classes: 2\n  const std = 0.01\n" +
      "  c = conv(x, kernel: 3, fil)\n  t = conv(c, towers: )\n  k = co\n}\n";
    await client.open(uri, text);
    const complete = async (needle: string, delta: number) =>
      (await request<CompletionItem[]>(CompletionRequest.method, at(uri, text, needle, 0, delta))).map(
        (i) => i.label,
      );
    const attrs = await complete("fil)", 3);
    expect(attrs).toEqual(
      expect.arrayContaining(["filters", "stride", "pad", "towers", "init", "bias", "x"]),
    );
    expect(attrs).not.toContain("kernel"); // already given
    expect(attrs).not.toContain("units"); // dense's
    expect(attrs).not.toContain("c"); // the layer itself
    const values = await complete("towers: )", 8);
    expect(values).toEqual(expect.arrayContaining(["local", "cross", "on(…)", "std"]));
    const kinds = await complete("k = co", 6);
    expect(kinds).toEqual(expect.arrayContaining(["conv", "concat", "dense", "softmax_cross_entropy"]));
    expect(await complete("const std", 2)).toEqual([]);
  });

  it("an edit that introduces an error: a diagnostic with the right range (UTF-16 columns), and its fix as a code action", async () => {
    const uri = uriOf("test/compiler/lsp/edited.net");
    let text = alexnet;
    await client.open(uri, text);
    // An emoji (two UTF-16 code units) before the error on the same line: columns must count units.
    const conv2 = positionOf(text, "filters: 256, kernel: 5");
    const insert = 'init: "🙂", filtres';
    await client.change(uri, 2, [
      {
        range: { start: conv2, end: { line: conv2.line, character: conv2.character + "filters".length } },
        text: insert,
      },
    ]);
    text = applyEdits(text, [
      { range: { start: conv2, end: { line: conv2.line, character: conv2.character + 7 } }, newText: insert },
    ]);
    const published = await client.diagnostics(uri, 2);
    const typo = published.diagnostics.find((d) => d.code === "AX2002");
    expect(typo).toBeDefined();
    const start = positionOf(text, "filtres");
    expect(typo!.range).toEqual({ start, end: { line: start.line, character: start.character + 7 } });
    // The emoji is one code point but two UTF-16 units: a server counting code points would be one short.
    expect([...text.split("\n")[start.line].slice(0, start.character)].length).toBe(start.character - 1);
    expect(typo!.message).toContain("unknown attribute `filtres` for `conv`");
    expect(typo!.severity).toBe(DiagnosticSeverity.Error);
    // `init` appears twice in the statement now: the second has a label pointing at the first.
    const twice = published.diagnostics.find((d) => d.code === "AX2021");
    expect(twice?.relatedInformation?.[0]).toMatchObject({ location: { uri }, message: "first given here" });

    // While the file has errors, hover shows the last clean version's numbers, and says so.
    const stale = await request<{ contents: MarkupContent }>(HoverRequest.method, at(uri, text, "conv1 ="));
    expect(stale.contents.value).toContain("_from the last version that checked without errors_");
    expect(stale.contents.value).toContain("| parameters | 17,472 | 17,472 | 34,944 |");

    const actions = await request<
      { title: string; isPreferred?: boolean; edit: { changes: Record<string, TextEdit[]> } }[]
    >(CodeActionRequest.method, {
      textDocument: { uri },
      range: typo!.range,
      context: { diagnostics: [typo!] },
    });
    const rename = actions.find((a) => a.title === "rename to `filters`");
    expect(rename?.isPreferred).toBe(true);
    expect(applyEdits(text, rename!.edit.changes[uri])).toContain('init: "🙂", filters: 256');
  });

  it("debounce: rapid edits publish once, for the latest version; a `maybe` fix is offered but not preferred", async () => {
    const uri = uriOf("test/compiler/lsp/rapid.net");
    const text = (op: string) =>
      `network n {\n  input x: f32[3, 8, 8]\n  classes: 2\n  c = ${op}(x)\n  l = softmax_cross_entropy(c)\n}\n`;
    await client.open(uri, text("relu"));
    for (const [version, op] of [
      [2, "r"],
      [3, "re"],
      [4, "reluu"],
    ] as const)
      await client.change(uri, version, [{ text: text(op) }]);
    const published = await client.diagnostics(uri, 4);
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(client.published.filter((p) => p.uri === uri).map((p) => p.version)).toEqual([1, 4]);
    const unknown = published.diagnostics.find((d) => d.code === "AX2001")!;
    expect(unknown.range).toEqual({ start: { line: 3, character: 6 }, end: { line: 3, character: 11 } });
    expect(unknown.message).toContain("help: did you mean `relu`?");

    const actions = await request<{ title: string; isPreferred?: boolean }[]>(CodeActionRequest.method, {
      textDocument: { uri },
      range: { start: { line: 3, character: 7 }, end: { line: 3, character: 7 } },
      context: { diagnostics: [] },
    });
    expect(actions).toEqual([expect.objectContaining({ title: "replace with `relu`", isPreferred: false })]);
  });

  it("lint findings with the levels of the nearest alexc.json; their safe fixes as preferred and fix-all actions", async () => {
    const dir = mkdtempSync(join(tmpdir(), "alexc-lsp-"));
    writeFileSync(join(dir, "alexc.json"), JSON.stringify({ lint: { rules: { unused_const: "error" } } }));
    const uri = pathToFileURL(join(dir, "lint.net")).href;
    const text =
      "network n {\n  input x: f32[3, 8, 8]\n  classes: 2\n  const spare = 3\n" +
      "  c = relu(x)\n  l = softmax_cross_entropy(c)\n}\n";
    const published = await client.open(uri, text);
    const unused = published.diagnostics.find((d) => d.code === "AX5002")!;
    expect(unused.severity).toBe(DiagnosticSeverity.Error);
    expect(unused.range.start).toEqual(positionOf(text, "spare"));
    const actions = await request<
      { title: string; kind: string; isPreferred?: boolean; edit: { changes: Record<string, TextEdit[]> } }[]
    >(CodeActionRequest.method, {
      textDocument: { uri },
      range: unused.range,
      context: { diagnostics: [unused], only: ["quickfix", "source.fixAll"] },
    });
    const quick = actions.find((a) => a.kind === "quickfix")!;
    expect(quick).toMatchObject({ title: "remove `const spare`", isPreferred: true });
    expect(applyEdits(text, quick.edit.changes[uri])).not.toContain("spare");
    const all = actions.find((a) => a.kind === "source.fixAll.alexc");
    expect(applyEdits(text, all!.edit.changes[uri])).toBe(applyEdits(text, quick.edit.changes[uri]));

    // A broken alexc.json is reported on the documents it governs, naming its own line and column.
    writeFileSync(join(dir, "alexc.json"), '{ "lint": { "rulez": {} } }');
    await client.change(uri, 2, [{ text: text + " " }]);
    const broken = await client.diagnostics(uri, 2);
    const config = broken.diagnostics.find((d) => d.code === "AX5090");
    expect(config?.message).toMatch(/^alexc\.json:1:\d+: /);
    expect(config?.range.start).toEqual({ line: 0, character: 0 });
  });

  it("outline: the network's declarations, the train and the data section", async () => {
    const symbols = await request<{ name: string; children?: { name: string }[] }[]>(
      DocumentSymbolRequest.method,
      { textDocument: { uri: alexnetUri } },
    );
    expect(symbols.map((s) => s.name)).toEqual(["alexnet", "train", "data"]);
    expect(symbols[0].children?.map((c) => c.name)).toEqual(
      expect.arrayContaining(["image", "w", "conv1", "loss"]),
    );
  });

  it("shutdown and exit: the server ends with status 0", async () => {
    expect(await client.stop()).toBe(0);
  });
});

describe("alexc lsp arguments", () => {
  it("an unknown argument is bad usage (exit 2), before any server starts", async () => {
    const err: string[] = [];
    const code = await main(["lsp", "--socket=5000"], { out: () => {}, err: (t) => void err.push(t) });
    expect(code).toBe(2);
    expect(err.join("\n")).toContain("alexc lsp: unknown argument `--socket=5000`");
  });
});
