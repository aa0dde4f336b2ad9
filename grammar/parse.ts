// Text → AST plus syntax diagnostics (AX1001–AX1004). `parse` never throws: every lexical and
// syntactic problem is a diagnostic, and the AST holds whatever survived error recovery.
//
// Pipeline: lex (tokens.ts) → limit nesting → parse to a CST with recovery (parser.ts) → build the
// AST (to-ast.ts). Each offending token gets at most one diagnostic, the first found: a lexical one
// (bad character, unterminated string) wins over a parser error on the same token.
import type { IRecognitionException, IToken } from "chevrotain";
import { diag, type Diagnostic } from "../compiler/diagnostics.ts";
import type { Comment, Position, SourceFile, Span } from "./ast.ts";
import { tokenSpan } from "./cst-positions.ts";
import { describeFound, parser, quoteSource as quote } from "./parser.ts";
import { buildItems } from "./to-ast.ts";
import {
  Identifier,
  LBracket,
  lexer,
  LParen,
  Minus,
  RBracket,
  RParen,
  UnterminatedString,
} from "./tokens.ts";

/** Past this many syntax errors the rest are noise; the cap also bounds work on garbage input. */
export const MAX_SYNTAX_ERRORS = 50;

/**
 * Deepest nesting of `(`, `[` and unary `-` the parser is given. The parser and the AST builder are
 * recursive, so without a limit `((((…` a hundred thousand deep would overflow the stack; no real
 * network needs more than a handful of levels (compare rustc's `recursion_limit`).
 */
export const MAX_NESTING = 64;

/**
 * Longest text lexed, and most tokens parsed. Lexing costs about 100 bytes a token and parsing
 * about a kilobyte, so these bound the front end's memory near a gigabyte whatever the input; a
 * network of 10,000 convolutions is about 300,000 tokens. Past either, the file is one AX1006.
 */
export const MAX_SOURCE_LENGTH = 8 * 2 ** 20;
export const MAX_TOKENS = 500_000;

export interface ParseResult {
  ast: SourceFile;
  diagnostics: Diagnostic[];
}

export function parse(text: string): ParseResult {
  try {
    return parseText(text);
  } catch (error) {
    // Unreachable by design (the fuzz tests hold it to that); a bug must not become a crash.
    const end = endPosition(text);
    const message = error instanceof Error ? error.message : String(error);
    return {
      ast: { kind: "SourceFile", items: [], comments: [], span: { start: origin, end } },
      diagnostics: [diag("AX9001", { message }, undefined)],
    };
  }
}

const origin: Position = { offset: 0, line: 1, column: 1 };

function parseText(text: string): ParseResult {
  const end = endPosition(text);
  if (text.length > MAX_SOURCE_LENGTH) {
    const cut =
      MAX_SOURCE_LENGTH - (text.slice(MAX_SOURCE_LENGTH - 1, MAX_SOURCE_LENGTH + 1) === "\r\n" ? 1 : 0);
    const at = endPosition(text.slice(0, cut));
    const limit = `${MAX_SOURCE_LENGTH} characters`;
    return tooLarge(diag("AX1006", { limit }, { start: at, end: at }), end);
  }
  const lexed = lexer.tokenize(text);
  const pastLimit = tokenPastLimit([lexed.tokens, lexed.groups.errors ?? [], lexed.groups.comments ?? []]);
  if (pastLimit) {
    const limit = `${MAX_TOKENS} tokens`;
    return tooLarge(diag("AX1006", { limit }, tokenSpan(pastLimit)), end);
  }
  const diagnostics = new DiagnosticSet();

  for (const token of lexed.groups.errors ?? []) {
    diagnostics.add(token.startOffset, unexpectedCharacters(token));
  }
  // Unreachable while `Unknown` catches everything, but a lexer error must never be lost.
  for (const error of lexed.errors) {
    const span = spanAt(error.line ?? 1, error.column ?? 1, error.offset, error.length);
    diagnostics.add(
      error.offset,
      diag("AX1003", { char: quote(text.slice(error.offset, error.offset + error.length)) }, span),
    );
  }
  for (const token of lexed.tokens) {
    if (token.tokenType === UnterminatedString) {
      diagnostics.add(token.startOffset, diag("AX1002", {}, tokenSpan(token)));
    }
  }

  const { tokens, tooDeep } = limitNesting(lexed.tokens);
  if (tooDeep !== undefined) {
    const expected = `at most ${MAX_NESTING} nested brackets and \`-\` signs`;
    diagnostics.add(
      tooDeep.startOffset,
      diag("AX1001", { expected, found: quote(tooDeep.image) }, tokenSpan(tooDeep)),
    );
  }

  parser.start(tokens, MAX_SYNTAX_ERRORS + 1);
  const cst = parser.file();
  const truncated = parser.stoppedEarly;
  for (const error of parser.errors.slice(0, MAX_SYNTAX_ERRORS + 1)) {
    const offset = isEof(error.token) ? text.length : error.token.startOffset;
    diagnostics.add(offset, syntaxError(error, end));
  }

  const built = buildItems(cst, end);
  for (const d of built.diagnostics) diagnostics.add(d.span?.start.offset ?? 0, d);

  const comments: Comment[] = (lexed.groups.comments ?? []).map((token) => ({
    text: token.image,
    span: tokenSpan(token),
  }));
  return {
    ast: { kind: "SourceFile", items: built.items, comments, span: { start: origin, end } },
    diagnostics: diagnostics.sorted(truncated),
  };
}

/**
 * The first token past MAX_TOKENS in source order, counting bad characters and comments too (each
 * becomes a diagnostic or a comment node), or undefined. `groups` are each in source order.
 */
function tokenPastLimit(groups: IToken[][]): IToken | undefined {
  if (groups.reduce((sum, g) => sum + g.length, 0) <= MAX_TOKENS) return undefined;
  const next = groups.map(() => 0);
  for (let counted = 0; ; counted++) {
    let first = -1;
    for (const [g, group] of groups.entries()) {
      const token = group[next[g]];
      if (token && (first < 0 || token.startOffset < groups[first][next[first]].startOffset)) first = g;
    }
    if (counted === MAX_TOKENS) return groups[first][next[first]];
    next[first]++;
  }
}

/** A file past the limits: no tree, one diagnostic (compileSource then checks nothing). */
function tooLarge(diagnostic: Diagnostic, end: Position): ParseResult {
  return {
    ast: { kind: "SourceFile", items: [], comments: [], span: { start: origin, end } },
    diagnostics: [diagnostic],
  };
}

// ---- diagnostics ---------------------------------------------------------------------------------------

/** At most one diagnostic per offending token (keyed by its offset), in source order, capped. */
class DiagnosticSet {
  private readonly byOffset = new Map<number, Diagnostic>();

  add(offset: number, diagnostic: Diagnostic): void {
    if (!this.byOffset.has(offset)) this.byOffset.set(offset, diagnostic);
  }

  /** `truncated`: the parser stopped early, so there may be errors no one has seen. */
  sorted(truncated: boolean): Diagnostic[] {
    const all = [...this.byOffset.entries()].sort((a, b) => a[0] - b[0]).map(([, d]) => d);
    if (all.length <= MAX_SYNTAX_ERRORS && !truncated) return all;
    const kept = all.slice(0, MAX_SYNTAX_ERRORS);
    const last = kept[kept.length - 1];
    kept[kept.length - 1] = { ...last, notes: [...last.notes, `stopped after ${kept.length} syntax errors`] };
    return kept;
  }
}

function syntaxError(error: IRecognitionException, end: Position): Diagnostic {
  // The parser's message provider (parser.ts) produced the "expected …" half.
  const token = error.token;
  const span = isEof(token) ? { start: end, end } : tokenSpan(token);
  return diag("AX1001", { expected: error.message, found: describeFound(token) }, span);
}

/** A run of characters that cannot start a token is one `Unknown` token and one diagnostic. */
function unexpectedCharacters(token: IToken): Diagnostic {
  const first = String.fromCodePoint(token.image.codePointAt(0) ?? 0);
  const rest = token.image.length - first.length;
  const notes = rest > 0 ? [`followed by ${rest} more unexpected character(s)`] : [];
  return diag("AX1003", { char: quote(first) }, tokenSpan(token), { notes });
}

// ---- nesting limit -------------------------------------------------------------------------------------

/**
 * Drops tokens that would nest deeper than MAX_NESTING: an opening bracket past the limit (and its
 * matching closer, and the name just before a `(`, whose call it was), or a `-` past the limit in a
 * run of unary minuses. What is left then parses: `f(f(…f(1)…))` keeps its innermost `1` as the
 * argument of the deepest call kept, instead of a run of names with no commas between them. Each
 * opening bracket's level includes the `-` signs just before it, as `-(-(-(…` recurses once per
 * sign and once per bracket. Returns the first dropped token, to report once.
 */
function limitNesting(tokens: IToken[]): { tokens: IToken[]; tooDeep?: IToken } {
  const kept: IToken[] = [];
  const levels: number[] = [];
  let depth = 0;
  let minusRun = 0;
  let droppedOpeners = 0;
  let tooDeep: IToken | undefined;
  for (const token of tokens) {
    const type = token.tokenType;
    let drop = false;
    if (type === LParen || type === LBracket) {
      const level = minusRun + 1;
      drop = droppedOpeners > 0 || depth + level > MAX_NESTING;
      if (drop) {
        droppedOpeners++;
        if (type === LParen && kept.at(-1)?.tokenType === Identifier) kept.pop();
      } else {
        levels.push(level);
        depth += level;
      }
      minusRun = 0;
    } else if (type === RParen || type === RBracket) {
      if (droppedOpeners > 0) {
        drop = true;
        droppedOpeners--;
      } else depth -= levels.pop() ?? 0;
      minusRun = 0;
    } else if (type === Minus) {
      drop = depth + minusRun + 1 > MAX_NESTING;
      if (!drop) minusRun++;
    } else minusRun = 0;
    if (!drop) kept.push(token);
    else tooDeep ??= token;
  }
  return tooDeep === undefined ? { tokens } : { tokens: kept, tooDeep };
}

// ---- positions -----------------------------------------------------------------------------------------

function isEof(token: IToken): boolean {
  return token.tokenType.name === "EOF" || !(token.startOffset >= 0);
}

function spanAt(line: number, column: number, offset: number, length: number): Span {
  return { start: { offset, line, column }, end: { offset: offset + length, line, column: column + length } };
}

/** The position just past the text; lines end at `\n`, `\r\n` or `\r`, as in the lexer. */
function endPosition(text: string): Position {
  let line = 1;
  let lineStart = 0;
  for (const match of text.matchAll(/\r\n?|\n/g)) {
    line++;
    lineStart = match.index + match[0].length;
  }
  return { offset: text.length, line, column: text.length - lineStart + 1 };
}
