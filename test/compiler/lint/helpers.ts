// Shared by the lint tests: lint a text with the default configuration, pick findings by code, and
// build small networks or variants of models/alexnet.net that differ in one line.
import { readFileSync } from "node:fs";
import { expect } from "vitest";
import type { Diagnostic } from "../../../compiler/diagnostics.ts";
import { defaultLintConfig, lintSource, type LintConfig } from "../../../compiler/lint/index.ts";

export const root = new URL("../../../", import.meta.url).pathname;
export const modelPath = (name: string) => `${root}models/${name}`;
export const alexnet = readFileSync(modelPath("alexnet.net"), "utf8");

export function lint(source: string, config: LintConfig = defaultLintConfig): Diagnostic[] {
  return lintSource(source, { config });
}

export function findings(source: string, code: string, config?: LintConfig): Diagnostic[] {
  return lint(source, config).filter((d) => d.code === code);
}

/** models/alexnet.net with `from` replaced by `to` (which must occur exactly once). */
export function alexnetWith(...edits: [from: string, to: string][]): string {
  let text = alexnet;
  for (const [from, to] of edits) {
    expect(text.split(from).length - 1, `\`${from}\` occurs once in alexnet.net`).toBe(1);
    text = text.replace(from, to);
  }
  return text;
}

/** A one-tower network on `input` with `body` as its layers; `body` must define `logits`. */
export function net(
  body: string,
  { input = "f32[3, 32, 32]", classes = 10, head = "", train = "" } = {},
): string {
  const section = train ? `\ntrain {\n${train}\n}\n` : "";
  return `network n {\n  input x: ${input}\n  classes: ${classes}\n${head}${body}\n  loss = softmax_cross_entropy(logits)\n}\n${section}`;
}

/** The text a diagnostic's span covers in `source`. */
export const spanText = (source: string, d: Diagnostic) =>
  source.slice(d.span!.start.offset, d.span!.end.offset);

/** Asserts that none of `codes` fires on the paper's network. */
export function expectSilentOnAlexnet(...codes: string[]) {
  const fired = lint(alexnet).filter((d) => codes.includes(d.code));
  expect(fired.map((d) => `${d.code}: ${d.message}`)).toEqual([]);
}
