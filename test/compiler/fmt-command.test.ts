// `alexc fmt`: rewrites in place (atomically, keeping permissions and links), --check for CI, --stdin,
// syntax errors leave the file untouched, exit codes 0/1/2/70.
import { spawnSync } from "node:child_process";
import {
  chmodSync,
  lstatSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it, vi } from "vitest";
import { main } from "../../compiler/cli.ts";
import { fmtCommand } from "../../compiler/fmt-command.ts";
import { formatSource } from "../../grammar/format.ts";

/** Lets a test break the printer, to see the formatter refuse to write what it cannot read back. */
const printer = vi.hoisted(() => ({ corrupt: undefined as ((text: string) => string) | undefined }));
vi.mock("../../grammar/print.ts", async (importOriginal) => {
  const real = await importOriginal<typeof import("../../grammar/print.ts")>();
  return {
    ...real,
    printSource: (file: Parameters<typeof real.printSource>[0]) => {
      const text = real.printSource(file);
      return printer.corrupt === undefined ? text : printer.corrupt(text);
    },
  };
});

const canonical = "# a network\nnetwork n {\n  x: 1 # one\n}\n";
const messy = "# a network\nnetwork   n{x:1    # one\n\n\n}";
const broken = "network n {\n  x = \n}\n";

function dir(files: Record<string, string>): {
  path: (name: string) => string;
  read: (name: string) => string;
} {
  const root = mkdtempSync(join(tmpdir(), "alexc-fmt-"));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(root, name), text);
  return { path: (name) => join(root, name), read: (name) => readFileSync(join(root, name), "utf8") };
}

async function fmt(args: string[], stdin = "") {
  const out: string[] = [];
  const err: string[] = [];
  const io = { out: (t: string) => void out.push(t), err: (t: string) => void err.push(t) };
  const code = await fmtCommand(args, io, () => stdin);
  return { code, out, err: err.join("\n") };
}

describe("alexc fmt", () => {
  it("rewrites files in place and names the ones it changed", async () => {
    const d = dir({ "messy.net": messy, "ok.net": canonical });
    const mtime = statSync(d.path("ok.net")).mtimeMs;
    const first = await fmt([d.path("messy.net"), d.path("ok.net")]);
    expect(first).toEqual({ code: 0, out: [d.path("messy.net")], err: "" });
    expect(d.read("messy.net")).toBe(canonical);
    expect(d.read("ok.net")).toBe(canonical);
    expect(statSync(d.path("ok.net")).mtimeMs).toBe(mtime); // not rewritten
    expect(await fmt([d.path("messy.net")])).toEqual({ code: 0, out: [], err: "" });
  });

  it("writes through a temporary file: permissions and symbolic links survive, nothing is left behind", async () => {
    const d = dir({ "messy.net": messy });
    chmodSync(d.path("messy.net"), 0o640);
    symlinkSync("messy.net", d.path("link.net"));
    expect((await fmt([d.path("link.net")])).code).toBe(0);
    expect(lstatSync(d.path("link.net")).isSymbolicLink()).toBe(true);
    expect(d.read("messy.net")).toBe(canonical);
    expect(statSync(d.path("messy.net")).mode & 0o777).toBe(0o640);
    expect(readdirSync(d.path("")).sort()).toEqual(["link.net", "messy.net"]);
  });

  it("--check lists the files not in canonical form, changes nothing, exits 1", async () => {
    const d = dir({ "messy.net": messy, "ok.net": canonical });
    const result = await fmt(["--check", d.path("ok.net"), d.path("messy.net")]);
    expect(result.code).toBe(1);
    expect(result.out).toEqual([d.path("messy.net")]);
    expect(result.err).toContain("1 file is not in canonical form");
    expect(d.read("messy.net")).toBe(messy);
    expect(await fmt(["--check", d.path("ok.net")])).toEqual({ code: 0, out: [], err: "" });
  });

  it("reports a syntax error at file:line:col, leaves that file untouched and formats the others", async () => {
    const d = dir({ "bad.net": broken, "messy.net": messy });
    const result = await fmt([d.path("bad.net"), d.path("messy.net")]);
    expect(result.code).toBe(1);
    expect(result.err).toContain(`${d.path("bad.net")}:3:1: error AX1001: expected a name, found \`}\``);
    expect(result.err).toContain("3 | }");
    expect(d.read("bad.net")).toBe(broken);
    expect(d.read("messy.net")).toBe(canonical);
    expect((await fmt(["--check", d.path("bad.net")])).code).toBe(1);
  });

  it("--stdin formats standard input to standard output", async () => {
    expect(await fmt(["--stdin"], messy)).toEqual({ code: 0, out: [canonical.slice(0, -1)], err: "" });
    expect(await fmt(["--stdin"], "")).toEqual({ code: 0, out: [], err: "" });
    expect(await fmt(["--check", "--stdin"], messy)).toMatchObject({ code: 1, out: ["<stdin>"] });
    expect(await fmt(["--check", "--stdin"], canonical)).toEqual({ code: 0, out: [], err: "" });
    const bad = await fmt(["--stdin"], broken);
    expect(bad.code).toBe(1);
    expect(bad.err).toContain("<stdin>:3:1: error AX1001");
  });

  it("exits 2 on bad usage and 1 on a file it cannot read", async () => {
    const d = dir({ "ok.net": canonical });
    expect((await fmt([])).code).toBe(2);
    expect((await fmt(["--frobnicate", d.path("ok.net")])).code).toBe(2);
    expect((await fmt(["--stdin", d.path("ok.net")])).code).toBe(2);
    const missing = await fmt([d.path("missing.net"), d.path("ok.net")]);
    expect(missing.code).toBe(1);
    expect(missing.err).toContain("cannot read");
    expect((await fmt(["--help"])).code).toBe(0);
  });

  it("refuses to write text that would not read back the same: internal error, exit 70", async () => {
    const d = dir({ "messy.net": messy });
    try {
      printer.corrupt = (text) => text.replace(" # one", "");
      expect(formatSource(messy)).toMatchObject({ ok: false, diagnostics: [{ code: "AX9001" }] });
      const lost = await fmt([d.path("messy.net")]);
      expect(lost.code).toBe(70);
      expect(lost.err).toContain("the formatter changed or lost a comment");
      printer.corrupt = (text) => text.replace("x: 1", "x: 2");
      expect((await fmt([d.path("messy.net")])).err).toContain("the formatter changed the syntax tree");
      printer.corrupt = (text) => text.replace("x: 1", "x: (1");
      expect((await fmt([d.path("messy.net")])).err).toContain(
        "the formatter printed text that does not parse",
      );
      expect(d.read("messy.net")).toBe(messy);
    } finally {
      printer.corrupt = undefined;
    }
  });

  it("is registered in the CLI, and reads the process's standard input", async () => {
    const d = dir({ "messy.net": messy });
    const err: string[] = [];
    const code = await main(["fmt", "--check", d.path("messy.net")], {
      out: () => {},
      err: (t) => void err.push(t),
    });
    expect(code).toBe(1);
    const cli = new URL("../../compiler/cli.ts", import.meta.url).pathname;
    const run = spawnSync(process.execPath, [cli, "fmt", "--stdin"], { input: messy, encoding: "utf8" });
    expect({ status: run.status, stdout: run.stdout }).toEqual({ status: 0, stdout: canonical });
  });
});
