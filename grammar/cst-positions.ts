// Source positions for the AST builder (to-ast.ts), read from tokens and from Chevrotain's location
// tracking. Error recovery inserts tokens with offsets -1 and leaves nodes with no real token, so a
// position is only ever taken from a real token, with a fallback for when there is none.
import type { CstNode, IToken } from "chevrotain";
import type * as ast from "./ast.ts";

export function isReal(token: IToken | undefined): token is IToken {
  return token !== undefined && token.isInsertedInRecovery !== true && token.startOffset >= 0;
}

function startOf(token: IToken): ast.Position {
  return { offset: token.startOffset, line: token.startLine ?? 1, column: token.startColumn ?? 1 };
}

/** Tokens never span a line break (tokens.ts), so the end is the start column plus the length. */
function endOf(token: IToken): ast.Position {
  const length = token.image.length;
  return {
    offset: token.startOffset + length,
    line: token.startLine ?? 1,
    column: (token.startColumn ?? 1) + length,
  };
}

export function tokenSpan(token: IToken): ast.Span {
  return { start: startOf(token), end: endOf(token) };
}

export function emptySpan(at: ast.Position): ast.Span {
  return { start: at, end: at };
}

/** The node's extent from Chevrotain's location tracking, or `fallback` if it holds no real token. */
export function nodeSpan(node: CstNode, fallback: ast.Position): ast.Span {
  const loc = node.location;
  if (loc === undefined || !(loc.startOffset >= 0) || loc.endOffset === undefined) return emptySpan(fallback);
  return {
    start: { offset: loc.startOffset, line: loc.startLine ?? 1, column: loc.startColumn ?? 1 },
    end: { offset: loc.endOffset + 1, line: loc.endLine ?? 1, column: (loc.endColumn ?? 0) + 1 },
  };
}

/** The end of the last real token among `tokens` (in source order), else `fallback`. */
export function after(fallback: ast.Position, ...tokens: (IToken | undefined)[]): ast.Position {
  for (let i = tokens.length - 1; i >= 0; i--) {
    const token = tokens[i];
    if (isReal(token)) return endOf(token);
  }
  return fallback;
}

/**
 * The node's first real token, for reporting on it. Follows Chevrotain's location down to the child
 * that starts where the node starts; children under one key are in source order, so each key costs
 * one look. (Scanning whole subtrees made nested lists quadratic.)
 */
export function firstToken(node: CstNode): IToken | undefined {
  const start = node.location?.startOffset ?? -1;
  if (start < 0) return undefined;
  for (const children of Object.values(node.children)) {
    for (const child of children) {
      const isToken = "image" in child;
      const childStart = isToken
        ? isReal(child)
          ? child.startOffset
          : -1
        : (child.location?.startOffset ?? -1);
      if (childStart < 0) continue; // inserted in recovery, or empty: try the next one
      if (childStart === start) return isToken ? child : firstToken(child);
      break;
    }
  }
  return undefined;
}

export function cover(a: ast.Span, b: ast.Span): ast.Span {
  return {
    start: a.start.offset <= b.start.offset ? a.start : b.start,
    end: a.end.offset >= b.end.offset ? a.end : b.end,
  };
}
