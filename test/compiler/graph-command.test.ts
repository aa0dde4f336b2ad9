import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { main } from "../../compiler/cli.ts";
import { dotDiagram } from "../../compiler/diagram/dot.ts";
import { svgDiagram } from "../../compiler/diagram/svg.ts";
import { compileSource } from "../../compiler/frontend.ts";
import { parseDot } from "./diagram/dot-syntax.ts";
import { parseXml } from "./diagram/xml.ts";

const alexnet = new URL("../../models/alexnet.net", import.meta.url).pathname;
const graph = compileSource(readFileSync(alexnet, "utf8")).graph!;

async function alexc(...args: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(args, { out: (t) => void out.push(t), err: (t) => void err.push(t) });
  return { code, out: out.join("\n"), err: err.join("\n") };
}

const tempDir = () => mkdtempSync(join(tmpdir(), "alexc-graph-"));

describe("alexc graph", () => {
  it("writes the SVG to -o, the same picture compiler/diagram draws", async () => {
    const dir = tempDir();
    const file = join(dir, "alexnet.svg");
    const { code, out, err } = await alexc("graph", alexnet, "-o", file);
    expect({ code, out, err }).toEqual({ code: 0, out: "", err: "" });
    const svg = readFileSync(file, "utf8");
    expect(svg).toBe(svgDiagram(graph));
    expect(parseXml(svg).name).toBe("svg");
    // Written through a temporary file and a rename: nothing else is left in the directory.
    expect(readdirSync(dir)).toEqual(["alexnet.svg"]);
  });

  it("takes the format from the extension: .dot and .gv give Graphviz", async () => {
    const dir = tempDir();
    for (const name of ["a.dot", "a.gv", "A.DOT"]) {
      expect((await alexc("graph", alexnet, "-o", join(dir, name))).code).toBe(0);
      expect(readFileSync(join(dir, name), "utf8")).toBe(dotDiagram(graph));
    }
    expect(parseDot(readFileSync(join(dir, "a.dot"), "utf8")).name).toBe("alexnet");
  });

  it("--format picks the format for any file name, and for standard output", async () => {
    const dir = tempDir();
    expect((await alexc("graph", alexnet, "-o", join(dir, "picture"), "--format", "dot")).code).toBe(0);
    expect(readFileSync(join(dir, "picture"), "utf8")).toBe(dotDiagram(graph));
    const dot = await alexc("graph", alexnet, "--format", "dot");
    expect(dot.code).toBe(0);
    expect(dot.out).toBe(dotDiagram(graph).trimEnd());
    const svg = await alexc("graph", alexnet);
    expect(svg.code).toBe(0);
    expect(svg.out).toBe(svgDiagram(graph).trimEnd());
  });

  it("creates the output's directory and replaces an existing file", async () => {
    const dir = tempDir();
    const file = join(dir, "docs", "net.svg");
    expect((await alexc("graph", alexnet, "-o", file)).code).toBe(0);
    writeFileSync(file, "old");
    expect((await alexc("graph", alexnet, "-o", file)).code).toBe(0);
    expect(readFileSync(file, "utf8")).toBe(svgDiagram(graph));
    expect(readdirSync(join(dir, "docs"))).toEqual(["net.svg"]);
  });

  it("reports errors in FILE like alexc check and writes nothing (exit 1)", async () => {
    const dir = tempDir();
    const bad = join(dir, "bad.net");
    writeFileSync(bad, "network n {\n  input x: f32[3, 8, 8]\n  classes: 2\n  c = convv(x)\n}\n");
    const out = join(dir, "bad.svg");
    const { code, err } = await alexc("graph", bad, "-o", out);
    expect(code).toBe(1);
    expect(err).toContain(`${bad}:4:7: error AX2001: unknown layer kind \`convv\``);
    expect(err).toContain("4 |   c = convv(x)");
    expect(err).toContain("1 error");
    expect(existsSync(out)).toBe(false);
  });

  it("a file it cannot read is exit 1", async () => {
    const { code, err } = await alexc("graph", join(tempDir(), "missing.net"));
    expect(code).toBe(1);
    expect(err).toMatch(/cannot read .*missing\.net: ENOENT/);
  });

  it("a path it cannot write is exit 1", async () => {
    const dir = tempDir();
    writeFileSync(join(dir, "file"), "");
    const { code, err } = await alexc("graph", alexnet, "-o", join(dir, "file", "x.svg"));
    expect(code).toBe(1);
    expect(err).toMatch(/cannot write .*x\.svg: (ENOTDIR|EEXIST)/);
  });

  it.each([
    [["graph"], "exactly one FILE"],
    [["graph", alexnet, alexnet], "exactly one FILE"],
    [["graph", alexnet, "--format", "png"], "--format must be svg or dot, got `png`"],
    [
      ["graph", alexnet, "-o", "x.svg", "--format", "dot"],
      "--format dot does not match the output file x.svg",
    ],
    [["graph", alexnet, "-o", "x.txt"], "cannot tell the format from x.txt"],
    [["graph", alexnet, "--batch", "2"], "Unknown option '--batch'"],
    [["graph", alexnet, "-o", ""], "-o needs a file name"],
  ])("bad usage %j is exit 2", async (args, message) => {
    const { code, err } = await alexc(...args);
    expect(code).toBe(2);
    expect(err).toContain(message);
    expect(err).toContain("usage: alexc graph FILE");
  });

  it("--help prints its usage; alexc --help lists the command", async () => {
    const help = await alexc("graph", "--help");
    expect(help.code).toBe(0);
    expect(help.out).toContain("usage: alexc graph FILE [-o OUT.svg|OUT.dot] [--format svg|dot]");
    expect((await alexc("--help")).out).toContain("graph FILE [-o OUT.svg|OUT.dot] [--format svg|dot]");
  });
});
