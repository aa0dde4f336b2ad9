import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { defaultSettings } from "../../../compiler/lint/config.ts";
import { loadLintConfig, parseLintConfig } from "../../../compiler/lint/index.ts";

const parse = (text: string) => parseLintConfig(text);
const where = (d: { span?: { start: { line: number; column: number } } }) =>
  `${d.span?.start.line}:${d.span?.start.column}`;

describe("alexc.json", () => {
  it("reads rule levels by code or name (snake or kebab case) and the thresholds", () => {
    const { config, diagnostics } = parse(
      JSON.stringify({
        $schema: "./alexc.schema.json",
        lint: {
          rules: { AX5001: "off", "window-border": "error", tower_pattern: "warn", unused_const: "allow" },
          towerImbalance: { flops: 0.2 },
          maxBindingBytes: 1 << 30,
          usualRanges: { learningRate: [1e-4, 0.1] },
        },
      }),
    );
    expect(diagnostics).toEqual([]);
    expect(config.rules).toEqual({ AX5001: "off", AX5007: "error", AX5006: "warning", AX5002: "off" });
    expect(config.settings).toEqual({
      towerImbalance: { flops: 0.2, params: defaultSettings.towerImbalance.params },
      maxBindingBytes: 1 << 30,
      usualRanges: { ...defaultSettings.usualRanges, learningRate: [1e-4, 0.1] },
    });
  });

  it("rejects an unknown key with its path, line and column, and suggests the near one", () => {
    const text = '{\n  "lint": {\n    "towerImbalance": { "flop": 0.2 }\n  }\n}\n';
    const [d] = parse(text).diagnostics;
    expect(d.code).toBe("AX5090");
    expect(d.severity).toBe("error");
    expect(d.message).toBe("invalid lint configuration: unknown key `lint.towerImbalance.flop`");
    expect(where(d)).toBe("3:25");
    expect(d.help).toBe("did you mean `flops`?");
  });

  it("rejects an unknown top-level key", () => {
    const [d] = parse('{ "lnt": {} }').diagnostics;
    expect(d.message).toBe("invalid lint configuration: unknown key `lnt`");
    expect(d.help).toBe("did you mean `lint`?");
  });

  it("rejects a value of the wrong kind at the value", () => {
    const text = '{ "lint": { "maxBindingBytes": -5 } }';
    const [d] = parse(text).diagnostics;
    expect(d.message).toBe("invalid lint configuration: `lint.maxBindingBytes` must be positive");
    expect(text.slice(d.span!.start.offset, d.span!.end.offset)).toBe('"maxBindingBytes"');
  });

  it("rejects a level that is not one", () => {
    const [d] = parse('{ "lint": { "rules": { "AX5001": "loud" } } }').diagnostics;
    expect(d.message).toBe(
      "invalid lint configuration: `lint.rules.AX5001` must be `off`, `info`, `warning` or `error` (or `allow`, `warn`, `deny`)",
    );
  });

  it("rejects an unknown rule, a check code, and two names for one rule", () => {
    const ds = parse(
      '{ "lint": { "rules": { "unused_layers": "off", "AX2001": "off", "AX5002": "off", "unused_const": "error" } } }',
    ).diagnostics;
    expect(ds.map((d) => [d.message, d.help])).toEqual([
      ["invalid lint configuration: unknown lint rule `unused_layers`", "did you mean `unused_layer`?"],
      [
        "invalid lint configuration: `AX2001` is not a lint rule",
        "only AX5xxx lint rules have a configurable severity; `alexc explain` lists them",
      ],
      [
        "invalid lint configuration: `unused_const` and `AX5002` name the same rule AX5002",
        "keep one of them",
      ],
    ]);
  });

  it("reports invalid JSON at its line and column", () => {
    const [d] = parse('{\n  "lint": { "rules": {}, }\n}').diagnostics;
    expect(d.message).toBe("invalid lint configuration: invalid JSON: expected a key in quotes, found `}`");
    expect(where(d)).toBe("2:26");
  });
});

describe("loadLintConfig", () => {
  it("finds the nearest alexc.json in the directory or above it", () => {
    const dir = mkdtempSync(join(tmpdir(), "alexc-config-"));
    mkdirSync(join(dir, "a", "b"), { recursive: true });
    writeFileSync(join(dir, "alexc.json"), '{ "lint": { "rules": { "AX5001": "error" } } }');
    const found = loadLintConfig(join(dir, "a", "b"));
    expect(found.path).toBe(join(dir, "alexc.json"));
    expect(found.config.rules).toEqual({ AX5001: "error" });
    writeFileSync(join(dir, "a", "alexc.json"), '{ "lint": {} }');
    expect(loadLintConfig(join(dir, "a", "b")).path).toBe(join(dir, "a", "alexc.json"));
  });

  it("returns the defaults and no path when there is none", () => {
    // The temporary directory's ancestors hold no alexc.json (/tmp and /).
    const found = loadLintConfig(mkdtempSync(join(tmpdir(), "alexc-config-")));
    expect(found.path).toBeUndefined();
    expect(found).toMatchObject({ diagnostics: [], config: { rules: {}, settings: defaultSettings } });
  });
});
