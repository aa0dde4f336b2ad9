import { readFileSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { catalogue, diag, didYouMean, editDistance } from "../../compiler/diagnostics.ts";
import { renderDiagnostic } from "../../compiler/render.ts";

const root = new URL("../../", import.meta.url).pathname;

function filesUnder(dir: string): string[] {
  return readdirSync(join(root, dir)).flatMap((name) => {
    const path = join(dir, name);
    return statSync(join(root, path)).isDirectory() ? filesUnder(path) : path.endsWith(".ts") ? [path] : [];
  });
}

const sources = ["grammar", "compiler", "runtime"]
  .flatMap(filesUnder)
  .filter((f) => !f.endsWith("diagnostics.ts"));
const tests = filesUnder("test").filter((f) => !f.endsWith("diagnostics.test.ts"));
const text = (files: string[]) => files.map((f) => readFileSync(join(root, f), "utf8")).join("\n");

/**
 * Codes whose trigger needs a broken device (out of memory, device lost, a WGSL the compiler never
 * emits) or a bug in alexc: they are raised in code but cannot be provoked by a test on a healthy
 * adapter. Keep this list short; each entry is a promise to test it when a way appears.
 */
const untestable = new Set(["AX4002", "AX4003", "AX9001"]);

describe("the diagnostic catalogue", () => {
  const codes = Object.keys(catalogue);

  it("codes are well-formed and blocked by phase", () => {
    for (const code of codes) expect(code).toMatch(/^AX[1-59]\d{3}$/);
  });

  it("every entry is raised somewhere in the compiler or runtime", () => {
    const all = text(sources);
    expect(codes.filter((c) => !all.includes(`"${c}"`))).toEqual([]);
  });

  it("every entry a test can provoke is asserted by some test", () => {
    const all = text(tests);
    expect(codes.filter((c) => !untestable.has(c) && !all.includes(c))).toEqual([]);
  });

  it("a template argument left out is a bug, caught at once", () => {
    expect(() => diag("AX2006", {}, undefined)).toThrow(/missing argument name/);
  });
});

describe("suggestions", () => {
  it("edit distance", () => {
    expect(editDistance("conv", "convv")).toBe(1);
    expect(editDistance("filters", "filtres")).toBe(2);
    expect(editDistance("", "abc")).toBe(3);
  });

  it("did-you-mean offers at most two names within distance 1–2", () => {
    expect(didYouMean("relu", ["relu6", "relu7", "relu5", "conv1"])).toBe("did you mean `relu5` or `relu6`?");
    expect(didYouMean("pool", ["dense", "lrn"])).toBeUndefined();
  });
});

describe("rendering", () => {
  it("renders file:line:col, the source line, carets under the span, labels and help", () => {
    const source = "network n {\n  c = conv(x, filtres: 4)\n}\n";
    const span = { start: { offset: 26, line: 2, column: 15 }, end: { offset: 33, line: 2, column: 22 } };
    const d = diag("AX2002", { attr: "filtres", op: "conv" }, span, { help: "did you mean `filters`?" });
    expect(renderDiagnostic(d, "m.net", source)).toBe(
      [
        "m.net:2:15: error AX2002: unknown attribute `filtres` for `conv`",
        "  |",
        "2 |   c = conv(x, filtres: 4)",
        "  |               ^^^^^^^",
        "  = help: did you mean `filters`?",
      ].join("\n"),
    );
  });
});
