// Inline suppression comments, one line at a time (the DSL's comments are `#` and `//`):
//
//   # alexc-disable-next-line unused_layer, AX5005 -- why
//   drop3 = dropout(relu3, p: 0.1)   # alexc-disable-line dropout_on_conv
//
// Rules are named by code or name; none named means every lint rule. Only lint findings (AX5xxx)
// can be suppressed: an error from `alexc check` is a network that does not compile. A comment that
// suppresses nothing is itself a finding (unused_suppression), so stale ones do not pile up.
import type { Comment, SourceFile, Span } from "../../grammar/ast.ts";
import { diag, didYouMean, type Diagnostic, type TextEdit } from "../diagnostics.ts";
import type { LintCode, LintRuleInfo } from "./rule.ts";

const directive = /^(?:#|\/\/)\s*alexc-disable-(next-line|line)(?=\s|$)/;

interface Named {
  /** As written in the comment. */
  text: string;
  code?: LintCode;
  span: Span;
  used: boolean;
}

interface Suppression {
  comment: Comment;
  /** The line whose findings it suppresses. */
  line: number;
  /** Empty: every rule. */
  rules: Named[];
  usedAny: boolean;
}

export interface SuppressionResult {
  kept: Diagnostic[];
  /** unused_suppression and unknown_suppression findings, to be configured like any other. */
  findings: Diagnostic[];
}

/** Finds the directives in `file`'s comments; words that name no lint rule are reported. */
function readSuppressions(
  file: SourceFile,
  rules: readonly LintRuleInfo[],
  findings: Diagnostic[],
): Suppression[] {
  const byKey = new Map<string, LintRuleInfo>();
  for (const r of rules) {
    byKey.set(r.code, r);
    byKey.set(r.name, r);
  }
  const out: Suppression[] = [];
  for (const comment of file.comments) {
    const m = directive.exec(comment.text);
    if (!m) continue;
    // `-- reason` ends the list, as in ESLint.
    const listEnd = comment.text.indexOf(" --", m[0].length);
    const list = comment.text.slice(m[0].length, listEnd < 0 ? undefined : listEnd);
    const names: Named[] = [];
    for (const word of list.matchAll(/[^\s,]+/g)) {
      const at = m[0].length + word.index;
      const span = columnSpan(comment.span, at, word[0].length);
      const rule = byKey.get(word[0]) ?? byKey.get(word[0].replaceAll("-", "_"));
      if (!rule) {
        const isCode = /^AX\d{4}$/.test(word[0]);
        findings.push(
          diag("AX5027", { code: word[0] }, span, {
            notes: isCode
              ? ["only lint findings (AX5xxx) can be suppressed; errors from `alexc check` must be fixed"]
              : [],
            help: didYouMean(word[0], byKey.keys()) ?? "`alexc explain --list` lists the lint rules",
          }),
        );
        continue;
      }
      names.push({ text: word[0], code: rule.code, span, used: false });
    }
    // Names given but none a lint rule: each was reported above, and the comment covers nothing.
    if (names.length === 0 && /[^\s,]/.test(list)) continue;
    const line = comment.span.start.line + (m[1] === "next-line" ? 1 : 0);
    out.push({ comment, line, rules: names, usedAny: false });
  }
  return out;
}

/** A span inside one line, `length` characters from `at` characters after `base`'s start. */
function columnSpan(base: Span, at: number, length: number): Span {
  const start = { offset: base.start.offset + at, line: base.start.line, column: base.start.column + at };
  return { start, end: { offset: start.offset + length, line: start.line, column: start.column + length } };
}

const suppressible = (d: Diagnostic) => d.code.startsWith("AX5") && d.code !== "AX5090";

/** Drops the lint findings a directive covers and reports the directives (or names) that covered none. */
export function applySuppressions(
  diagnostics: readonly Diagnostic[],
  file: SourceFile,
  source: string,
  rules: readonly LintRuleInfo[],
): SuppressionResult {
  const findings: Diagnostic[] = [];
  const suppressions = readSuppressions(file, rules, findings);
  const byLine = new Map<number, Suppression[]>();
  for (const s of suppressions) byLine.set(s.line, [...(byLine.get(s.line) ?? []), s]);

  const kept = diagnostics.filter((d) => {
    if (!d.span || !suppressible(d)) return true;
    let suppressed = false;
    for (const s of byLine.get(d.span.start.line) ?? []) {
      if (s.rules.length === 0) {
        s.usedAny = suppressed = true;
        continue;
      }
      for (const named of s.rules)
        if (named.code === d.code) {
          named.used = suppressed = true;
          s.usedAny = true;
        }
    }
    return !suppressed;
  });

  for (const s of suppressions) {
    const unused = s.rules.filter((r) => !r.used);
    const whole = s.rules.length === 0 ? !s.usedAny : unused.length === s.rules.length;
    if (!whole && unused.length === 0) continue;
    const codes =
      whole && s.rules.length === 0 ? "every lint rule" : unused.map((r) => `\`${r.text}\``).join(", ");
    const edits = whole ? removeComment(s.comment, source) : removeNames(s.comment, unused);
    findings.push(
      diag("AX5026", { codes }, whole ? s.comment.span : unused[0].span, {
        notes:
          s.line === s.comment.span.start.line
            ? []
            : [`\`alexc-disable-next-line\` covers line ${s.line} only`],
        help: "remove it, or move it to the line that has the finding",
        fix: {
          description: whole ? "remove the comment" : `remove ${codes} from the comment`,
          edits,
          applicability: "safe",
        },
      }),
    );
  }
  return { kept, findings };
}

/** Deletes the comment; its whole line when nothing else is on it, else with the spaces before it. */
function removeComment(comment: Comment, source: string): TextEdit[] {
  const { start, end } = comment.span;
  const lineStart = start.offset - (start.column - 1);
  const before = source.slice(lineStart, start.offset);
  if (before.trim() === "") {
    // A comment runs to the end of its line, so its line break (`\n`, `\r\n` or a lone `\r`, as
    // in the lexer) starts right where it ends, unless the file ends there.
    const lineBreak = /^(?:\r\n?|\n)/.exec(source.slice(end.offset, end.offset + 2));
    return [
      {
        span: {
          start: { offset: lineStart, line: start.line, column: 1 },
          end: lineBreak
            ? { offset: end.offset + lineBreak[0].length, line: start.line + 1, column: 1 }
            : end,
        },
        text: "",
      },
    ];
  }
  const trimmed = before.length - before.trimEnd().length;
  return [
    {
      span: {
        start: { offset: start.offset - trimmed, line: start.line, column: start.column - trimmed },
        end,
      },
      text: "",
    },
  ];
}

/** Rewrites the comment without the unused names, keeping the directive, the used names and any reason. */
function removeNames(comment: Comment, unused: Named[]): TextEdit[] {
  const drop = new Set(unused.map((u) => u.span.start.offset));
  const m = directive.exec(comment.text)!;
  const listEnd = comment.text.indexOf(" --", m[0].length);
  const words = [...comment.text.slice(m[0].length, listEnd < 0 ? undefined : listEnd).matchAll(/[^\s,]+/g)];
  const keptWords = words
    .filter((w) => !drop.has(comment.span.start.offset + m[0].length + w.index))
    .map((w) => w[0]);
  const reason = listEnd < 0 ? "" : comment.text.slice(listEnd).trimEnd();
  return [{ span: comment.span, text: `${m[0]} ${keptWords.join(", ")}${reason}` }];
}
