// What a lint rule is: catalogue code, a name that reads as what it allows (`unused_layer`), a
// one-line summary, the long form `alexc explain` prints, and a check over the source and, when the
// file checks without errors, its graph. Rules report through `diag` with their own code; the
// driver (index.ts) applies the configured severity and the suppression comments afterwards.
import type { NetworkDecl, SourceFile } from "../../grammar/ast.ts";
import type { DataSpec, Recipe } from "../check/recipe.ts";
import type { Code, Diagnostic, Severity } from "../diagnostics.ts";
import type { Graph } from "../graph.ts";
import type { LintSettings } from "./config.ts";

export type LintCode = Extract<Code, `AX5${string}`>;

export interface LintRuleInfo {
  code: LintCode;
  /** snake_case, read as what the rule allows when turned off: `unused_layer`. */
  name: string;
  /** The catalogue's severity: what the rule reports when alexc.json says nothing about it. */
  severity: Severity;
  /** One line, for `--help`-style lists and SARIF's shortDescription. */
  summary: string;
  /** Several paragraphs: what it finds, why it matters, how to fix it (`alexc explain`). */
  explanation: string;
}

export interface LintContext {
  source: string;
  ast: SourceFile;
  network: NetworkDecl;
  settings: LintSettings;
  report: (d: Diagnostic) => void;
}

/** A checked network: present for rules with `needs: "graph"` only. */
export interface GraphContext extends LintContext {
  graph: Graph;
  recipe: Recipe;
  data: DataSpec;
}

/**
 * `needs: "ast"` rules run on any file that parses (they see the text as written, so they also work
 * while the user is mid-edit and the checker reports errors); `needs: "graph"` rules run only on
 * files that check, because shapes, tower layouts and the recipe come from the checker.
 */
export type LintRule = Omit<LintRuleInfo, "severity"> &
  (
    | { needs: "ast"; check: (ctx: LintContext) => void }
    | { needs: "graph"; check: (ctx: GraphContext) => void }
  );
