// The front end as one call: text → AST → Graph, with every diagnostic from both stages.
import type { SourceFile } from "../grammar/ast.ts";
import { parse } from "../grammar/parse.ts";
import { check } from "./check/index.ts";
import { hasErrors, type Diagnostic } from "./diagnostics.ts";
import type { Graph } from "./graph.ts";
import type { DataSpec, Recipe } from "./check/recipe.ts";

export interface FrontendResult {
  ast: SourceFile;
  /** Present when the text parses and checks without errors. */
  graph?: Graph;
  /** The training recipe and data section, defaults filled in; present with the graph. */
  recipe?: Recipe;
  data?: DataSpec;
  diagnostics: Diagnostic[];
}

export function compileSource(text: string): FrontendResult {
  const parsed = parse(text);
  // Past the parser's size limits there is no tree, and "no network found" would be noise.
  if (parsed.diagnostics.some((d) => d.code === "AX1006"))
    return { ast: parsed.ast, diagnostics: parsed.diagnostics };
  // A file with syntax errors is still checked for what survived recovery, but its graph is not
  // trusted: the checker's findings are added only where they do not repeat a syntax error's place.
  const checked = check(parsed.ast);
  if (!hasErrors(parsed.diagnostics)) return { ast: parsed.ast, ...checked };
  const syntaxLines = new Set(parsed.diagnostics.map((d) => d.span?.start.line));
  const rest = checked.diagnostics.filter(
    (d) => d.span && !syntaxLines.has(d.span.start.line) && d.code !== "AX2012",
  );
  return { ast: parsed.ast, diagnostics: [...parsed.diagnostics, ...rest] };
}
