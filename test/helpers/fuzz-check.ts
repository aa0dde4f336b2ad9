// The front end's contract on any text, checked stage by stage (issue #6, point 5): parse → check
// (compileSource) → lintSource → formatSource, and the lint fixes. Shared by bench/fuzz.ts (100,000
// inputs) and test/compiler/frontend-fuzz.test.ts (a few thousand in CI).
import { catalogue, type Diagnostic } from "../../compiler/diagnostics.ts";
import { compileSource } from "../../compiler/frontend.ts";
import { applyFixes, fixSource } from "../../compiler/lint/fix.ts";
import { defaultLintConfig, lintSource } from "../../compiler/lint/index.ts";
import type { Position, SourceFile, Span } from "../../grammar/ast.ts";
import { formatSource } from "../../grammar/format.ts";
import { parse } from "../../grammar/parse.ts";
import { generateInput } from "./fuzz-inputs.ts";

/** One broken promise: `check` names it (failures with the same name are one bug, usually). */
export interface Failure {
  check: string;
  detail: string;
}

/** Line starts under the lexer's rule: a line ends at `\n`, `\r\n` or `\r`. */
class Lines {
  private readonly starts = [0];
  private readonly text: string;

  constructor(text: string) {
    this.text = text;
    for (const match of text.matchAll(/\r\n?|\n/g)) this.starts.push(match.index + match[0].length);
  }

  /** Why `p` is not a position of the text, or undefined. */
  problem(p: Position): string | undefined {
    if (!(Number.isInteger(p.offset) && p.offset >= 0 && p.offset <= this.text.length))
      return `offset ${p.offset} outside 0..${this.text.length}`;
    if (this.text[p.offset - 1] === "\r" && this.text[p.offset] === "\n")
      return `offset ${p.offset} inside a \\r\\n`;
    let lo = 0;
    let hi = this.starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.starts[mid] <= p.offset) lo = mid;
      else hi = mid - 1;
    }
    const line = lo + 1;
    const column = p.offset - this.starts[lo] + 1;
    if (p.line !== line || p.column !== column)
      return `offset ${p.offset} is at ${line}:${column}, not ${p.line}:${p.column}`;
    return undefined;
  }

  spanProblem(span: Span): string | undefined {
    const problem = this.problem(span.start) ?? this.problem(span.end);
    if (problem) return problem;
    return span.start.offset <= span.end.offset ? undefined : `span ends before it starts`;
  }
}

/** Every span anywhere under `node`. */
function* spansIn(node: unknown): Generator<Span> {
  if (Array.isArray(node)) for (const child of node) yield* spansIn(child);
  else if (node !== null && typeof node === "object")
    for (const [key, child] of Object.entries(node)) {
      if (key === "span" && child !== undefined) yield child as Span;
      else yield* spansIn(child);
    }
}

/** The AST without spans, as a string: what "the same tree" compares. */
const treeOf = (file: SourceFile) =>
  JSON.stringify(file.items, (key, value) => (key === "span" ? undefined : value));

const codesOf = (ds: readonly Diagnostic[]) => ds.map((d) => `${d.code} ${d.message}`).sort();

const sameList = (a: string[], b: string[]) => a.length === b.length && a.every((x, i) => x === b[i]);

function shortList(xs: string[]): string {
  return xs.length > 6 ? `${xs.slice(0, 6).join("; ")}; …` : xs.join("; ");
}

/** Checks every promise on `text`; returns the broken ones (empty: all kept). */
export function checkFrontEnd(text: string): Failure[] {
  const failures: Failure[] = [];
  const fail = (check: string, detail: string) => failures.push({ check, detail });
  const lines = new Lines(text);
  const stage = <T>(name: string, run: () => T): T | undefined => {
    try {
      return run();
    } catch (error) {
      const detail = error instanceof Error ? (error.stack ?? error.message) : String(error);
      fail(`${name} throws`, detail.split("\n").slice(0, 6).join("\n"));
      return undefined;
    }
  };
  /** Diagnostics from `stage` on `source`: known codes, no internal errors, spans inside the text. */
  const wellFormed = (name: string, diagnostics: readonly Diagnostic[], on = lines) => {
    for (const d of diagnostics) {
      if (!Object.hasOwn(catalogue, d.code)) fail(`${name}: unknown code`, d.code);
      if (d.code === "AX9001") fail(`${name}: AX9001`, d.message);
      if (!d.message) fail(`${name}: empty message`, d.code);
      const spans = [d.span, ...d.labels.map((l) => l.span), ...(d.fix?.edits.map((e) => e.span) ?? [])];
      for (const span of spans) {
        const problem = span && on.spanProblem(span);
        if (problem) fail(`${name}: ${d.code} span`, `${problem} (${d.message})`);
      }
    }
  };

  const parsed = stage("parse", () => parse(text));
  if (!parsed) return failures;
  wellFormed("parse", parsed.diagnostics);
  for (const span of spansIn(parsed.ast)) {
    const problem = lines.spanProblem(span);
    if (problem) {
      fail("parse: AST span", problem);
      break;
    }
  }
  const compiled = stage("compileSource", () => compileSource(text));
  if (compiled) wellFormed("compileSource", compiled.diagnostics);
  const linted = stage("lintSource", () => lintSource(text, { config: defaultLintConfig }));
  if (linted) wellFormed("lintSource", linted);
  const formatted = stage("formatSource", () => formatSource(text));
  const clean = parsed.diagnostics.length === 0;

  if (formatted && !formatted.ok) {
    wellFormed("formatSource", formatted.diagnostics);
    if (clean) fail("formatSource refuses a file that parses", shortList(codesOf(formatted.diagnostics)));
  }
  if (formatted?.ok && !clean) fail("formatSource formats a file with syntax errors", "");
  if (formatted?.ok && clean) {
    const printed = formatted.text;
    const reparsed = parse(printed);
    if (reparsed.diagnostics.length > 0)
      fail("format: output does not parse", shortList(codesOf(reparsed.diagnostics)));
    else if (treeOf(reparsed.ast) !== treeOf(parsed.ast)) fail("format: changes the AST", "");
    const comments = (file: SourceFile) => file.comments.map((c) => c.text.trimEnd()).join("\n");
    if (comments(reparsed.ast) !== comments(parsed.ast)) fail("format: changes the comments", "");
    const again = stage("formatSource (second time)", () => formatSource(printed));
    if (again && (!again.ok || again.text !== printed)) fail("format: not idempotent", "");
    const recompiled = stage("compileSource (formatted)", () => compileSource(printed));
    if (recompiled && compiled) {
      wellFormed("compileSource (formatted)", recompiled.diagnostics, new Lines(printed));
      const before = codesOf(compiled.diagnostics);
      const after = codesOf(recompiled.diagnostics);
      if (!sameList(before, after))
        fail("format: changes the diagnostics", `before: ${shortList(before)}\nafter: ${shortList(after)}`);
    }
  }

  if (clean && linted?.some((d) => d.fix)) {
    for (const [which, accept] of [
      ["every fix", () => true],
      ["safe fixes", undefined],
    ] as const) {
      const fixed = stage(`applyFixes (${which})`, () => applyFixes(text, linted, accept));
      const errors = fixed && parse(fixed.text).diagnostics;
      if (errors?.length) fail(`applyFixes (${which}): result does not parse`, shortList(codesOf(errors)));
    }
    if (linted.some((d) => d.fix?.applicability === "safe")) {
      const result = stage("fixSource", () => fixSource(text, { config: defaultLintConfig }));
      if (result) {
        const errors = parse(result.text).diagnostics;
        if (errors.length) fail("fixSource: result does not parse", shortList(codesOf(errors)));
        wellFormed("fixSource", result.diagnostics, new Lines(result.text));
      }
    }
  }
  return failures;
}

// ---- runs -------------------------------------------------------------------------------------------

export interface FuzzCase {
  index: number;
  generator: string;
  text: string;
  failures: Failure[];
  ms: number;
}

export interface FuzzSummary {
  seed: number;
  start: number;
  count: number;
  perGenerator: Record<string, number>;
  /** Failing inputs, at most `keepPerCheck` for each check name. */
  failing: FuzzCase[];
  /** Failing inputs per check name, all of them counted. */
  failuresPerCheck: Record<string, number>;
  slowest: Omit<FuzzCase, "text" | "failures"> & { length: number };
  ms: number;
}

export interface FuzzOptions {
  seed: number;
  count: number;
  start?: number;
  /** An input taking longer than this is a failure (a hang in the making); generous by default. */
  slowMs?: number;
  keepPerCheck?: number;
  onProgress?: (done: number, summary: FuzzSummary) => void;
}

export function runFuzz(options: FuzzOptions): FuzzSummary {
  const { seed, count, start = 0, slowMs = 10_000, keepPerCheck = 3 } = options;
  const summary: FuzzSummary = {
    seed,
    start,
    count: 0,
    perGenerator: {},
    failing: [],
    failuresPerCheck: {},
    slowest: { index: -1, generator: "", ms: 0, length: 0 },
    ms: 0,
  };
  const began = performance.now();
  for (let index = start; index < start + count; index++) {
    const { generator, text } = generateInput(seed, index);
    const t = performance.now();
    const failures = checkFrontEnd(text);
    const ms = performance.now() - t;
    if (ms > slowMs) failures.push({ check: "slow", detail: `${ms.toFixed(0)} ms (limit ${slowMs} ms)` });
    summary.count++;
    summary.perGenerator[generator] = (summary.perGenerator[generator] ?? 0) + 1;
    if (ms > summary.slowest.ms) summary.slowest = { index, generator, ms, length: text.length };
    let keep = false;
    for (const check of new Set(failures.map((f) => f.check))) {
      const seen = summary.failuresPerCheck[check] ?? 0;
      summary.failuresPerCheck[check] = seen + 1;
      keep ||= seen < keepPerCheck;
    }
    if (keep) summary.failing.push({ index, generator, text, failures, ms });
    options.onProgress?.(summary.count, summary);
  }
  summary.ms = performance.now() - began;
  return summary;
}

/**
 * Shrinks `text` while `stillFails` holds (delta debugging over lines, then characters), within a
 * time budget: a reproducer of a few lines instead of a whole mutated model.
 */
export function minimize(text: string, stillFails: (text: string) => boolean, budgetMs = 30_000): string {
  const deadline = performance.now() + budgetMs;
  const shrink = (parts: string[]): string[] => {
    let chunk = Math.max(1, Math.floor(parts.length / 2));
    while (chunk >= 1 && performance.now() < deadline) {
      let removed = false;
      for (let i = 0; i < parts.length && performance.now() < deadline;) {
        const candidate = [...parts.slice(0, i), ...parts.slice(i + chunk)];
        if (candidate.length < parts.length && stillFails(candidate.join(""))) {
          parts = candidate;
          removed = true;
        } else i += chunk;
      }
      if (!removed) chunk = Math.floor(chunk / 2);
    }
    return parts;
  };
  const byLine = shrink(text.split(/(?<=\n)/)).join("");
  return shrink([...byLine]).join("");
}
