import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { catalogue } from "../../../compiler/diagnostics.ts";
import { defaultLintConfig, lintRules, lintSource } from "../../../compiler/lint/index.ts";
import { alexnet, alexnetWith, lint, modelPath, root } from "./helpers.ts";

describe("the lint rule table", () => {
  it("has one rule per AX5 catalogue code (AX5090 is the configuration's own error)", () => {
    const codes = Object.keys(catalogue).filter((c) => c.startsWith("AX5") && c !== "AX5090");
    expect(lintRules.map((r) => r.code)).toEqual(codes.sort());
    expect(lintRules.length).toBeGreaterThanOrEqual(15);
  });

  it("gives every rule a unique snake_case name, the catalogue's severity, a summary and a long explanation", () => {
    expect(new Set(lintRules.map((r) => r.name)).size).toBe(lintRules.length);
    for (const r of lintRules) {
      expect(r.name).toMatch(/^[a-z]+(?:_[a-z0-9]+)+$/);
      expect(r.severity).toBe(catalogue[r.code].severity);
      expect(r.summary).not.toMatch(/\.$/);
      expect(r.explanation.split("\n").length, r.code).toBeGreaterThanOrEqual(4);
      expect(r.explanation, r.code).toMatch(/Fix:/);
    }
  });
});

describe("lintSource", () => {
  it("is silent on models/alexnet.net", () => {
    expect(lint(alexnet)).toEqual([]);
  });

  it("reports what fires on each model in models/ (alexnet.net: nothing), all of it suppressed with a reason", () => {
    const models = readdirSync(join(root, "models"))
      .filter((f) => f.endsWith(".net"))
      .sort();
    const findingsOf = (text: (f: string) => string) =>
      Object.fromEntries(models.map((f) => [f, lint(text(f)).map((d) => `${d.code} ${d.message}`)]));
    // as shipped: every finding below carries `# alexc-disable-next-line <rule> -- <reason>`
    expect(findingsOf((f) => readFileSync(modelPath(f), "utf8"))).toEqual(
      Object.fromEntries(models.map((f) => [f, []])),
    );
    const unsuppressed = (f: string) =>
      readFileSync(modelPath(f), "utf8").replace(/^[ \t]*# alexc-disable-next-line [a-z_]+ -- .+\n/gm, "");
    expect(findingsOf(unsuppressed)).toEqual({
      "alexnet-67.net": [
        "AX5007 `pool1` never reads the last row and column of `norm1`",
        "AX5005 the towers are unbalanced: tower 0 has 14 % more multiply-adds and 41 % more parameters than tower 1",
      ],
      "alexnet-fmnist.net": [
        "AX5012 the bias of `conv1` is cancelled by the batch norm `bn1`",
        "AX5007 `pool1` never reads the last row and column of `norm1`",
        "AX5012 the bias of `conv2` is cancelled by the batch norm `bn2`",
        "AX5012 the bias of `conv3` is cancelled by the batch norm `bn3`",
        "AX5012 the bias of `conv4` is cancelled by the batch norm `bn4`",
        "AX5012 the bias of `conv5` is cancelled by the batch norm `bn5`",
      ],
      "alexnet-small.net": ["AX5007 `pool` never reads the last row and column of `stage1.norm`"],
      "alexnet.net": [],
      "fig1-relu-fmnist.net": [
        "AX5007 `pool` never reads the last row and column of `layer1.act`",
        "AX5007 `pool` never reads the last row and column of `layer3.act`",
      ],
      "fig1-relu.net": ["AX5007 `pool` never reads the last row and column of `layer1.act`"],
      "fig1-tanh-fmnist.net": [
        "AX5007 `pool` never reads the last row and column of `layer1.act`",
        "AX5007 `pool` never reads the last row and column of `layer3.act`",
      ],
      "fig1-tanh.net": ["AX5007 `pool` never reads the last row and column of `layer1.act`"],
    });
  });

  it("includes everything `alexc check` reports, sorted by position with the lint findings", () => {
    const source = alexnetWith(
      ["  const lrn_k = 2\n", "  const lrn_k = 2\n  const spare = 1\n"],
      ["relu3 = relu(conv3)", "relu3 = reluu(conv3)"],
    );
    const ds = lint(source);
    expect(ds.map((d) => d.code)).toEqual(["AX5002", "AX2001"]);
    expect(ds[1].severity).toBe("error");
  });

  it("runs no lint rule on a file with syntax errors", () => {
    const ds = lint(alexnetWith(["  const lrn_k = 2\n", "  const spare = 1\n  const lrn_k = 2 +\n"]));
    expect(ds.every((d) => !d.code.startsWith("AX5"))).toBe(true);
    expect(ds.some((d) => d.code === "AX1001")).toBe(true);
  });

  it("applies the configured levels: off drops a rule, others replace its severity", () => {
    const source = alexnetWith(["  const lrn_k = 2\n", "  const lrn_k = 2\n  const a = 1\n  const b = 2\n"]);
    expect(lint(source, { ...defaultLintConfig, rules: { AX5002: "off" } })).toEqual([]);
    const ds = lint(source, { ...defaultLintConfig, rules: { AX5002: "error" } });
    expect(ds.map((d) => d.severity)).toEqual(["error", "error"]);
    // The first finding of a rule says where its level comes from; the rest stay short.
    expect(ds[0].notes.at(-1)).toBe(
      "`unused_const` is an error (set in alexc.json); `alexc explain AX5002` says more",
    );
    expect(ds[1].notes).toEqual([]);
  });

  it("finds the alexc.json above `file` when no configuration is given", () => {
    const dir = mkdtempSync(join(tmpdir(), "alexc-lint-"));
    writeFileSync(join(dir, "alexc.json"), JSON.stringify({ lint: { rules: { unused_const: "off" } } }));
    const source = alexnetWith(["  const lrn_k = 2\n", "  const lrn_k = 2\n  const a = 1\n"]);
    expect(lintSource(source, { file: join(dir, "m.net") })).toEqual([]);
    expect(lintSource(source).map((d) => d.code)).toEqual(["AX5002"]);
  });
});
