import { describe, expect, it } from "vitest";
import type { Diagnostic } from "../../../compiler/diagnostics.ts";
import { formatSource } from "../../../grammar/format.ts";
import { applyFixes, fixSource } from "../../../compiler/lint/fix.ts";
import { defaultLintConfig } from "../../../compiler/lint/index.ts";
import { alexnet, alexnetWith } from "./helpers.ts";

const at = (offset: number) => ({ offset, line: 1, column: offset + 1 });
/** The formatter's canonical text (models/alexnet.net aligns its trailing comments, the printer does not). */
function formatted(text: string): string {
  const r = formatSource(text);
  if (!r.ok) throw new Error("does not parse");
  return r.text;
}

const edit = (
  start: number,
  end: number,
  text: string,
  applicability: "safe" | "maybe" = "safe",
): Diagnostic => ({
  code: "AX5002",
  severity: "warning",
  message: "m",
  labels: [],
  notes: [],
  fix: { description: "d", edits: [{ span: { start: at(start), end: at(end) }, text }], applicability },
});

describe("applyFixes", () => {
  it("applies non-overlapping safe fixes and defers one that overlaps an earlier one", () => {
    const r = applyFixes("abcdef", [edit(0, 2, "X"), edit(1, 3, "Y"), edit(4, 5, "Z")]);
    expect(r).toEqual({ text: "Xcd" + "Z" + "f", applied: 2 });
  });

  it("leaves `maybe` fixes to editors unless asked", () => {
    expect(applyFixes("abc", [edit(0, 1, "X", "maybe")])).toEqual({ text: "abc", applied: 0 });
    expect(applyFixes("abc", [edit(0, 1, "X", "maybe")], () => true).text).toBe("Xbc");
  });
});

describe("fixSource (--fix)", () => {
  it("fixes until nothing is left: removing an unused constant can leave another unused", () => {
    const source = alexnetWith([
      "  const lrn_k = 2\n",
      "  const lrn_k = 2\n  const a = 1\n  const b = a * 2\n",
    ]);
    const r = fixSource(source, { config: defaultLintConfig });
    expect(r.fixed).toBe(2);
    expect(r.text).toBe(formatted(alexnet));
    expect(r.diagnostics).toEqual([]);
  });

  it("leaves the file formatted, comments in place", () => {
    const source = alexnetWith(["  relu1 = relu(conv1)", "  relu1 =   relu( conv1 )   # spaced out"]);
    const r = fixSource(source, { config: defaultLintConfig });
    expect(r.fixed).toBe(0);
    expect(r.text).toBe(
      formatted(alexnetWith(["  relu1 = relu(conv1)", "  relu1 = relu(conv1) # spaced out"])),
    );
    expect(r.text).toContain("\n  relu1 = relu(conv1) # spaced out\n");
  });

  it("does not rewrite a file with syntax errors", () => {
    const source = alexnetWith(["  relu1 = relu(conv1)", "  relu1 = relu(conv1"]);
    const r = fixSource(source, { config: defaultLintConfig });
    expect(r.text).toBe(source);
    expect(r.diagnostics.some((d) => d.code === "AX1001")).toBe(true);
  });
});
