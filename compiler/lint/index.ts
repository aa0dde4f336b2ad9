// `alexc lint` as a library: everything `alexc check` reports plus the lint rules' findings, with the
// severities of alexc.json and the suppression comments applied. The CLI (command.ts), the language
// server and the benchmark all call `lintSource`, so they agree on every finding.
import { dirname } from "node:path";
import type { NetworkDecl } from "../../grammar/ast.ts";
import { catalogue, diag, type Diagnostic } from "../diagnostics.ts";
import { compileSource } from "../frontend.ts";
import {
  defaultLintConfig,
  findLintConfig,
  parseLintConfig as parseConfig,
  type LintConfig,
  type LintLevel,
  type RuleNames,
} from "./config.ts";
import type { GraphContext, LintCode, LintContext, LintRule, LintRuleInfo } from "./rule.ts";
import { allRules } from "./rules/index.ts";
import { applySuppressions } from "./suppress.ts";

export type { LintConfig, LintLevel, LintSettings } from "./config.ts";
export { CONFIG_FILE, defaultLintConfig } from "./config.ts";
export type { LintCode, LintRuleInfo } from "./rule.ts";

export interface LintOptions {
  /** Severities and thresholds; absent: the alexc.json nearest to `file`, else the defaults. */
  config?: LintConfig;
  /** The file's path, to find its alexc.json when `config` is absent. */
  file?: string;
}

/** Rules that belong to the suppression machinery rather than to a check of the network. */
const suppressionRules: LintRuleInfo[] = [
  {
    code: "AX5026",
    name: "unused_suppression",
    severity: catalogue.AX5026.severity,
    summary: "a suppression comment that suppresses nothing",
    explanation: `A \`# alexc-disable-line\` or \`# alexc-disable-next-line\` comment whose rules report nothing on
the line it covers. It usually outlived the finding it was written for (the layer was fixed or
renamed), or sits one line off. Left in place it would silently hide the next, unrelated finding
there.

Fix: remove the comment, or the names in it that no longer apply. \`alexc lint --fix\` does this.`,
  },
  {
    code: "AX5027",
    name: "unknown_suppression",
    severity: catalogue.AX5027.severity,
    summary: "a suppression comment names something that is not a lint rule",
    explanation: `A suppression comment names a code or rule that does not exist, often a typo (\`AX5100\`,
\`unused_layers\`), or an error code from \`alexc check\`. Check errors cannot be suppressed: a
network with one does not compile. The misspelt name suppresses nothing, so the finding it was
meant for still shows.

Fix: spell the rule's code or name as \`alexc explain --list\` prints it.`,
  },
];

/** Every lint rule with its catalogue severity, in code order: `alexc explain` and SARIF read this. */
export const lintRules: readonly LintRuleInfo[] = [
  ...allRules.map(({ code, name, summary, explanation }) => ({
    code,
    name,
    severity: catalogue[code].severity,
    summary,
    explanation,
  })),
  ...suppressionRules,
].sort((a, b) => a.code.localeCompare(b.code));

const ruleByKey = new Map<string, LintRuleInfo>();
for (const r of lintRules) {
  ruleByKey.set(r.code, r);
  ruleByKey.set(r.name, r);
}

/** A rule by code (`AX5001`) or name (`unused_layer`, or `unused-layer`). */
export function findRule(key: string): LintRuleInfo | undefined {
  return ruleByKey.get(key) ?? ruleByKey.get(key.replaceAll("-", "_"));
}

export const ruleNames: RuleNames = {
  resolve: (key) => findRule(key)?.code,
  all: lintRules.flatMap((r) => [r.code, r.name]),
};

/** The alexc.json nearest to `startDir` (or above it), validated; the defaults when there is none. */
export function loadLintConfig(startDir: string): {
  config: LintConfig;
  path?: string;
  diagnostics: Diagnostic[];
} {
  return findLintConfig(startDir, ruleNames);
}

/** Validates the text of an alexc.json (for an editor showing its problems as it is typed). */
export function parseLintConfig(text: string): { config: LintConfig; diagnostics: Diagnostic[] } {
  return parseConfig(text, ruleNames);
}

export function lintSource(source: string, options: LintOptions = {}): Diagnostic[] {
  const config =
    options.config ?? (options.file ? loadLintConfig(dirname(options.file)).config : defaultLintConfig);
  const front = compileSource(source);
  // Lint rules read the text as written; after a syntax error that text is a guess of the parser's
  // recovery, and a finding on it would be noise next to the error that matters.
  const syntaxError = front.diagnostics.some((d) => d.code.startsWith("AX1") && d.severity === "error");
  const networks = front.ast.items.filter((i): i is NetworkDecl => i.kind === "Network");
  if (syntaxError || networks.length !== 1) return sortByPosition(front.diagnostics);

  const findings: Diagnostic[] = [];
  const base: LintContext = {
    source,
    ast: front.ast,
    network: networks[0],
    settings: config.settings,
    report: (d) => findings.push(d),
  };
  const graphCtx: GraphContext | undefined =
    front.graph && front.recipe && front.data
      ? { ...base, graph: front.graph, recipe: front.recipe, data: front.data }
      : undefined;
  for (const rule of allRules) {
    try {
      if (rule.needs === "ast") rule.check(base);
      else if (graphCtx) rule.check(graphCtx);
    } catch (e) {
      // A rule that throws is a bug in alexc; it costs its own findings, never the others'.
      const message = `lint rule \`${rule.name}\` failed: ${(e as Error).message ?? e}`;
      findings.push(diag("AX9001", { message }, networks[0].name.span));
    }
  }

  const { kept, findings: directiveFindings } = applySuppressions(
    dedupe(findings),
    front.ast,
    source,
    lintRules,
  );
  const configured = withLevels([...kept, ...directiveFindings], config);
  return sortByPosition([...front.diagnostics, ...configured]);
}

/** Applies alexc.json's levels; the first finding of each rule says how to change its level. */
function withLevels(findings: Diagnostic[], config: LintConfig): Diagnostic[] {
  const out: Diagnostic[] = [];
  const explained = new Set<string>();
  for (const d of findings) {
    const rule = d.code.startsWith("AX5") ? findRule(d.code) : undefined;
    if (!rule) {
      out.push(d);
      continue;
    }
    const level: LintLevel = config.rules[rule.code as LintCode] ?? rule.severity;
    if (level === "off") continue;
    const notes = [...d.notes];
    if (!explained.has(rule.code)) {
      explained.add(rule.code);
      const origin = config.rules[rule.code as LintCode] ? "set in alexc.json" : "the default";
      notes.push(
        `\`${rule.name}\` is ${article(level)} ${level} (${origin}); \`alexc explain ${rule.code}\` says more`,
      );
    }
    out.push({ ...d, severity: level, notes });
  }
  return out;
}

const article = (level: string) => (level === "info" ? "an" : level === "error" ? "an" : "a");

/** A block instantiated twice reports its inner layers' findings twice at the same place. */
function dedupe(diagnostics: Diagnostic[]): Diagnostic[] {
  const seen = new Set<string>();
  return diagnostics.filter((d) => {
    const key = `${d.code}:${d.span?.start.offset}:${d.span?.end.offset}:${d.message}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

function sortByPosition(diagnostics: Diagnostic[]): Diagnostic[] {
  const at = (d: Diagnostic) => d.span?.start.offset ?? Number.POSITIVE_INFINITY;
  return diagnostics
    .map((d, i) => ({ d, i }))
    .sort((a, b) => at(a.d) - at(b.d) || a.i - b.i)
    .map(({ d }) => d);
}

export type { LintRule };
