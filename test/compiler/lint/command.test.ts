import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { main } from "../../../compiler/cli.ts";
import { lintRules } from "../../../compiler/lint/index.ts";
import { alexnetWith, modelPath } from "./helpers.ts";

async function alexc(...args: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(args, { out: (t) => void out.push(t), err: (t) => void err.push(t) });
  return { code, out: out.join("\n"), err: err.join("\n") };
}

function tempDir(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), "alexc-lint-cli-"));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
}

const spare = alexnetWith(["  const lrn_k = 2\n", "  const lrn_k = 2\n  const spare = 1\n"]);
const broken = alexnetWith(["relu3 = relu(conv3)", "relu3 = reluu(conv3)"]);

describe("alexc lint", () => {
  it("exits 0 and prints nothing on models/alexnet.net", async () => {
    expect(await alexc("lint", modelPath("alexnet.net"))).toEqual({ code: 0, out: "", err: "" });
  });

  it("renders warnings like check (file:line:col, code, caret, help, fix) and exits 0", async () => {
    const dir = tempDir({ "m.net": spare });
    const file = join(dir, "m.net");
    const { code, err } = await alexc("lint", file);
    expect(code).toBe(0);
    expect(err).toContain(`${file}:15:9: warning AX5002: constant \`spare\` is never used`);
    expect(err).toContain("15 |   const spare = 1");
    expect(err).toContain("= fix: remove `const spare`");
    expect(err.trimEnd().split("\n").at(-1)).toBe("1 warning");
  });

  it("exits 1 on errors, and on more warnings than --max-warnings", async () => {
    const dir = tempDir({ "bad.net": broken, "m.net": spare });
    expect((await alexc("lint", join(dir, "bad.net"))).code).toBe(1);
    expect((await alexc("lint", join(dir, "m.net"), "--max-warnings", "1")).code).toBe(0);
    const over = await alexc("lint", join(dir, "m.net"), "--max-warnings", "0");
    expect(over.code).toBe(1);
    expect(over.err).toContain("1 warnings, more than --max-warnings 0");
  });

  it("lints several files into one JSON list", async () => {
    const dir = tempDir({ "a.net": spare, "b.net": broken });
    const { code, out } = await alexc("lint", join(dir, "a.net"), join(dir, "b.net"), "--format", "json");
    expect(code).toBe(1);
    expect(JSON.parse(out).map((d: { file: string; code: string }) => [d.file, d.code])).toEqual([
      [join(dir, "a.net"), "AX5002"],
      [join(dir, "b.net"), "AX2001"],
    ]);
  });

  it("writes SARIF 2.1.0 with every lint rule", async () => {
    const dir = tempDir({ "m.net": spare });
    const { code, out } = await alexc("lint", join(dir, "m.net"), "--format", "sarif");
    expect(code).toBe(0);
    const log = JSON.parse(out);
    expect(log.version).toBe("2.1.0");
    expect(log.runs[0].tool.driver.rules).toHaveLength(lintRules.length);
    expect(log.runs[0].results[0]).toMatchObject({ ruleId: "AX5002", level: "warning" });
  });

  it("--fix applies the safe fixes, formats, writes the file and reports what is left", async () => {
    const dir = tempDir({ "m.net": spare.replace("  relu1 = relu(conv1)", "  relu1 =  relu(conv1)") });
    const file = join(dir, "m.net");
    const { code, err } = await alexc("lint", file, "--fix");
    expect(code).toBe(0);
    expect(err).toBe(`${file}: fixed 1 finding and formatted`);
    const text = readFileSync(file, "utf8");
    expect(text).not.toContain("spare");
    expect(text).toContain("\n  relu1 = relu(conv1)\n");
    expect(await alexc("lint", file)).toEqual({ code: 0, out: "", err: "" });
  });

  it("reads alexc.json from the file's directory", async () => {
    const dir = tempDir({
      "m.net": spare,
      "alexc.json": '{ "lint": { "rules": { "unused_const": "error" } } }',
    });
    const { code, err } = await alexc("lint", join(dir, "m.net"));
    expect(code).toBe(1);
    expect(err).toContain("error AX5002");
  });

  it("exits 2 on an invalid alexc.json, pointing into it, and lints nothing", async () => {
    const dir = tempDir({ "m.net": spare, "alexc.json": '{\n  "lint": { "rulez": {} }\n}\n' });
    const { code, err, out } = await alexc("lint", join(dir, "m.net"));
    expect(code).toBe(2);
    expect(out).toBe("");
    expect(err).toContain(
      `${join(dir, "alexc.json")}:2:13: error AX5090: invalid lint configuration: unknown key \`lint.rulez\``,
    );
    expect(err).toContain("help: did you mean `rules`?");
    expect(err).not.toContain("AX5002");
  });

  it("takes --config instead of searching", async () => {
    const dir = tempDir({ "m.net": spare, "strict.json": '{ "lint": { "rules": { "AX5002": "off" } } }' });
    expect(await alexc("lint", join(dir, "m.net"), "--config", join(dir, "strict.json"))).toEqual({
      code: 0,
      out: "",
      err: "",
    });
  });

  it("exits 2 on bad usage: no file, an unknown flag, a bad format or --max-warnings", async () => {
    for (const args of [
      [],
      ["x.net", "--fixx"],
      ["x.net", "--format", "xml"],
      ["x.net", "--max-warnings", "-1"],
    ]) {
      const r = await alexc("lint", ...args);
      expect(r.code, args.join(" ")).toBe(2);
      expect(r.err).toMatch(/^alexc lint: /);
    }
  });

  it("exits 1 for a file it cannot read, as check does", async () => {
    const r = await alexc("lint", "/nonexistent/m.net");
    expect(r.code).toBe(1);
    expect(r.err).toContain("cannot read /nonexistent/m.net: ENOENT");
  });
});

describe("alexc explain", () => {
  it("prints a lint rule's long explanation, by code or name", async () => {
    const byCode = await alexc("explain", "AX5007");
    expect(byCode.code).toBe(0);
    expect(byCode.out).toMatch(/^AX5007 window_border \(lint, warning by default\): /);
    expect(byCode.out).toContain("AlexNet's conv1 on a 224×224 input with no padding");
    expect((await alexc("explain", "window-border")).out).toBe(byCode.out);
  });

  it("lists every rule", async () => {
    const { code, out } = await alexc("explain", "--list");
    expect(code).toBe(0);
    expect(out.split("\n").map((l) => l.slice(0, 6))).toEqual(lintRules.map((r) => r.code));
  });

  it("explains any catalogue code, and the configuration's own", async () => {
    const r = await alexc("explain", "AX2001");
    expect(r).toMatchObject({ code: 0 });
    expect(r.out).toContain("AX2001 (error): unknown layer kind `{name}`");
    expect((await alexc("explain", "AX5090")).out).toContain("alexc.json");
  });

  it("exits 2 on an unknown code, with the near ones", async () => {
    const r = await alexc("explain", "AX5999");
    expect(r.code).toBe(2);
    expect(r.err).toContain("alexc explain: unknown code `AX5999`; did you mean `AX5009` or `AX5019`?");
  });
});
