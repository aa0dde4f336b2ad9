// Property tests of the whole front end: parse → check → lint → format, and the lint fixes, on
// generated and mutated inputs, with the checker bench/fuzz.ts runs on 100,000 of them
// (test/helpers/fuzz-check.ts): nothing throws, no internal error, every diagnostic inside the
// text, the formatter never changes meaning, fixed files still parse. Then the bugs it found.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { check } from "../../compiler/check/index.ts";
import { editDistance, similarNames } from "../../compiler/diagnostics.ts";
import { applyFixes } from "../../compiler/lint/fix.ts";
import { defaultLintConfig, lintSource } from "../../compiler/lint/index.ts";
import type { LayerStmt, NetworkDecl } from "../../grammar/ast.ts";
import { parse } from "../../grammar/parse.ts";
import { checkFrontEnd, runFuzz } from "../helpers/fuzz-check.ts";
import { fragments, models, mutate, Rng } from "../helpers/fuzz-inputs.ts";

/** Inputs for the generator mix; raise it for a long session: ALEXC_FUZZ_COUNT=20000 npx vitest run test/compiler/frontend-fuzz. */
const count = Number(process.env.ALEXC_FUZZ_COUNT ?? 1500);
const seed = Number(process.env.ALEXC_FUZZ_SEED ?? 20261129);

/** The failures as readable lines, with the command that replays each input. */
function report(failures: { index: number; failures: { check: string; detail: string }[] }[]): string[] {
  return failures.map(
    (f) =>
      `input ${f.index} (npm run bench:fuzz -- --seed ${seed} --start ${f.index} --count 1): ` +
      f.failures.map((x) => `${x.check}: ${x.detail.split("\n")[0]}`).join("; "),
  );
}

describe("front end robustness", () => {
  it(`${count} generated and mutated inputs keep every promise`, () => {
    const summary = runFuzz({ seed, count });
    expect(report(summary.failing)).toEqual([]);
    expect(summary.count).toBe(count);
    // Every generator ran (guards the mix, not the front end).
    expect(Object.keys(summary.perGenerator).sort()).toEqual(
      ["grammar", "lineEndings", "mutation", "nesting", "network", "tokenSoup", "unicode"].sort(),
    );
  });

  // fast-check shrinks what it finds: a failure here is a small input.
  it("mutated models keep every promise", () => {
    fc.assert(
      fc.property(fc.nat(models.length - 1), fc.integer(), fc.integer({ min: 1, max: 4 }), (which, s, n) => {
        const text = mutate(models[which], new Rng(s), n);
        expect(checkFrontEnd(text), JSON.stringify(text)).toEqual([]);
      }),
      { numRuns: 300 },
    );
  });

  it("random text and token soups keep every promise", () => {
    const soup = fc.array(fc.constantFrom(...fragments), { maxLength: 80 }).map((words) => words.join(" "));
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 300, unit: "binary" }), soup), (text) => {
        expect(checkFrontEnd(text), JSON.stringify(text)).toEqual([]);
      }),
      { numRuns: 300 },
    );
  });
});

describe("bugs the fuzzer found", () => {
  // Regression: fixes that delete a line found its end at the next `\n`, so with `\r` line ends
  // they deleted several lines and gave an end position with the wrong line.
  it.each([
    ["AX5002", "network n{input e:f[3]\rconst c=5\r//\ns=y()}", "const c=5\r"],
    [
      "AX5026",
      "network t{l=e((1))\r#alexc-disable-next-line unused_layer\rs=s()\n}",
      "#alexc-disable-next-line unused_layer\r",
    ],
  ])("%s's fix deletes one line ended by a lone \\r", (code, text, deleted) => {
    expect(checkFrontEnd(text)).toEqual([]);
    const finding = lintSource(text, { config: defaultLintConfig }).find((d) => d.code === code);
    const edit = finding!.fix!.edits[0];
    expect(text.slice(edit.span.start.offset, edit.span.end.offset)).toBe(deleted);
    expect(edit.span.end).toEqual({ offset: text.indexOf(deleted) + deleted.length, line: 3, column: 1 });
    const fixed = applyFixes(text, [finding!]).text;
    expect(fixed).toBe(text.replace(deleted, ""));
  });

  // Regression: the checker had no safety net, so a bug in it crashed `alexc check` instead of
  // becoming an internal-error diagnostic (as parse and the lint rules already did).
  it("a checker that throws reports AX9001 instead", () => {
    const file = parse(models[0]).ast;
    const network = file.items.find((i): i is NetworkDecl => i.kind === "Network")!;
    const layer = network.items.find((i): i is LayerStmt => i.kind === "Layer")!;
    (layer as { inputs: unknown }).inputs = undefined; // no parse makes this: it stands for a bug
    const result = check(file);
    expect(result.diagnostics.map((d) => d.code)).toEqual(["AX9001"]);
    expect(result.diagnostics[0].span).toEqual(network.name.span);
  });

  // Regression (speed): "did you mean" now stops computing distances past 2; same answers.
  it("suggestions are those within edit distance 1–2", () => {
    const word = fc.string({ unit: fc.constantFrom("a", "b", "c"), maxLength: 7 });
    fc.assert(
      fc.property(word, word, (a, b) => {
        const d = editDistance(a, b);
        const expected = d >= 1 && d <= 2 && d < Math.max(a.length, b.length) ? [b] : [];
        expect(similarNames(a, [b])).toEqual(expected);
      }),
      { numRuns: 3000 },
    );
  });
});
