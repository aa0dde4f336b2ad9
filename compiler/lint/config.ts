// alexc.json: per-rule severities and the thresholds that need judgement. Validated with a strict
// zod schema, so a misspelt key is an error at its line and column rather than a setting silently
// ignored. The file is found by walking up from the linted file's directory, as ESLint and
// Prettier find theirs; the first one found is the only one read (no merging up the tree).
//
//   { "lint": { "rules": { "unused_layer": "off", "AX5005": "error" },
//               "towerImbalance": { "flops": 0.1, "params": 0.25 },
//               "maxBindingBytes": 134217728,
//               "usualRanges": { "learningRate": [1e-5, 1] } } }
import { existsSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { z } from "zod";
import type { Span } from "../../grammar/ast.ts";
import { diag, didYouMean, type Diagnostic, type Severity } from "../diagnostics.ts";
import { JsonSyntaxError, parseJson, pathKey, showPath, type JsonPath } from "./json.ts";
import type { LintCode } from "./rule.ts";

export const CONFIG_FILE = "alexc.json";

/** `off` drops the rule's findings; the others replace the catalogue's severity. */
export type LintLevel = "off" | Severity;

export type Range = [number, number];

export interface LintSettings {
  /** tower_imbalance fires when the busier tower does more than (1 + this) × the lighter's work. */
  towerImbalance: { flops: number; params: number };
  /** binding_limit: WebGPU's default maxStorageBufferBindingSize, what every adapter grants. */
  maxBindingBytes: number;
  /** learning_rate_range, momentum_range, weight_decay_range: [low, high], inclusive. */
  usualRanges: { learningRate: Range; momentum: Range; weightDecay: Range };
}

export interface LintConfig {
  /** By rule code; a rule not named here keeps its catalogue severity. */
  rules: Partial<Record<LintCode, LintLevel>>;
  settings: LintSettings;
}

export const defaultSettings: LintSettings = {
  // FLOPs set the step time (the lighter tower waits); parameters only memory, which matters less
  // until it does not fit, so the paper's fc8 on tower 0 (+14 % parameters, +1 % FLOPs) passes.
  towerImbalance: { flops: 0.1, params: 0.25 },
  maxBindingBytes: 134_217_728,
  usualRanges: { learningRate: [1e-5, 1], momentum: [0, 0.99], weightDecay: [0, 0.01] },
};

export const defaultLintConfig: LintConfig = { rules: {}, settings: defaultSettings };

/** STYLE.md's allow / warn / deny are accepted as spellings of off / warning / error. */
const levelAliases: Record<string, LintLevel> = {
  off: "off",
  allow: "off",
  info: "info",
  warning: "warning",
  warn: "warning",
  error: "error",
  deny: "error",
};

const must = (what: string) => ({ error: `must be ${what}` });
const ratio = z.number(must("a number")).finite(must("finite")).min(0, must("≥ 0")).max(100, must("≤ 100"));
const range = z
  .tuple([z.number(must("a number")), z.number(must("a number"))], must("a pair `[low, high]`"))
  .refine(([lo, hi]) => lo <= hi && lo >= 0, must("a pair `[low, high]` with 0 ≤ low ≤ high"));
const level = z.string(must("a string")).refine((s) => Object.hasOwn(levelAliases, s), {
  error: "must be `off`, `info`, `warning` or `error` (or `allow`, `warn`, `deny`)",
});

const lintSchema = z.strictObject(
  {
    rules: z.record(z.string(), level, must("an object of rule → level")).optional(),
    towerImbalance: z.strictObject({ flops: ratio, params: ratio }).partial().optional(),
    maxBindingBytes: z.number(must("a number")).int(must("an integer")).positive(must("positive")).optional(),
    usualRanges: z
      .strictObject({ learningRate: range, momentum: range, weightDecay: range })
      .partial()
      .optional(),
  },
  must("an object"),
);

/** The whole file. Other commands may claim top-level keys of their own here later. */
export const configSchema = z.strictObject(
  { $schema: z.string(must("a string")).optional(), lint: lintSchema.optional() },
  must("an object"),
);

export interface RuleNames {
  /** Every lint code and rule name (snake_case) → the code. */
  resolve: (key: string) => LintCode | undefined;
  all: readonly string[];
}

/**
 * Reads the text of an alexc.json (diagnostics carry spans into that text); `rules` resolves names and codes
 * (index.ts passes the rule table, so this module needs no import of the rules). Problems are
 * AX5090 errors with a span into the JSON text; the config returned holds what was valid.
 */
export function parseLintConfig(
  text: string,
  rules: RuleNames,
): { config: LintConfig; diagnostics: Diagnostic[] } {
  const diagnostics: Diagnostic[] = [];
  const problem = (message: string, span: Span | undefined, help?: string) =>
    diagnostics.push(diag("AX5090", { problem: message }, span, { help }));

  let doc;
  try {
    doc = parseJson(text);
  } catch (e) {
    if (!(e instanceof JsonSyntaxError)) throw e;
    problem(`invalid JSON: ${e.message}`, e.span);
    return { config: defaultLintConfig, diagnostics };
  }
  const spanOf = (path: JsonPath) => {
    // The nearest enclosing path that has a span (a missing key points at its object).
    for (let n = path.length; n >= 0; n--) {
      const span = doc.spans.get(pathKey(path.slice(0, n)));
      if (span) return span;
    }
    return undefined;
  };

  const parsed = configSchema.safeParse(doc.value);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      const path = issue.path.filter((p): p is string | number => typeof p !== "symbol");
      if (issue.code === "unrecognized_keys") {
        const known = knownKeys(path);
        for (const key of issue.keys)
          problem(
            `unknown key \`${showPath([...path, key])}\``,
            spanOf([...path, key]),
            didYouMean(key, known) ??
              (known.length ? `known keys: ${known.map((k) => `\`${k}\``).join(", ")}` : undefined),
          );
      } else problem(`\`${showPath(path) || "(the file)"}\` ${issue.message}`, spanOf(path));
    }
    return { config: defaultLintConfig, diagnostics };
  }

  const lint = parsed.data.lint ?? {};
  const config: LintConfig = {
    rules: {},
    settings: {
      towerImbalance: { ...defaultSettings.towerImbalance, ...lint.towerImbalance },
      maxBindingBytes: lint.maxBindingBytes ?? defaultSettings.maxBindingBytes,
      usualRanges: { ...defaultSettings.usualRanges, ...lint.usualRanges },
    },
  };
  const given = new Map<LintCode, string>();
  for (const [key, value] of Object.entries(lint.rules ?? {})) {
    const path = ["lint", "rules", key];
    const code = rules.resolve(key);
    if (!code) {
      const isCatalogueCode = /^AX[1-9]\d{3}$/.test(key);
      problem(
        isCatalogueCode ? `\`${key}\` is not a lint rule` : `unknown lint rule \`${key}\``,
        spanOf(path),
        isCatalogueCode
          ? "only AX5xxx lint rules have a configurable severity; `alexc explain` lists them"
          : (didYouMean(key, rules.all) ?? "`alexc explain --list` lists the rules"),
      );
      continue;
    }
    const earlier = given.get(code);
    if (earlier !== undefined) {
      problem(`\`${key}\` and \`${earlier}\` name the same rule ${code}`, spanOf(path), "keep one of them");
      continue;
    }
    given.set(code, key);
    config.rules[code] = levelAliases[value];
  }
  return { config, diagnostics };
}

function knownKeys(path: JsonPath): string[] {
  let schema: z.ZodType = configSchema;
  for (const p of path) {
    const shape = objectShape(schema);
    if (!shape || typeof p !== "string" || !(p in shape)) return [];
    schema = shape[p];
  }
  return Object.keys(objectShape(schema) ?? {});
}

function objectShape(schema: z.ZodType): Record<string, z.ZodType> | undefined {
  let s: z.ZodType = schema;
  while (s instanceof z.ZodOptional) s = s.unwrap() as z.ZodType;
  return s instanceof z.ZodObject ? (s.shape as Record<string, z.ZodType>) : undefined;
}

/**
 * The alexc.json nearest to `startDir` (that directory or any above it) and its diagnostics. No
 * file: the defaults and no path. A file that cannot be read is an AX5090 error, like a bad one.
 */
export function findLintConfig(
  startDir: string,
  rules: RuleNames,
): { config: LintConfig; path?: string; diagnostics: Diagnostic[] } {
  for (let dir = resolve(startDir); ;) {
    const path = join(dir, CONFIG_FILE);
    if (existsSync(path)) return { path, ...readLintConfig(path, rules) };
    const parent = dirname(dir);
    if (parent === dir) return { config: defaultLintConfig, diagnostics: [] };
    dir = parent;
  }
}

export function readLintConfig(
  path: string,
  rules: RuleNames,
): { config: LintConfig; diagnostics: Diagnostic[] } {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    const reason = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
    return {
      config: defaultLintConfig,
      diagnostics: [diag("AX5090", { problem: `cannot read ${path} (${reason})` }, undefined)],
    };
  }
  return parseLintConfig(text, rules);
}
