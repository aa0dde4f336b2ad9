// The editor extension's TextMate grammar (editors/vscode) against the lexer it imitates: every regex
// compiles, and the keyword, layer-kind, number, string and comment patterns agree with
// grammar/tokens.ts and the checker's tables.
import { existsSync, readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { layerKinds, opSpecs } from "../../../compiler/check/attributes.ts";
import { keywords } from "../../../compiler/lsp/names.ts";
import { valueWords } from "../../../compiler/lsp/kinds.ts";
import type { TokenType } from "chevrotain";
import { Comment, NumberLit, StringLit } from "../../../grammar/tokens.ts";
import { root } from "./client.ts";

const extension = `${root}editors/vscode/`;
const manifest = JSON.parse(readFileSync(`${extension}package.json`, "utf8"));
const grammarPath = `${extension}${manifest.contributes.grammars[0].path}`;
const grammar = JSON.parse(readFileSync(grammarPath, "utf8"));
const rule = (name: string) => grammar.repository[name];

/** The alternatives of a `\b(a|b|c)\b` pattern. */
const alternatives = (pattern: string) => /\(([A-Za-z_0-9|]+)\)/.exec(pattern)![1].split("|").sort();

/** Whole-string match of a TextMate pattern (written for Oniguruma; these use only what JS shares). */
const matchesWhole = (pattern: string, text: string) =>
  new RegExp(`^(?:${pattern})`).exec(text)?.[0] === text;

function* regexes(node: unknown): Generator<string> {
  if (Array.isArray(node)) for (const item of node) yield* regexes(item);
  else if (typeof node === "object" && node !== null)
    for (const [key, value] of Object.entries(node)) {
      if ((key === "match" || key === "begin" || key === "end") && typeof value === "string") yield value;
      else yield* regexes(value);
    }
}

describe("editors/vscode", () => {
  it("the manifest names the language `alexc` for `.net` files, with its grammar and configuration", () => {
    const language = manifest.contributes.languages[0];
    expect(language).toMatchObject({ id: "alexc", extensions: [".net"] });
    expect(manifest.contributes.grammars[0]).toMatchObject({
      language: "alexc",
      scopeName: grammar.scopeName,
    });
    expect(existsSync(grammarPath)).toBe(true);
    const config = JSON.parse(readFileSync(`${extension}${language.configuration}`, "utf8"));
    expect(config.comments.lineComment).toBe("#");
    expect(config.brackets).toEqual(
      expect.arrayContaining([
        ["{", "}"],
        ["(", ")"],
        ["[", "]"],
      ]),
    );
  });

  it("every regex of the grammar compiles", () => {
    const all = [...regexes(grammar)];
    expect(all.length).toBeGreaterThan(10);
    for (const source of all) expect(() => new RegExp(source), source).not.toThrow();
  });

  it("keywords are the lexer's; layer kinds are the checker's", () => {
    expect(alternatives(rule("keyword").match)).toEqual([...keywords].sort());
    expect(keywords).toEqual(["network", "input", "const", "block", "train", "data"]);
    expect(alternatives(rule("layer-kind").match)).toEqual([...layerKinds].sort());
  });

  it("every bare word an attribute accepts is highlighted as a word", () => {
    const highlighted = alternatives(rule("word").match);
    const accepted = Object.values(opSpecs).flatMap((spec) =>
      Object.values(spec.attrs as Record<string, { schema: never }>).flatMap((a) => valueWords(a.schema)),
    );
    for (const word of accepted.filter((w) => !w.endsWith("(…)"))) expect(highlighted).toContain(word);
  });

  it("numbers, strings and comments match what the lexer's tokens match", () => {
    const lexerMatches = (token: TokenType, text: string) =>
      new RegExp(`^(?:${(token.PATTERN as RegExp).source})`).exec(text)?.[0] === text;
    for (const text of ["96", "0.75", "1e-4", ".5", "2E+10", "1.", "e5", "-1"])
      expect(matchesWhole(rule("number").match, text), text).toBe(lexerMatches(NumberLit, text));
    for (const text of ["# a comment", "// another", "#", "/ not"])
      expect(matchesWhole(rule("comment").match, text), text).toBe(lexerMatches(Comment, text));
    const string = rule("string");
    for (const text of ['"a"', '"with \\" escape"']) {
      expect(lexerMatches(StringLit, text)).toBe(true);
      const body = text.slice(1, -1).replace(new RegExp(string.patterns[0].match, "g"), "");
      expect(new RegExp(string.begin).test(text[0]) && !body.includes('"')).toBe(true);
    }
  });
});
