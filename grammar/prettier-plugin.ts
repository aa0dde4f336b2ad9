// A Prettier plugin for `.net` files, so that projects that already run Prettier format their
// networks too: `prettier --write models/*.net` gives the same bytes as `alexc fmt` (both go through
// grammar/format.ts). Load it with `"plugins": ["./grammar/prettier-plugin.ts"]` in a Prettier config;
// Prettier imports it, and Node ≥ 22.18 runs TypeScript with type stripping.
//
// The parser produces the alexc AST (syntax errors are thrown with their location, which Prettier
// shows with a code frame). The printer returns the canonical text as Prettier lines. The text is laid
// out by grammar/print.ts at its own fixed width: Prettier's printWidth, tabWidth and useTabs do not
// apply, because a canonical form that changed with each project's options would make `alexc fmt
// --check` and `prettier --check` disagree.
import type { Doc, Parser, Plugin, Printer, SupportLanguage } from "prettier";
import { builders } from "prettier/doc";
import type { Diagnostic } from "../compiler/diagnostics.ts";
import type { SourceFile } from "./ast.ts";

/** The root Prettier sees. The comments stay inside `file`: Prettier would insist on placing them itself. */
interface NetRoot {
  kind: "NetRoot";
  file: SourceFile;
  length: number;
}

type Grammar = typeof import("./parse.ts") & typeof import("./format.ts");

/**
 * Loaded on the first `.net` file only: a Prettier config lists the plugin for every file it formats,
 * and building the parser costs more than formatting a TypeScript file.
 */
let grammar: Grammar | undefined;

async function loadGrammar(): Promise<Grammar> {
  grammar ??= { ...(await import("./parse.ts")), ...(await import("./format.ts")) };
  return grammar;
}

/** A syntax error as Prettier reports parser errors: `loc` (1-based) for its code frame. */
function syntaxError(diagnostics: Diagnostic[]): Error {
  const first = diagnostics[0];
  const start = first.span?.start ?? { line: 1, column: 1 };
  const more = diagnostics.length > 1 ? ` (and ${diagnostics.length - 1} more)` : "";
  const error = new SyntaxError(`${first.code}: ${first.message}${more} (${start.line}:${start.column})`);
  const end = first.span?.end ?? start;
  return Object.assign(error, {
    loc: { start: { line: start.line, column: start.column }, end: { line: end.line, column: end.column } },
  });
}

export const languages: SupportLanguage[] = [
  { name: "alexc", parsers: ["alexc"], extensions: [".net"], vscodeLanguageIds: ["alexc"] },
];

const parser: Parser<NetRoot> = {
  astFormat: "alexc",
  async parse(text) {
    const { parse } = await loadGrammar();
    const { ast, diagnostics } = parse(text);
    const errors = diagnostics.filter((d) => d.severity === "error");
    if (errors.length > 0) throw syntaxError(errors);
    return { kind: "NetRoot", file: ast, length: text.length };
  },
  locStart: () => 0,
  locEnd: (node) => node.length,
};

const printer: Printer<NetRoot> = {
  print(path, options): Doc {
    // Prettier always parses (above) before it prints, so the grammar is loaded.
    if (grammar === undefined || path.node.kind !== "NetRoot") throw new Error("alexc: print before parse");
    const result = grammar.formatSource(options.originalText);
    if (!result.ok) throw syntaxError(result.diagnostics);
    // Prettier ends the lines itself (its endOfLine option); the text ends with a newline, or is empty.
    return result.text
      .split("\n")
      .slice(0, -1)
      .map((line) => [line, builders.hardline]);
  },
};

export const parsers = { alexc: parser };
export const printers = { alexc: printer };

export default { languages, parsers, printers } satisfies Plugin<NetRoot>;
