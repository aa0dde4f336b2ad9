// Tokens of the `.net` language (docs/language.md, "Lexical"), in the order the lexer tries them.
//
// The order is deliberate:
//   1. trivia (whitespace, comments) first, so `//` is never read as two `/`;
//   2. keywords before `Identifier`, each with `longer_alt: Identifier` so `networks` stays a name;
//   3. literals, then punctuation;
//   4. the error-catching tokens last: `UnterminatedString` (after `StringLit`) and `Unknown`, which
//      together guarantee that every input tokenizes without a lexer error, so every lexical problem
//      becomes one of our diagnostics (AX1002, AX1003) instead of Chevrotain's generic message.
//
// Invariant relied on by to-ast.ts and parse.ts: no token the parser sees, and no comment, spans a
// line break, so a token's end position is its start column plus its length.
import { createToken, Lexer, type TokenType } from "chevrotain";

// ---- trivia ---------------------------------------------------------------------------------------

export const Whitespace = createToken({
  name: "Whitespace",
  pattern: /\s+/,
  group: Lexer.SKIPPED,
  line_breaks: true,
});

/** `# …` and `// …` up to the end of the line; kept in a group for the formatter. */
export const Comment = createToken({
  name: "Comment",
  pattern: /#[^\r\n]*|\/\/[^\r\n]*/,
  group: "comments",
  start_chars_hint: ["#", "/"],
  line_breaks: false,
});

// ---- names and keywords ---------------------------------------------------------------------------

export const Identifier = createToken({
  name: "Identifier",
  pattern: /[A-Za-z_][A-Za-z0-9_]*/,
  label: "a name",
});

function keyword(word: string): TokenType {
  return createToken({
    name: word[0].toUpperCase() + word.slice(1),
    pattern: new RegExp(word),
    longer_alt: Identifier,
    label: `\`${word}\``,
  });
}

export const Network = keyword("network");
export const Input = keyword("input");
export const Const = keyword("const");
export const Block = keyword("block");
export const Train = keyword("train");
export const Data = keyword("data");

// ---- literals ---------------------------------------------------------------------------------------

/** `96`, `0.75`, `1e-4`, `.5`. No sign: `-1` is a unary minus, so `a-1` means `a - 1`. */
export const NumberLit = createToken({
  name: "NumberLit",
  pattern: /(?:\d+(?:\.\d+)?|\.\d+)(?:[eE][+-]?\d+)?/,
  label: "a number",
});

/** Both string tokens belong to this category, so the parser accepts an unterminated string as a
 *  string (reported once, as AX1002) instead of cascading into syntax errors. */
export const StringLiteral = createToken({ name: "StringLiteral", pattern: Lexer.NA, label: "a string" });

/** A double-quoted string on one line; escapes are decoded by to-ast.ts. */
export const StringLit = createToken({
  name: "StringLit",
  pattern: /"(?:[^"\\\r\n]|\\[^\r\n])*"/,
  categories: [StringLiteral],
  label: "a string",
});

/** A string whose closing quote is missing before the end of the line (AX1002). */
export const UnterminatedString = createToken({
  name: "UnterminatedString",
  pattern: /"(?:[^"\\\r\n]|\\[^\r\n]?)*/,
  categories: [StringLiteral],
  label: "a string",
});

// ---- punctuation -------------------------------------------------------------------------------------

function punctuation(name: string, text: string): TokenType {
  const escaped = text.replace(/[\\^$.*+?()[\]{}|\/-]/g, "\\$&");
  return createToken({ name, pattern: new RegExp(escaped), label: `\`${text}\`` });
}

export const LCurly = punctuation("LCurly", "{");
export const RCurly = punctuation("RCurly", "}");
export const LParen = punctuation("LParen", "(");
export const RParen = punctuation("RParen", ")");
export const LBracket = punctuation("LBracket", "[");
export const RBracket = punctuation("RBracket", "]");
export const Comma = punctuation("Comma", ",");
export const Colon = punctuation("Colon", ":");
export const Equals = punctuation("Equals", "=");

/** Operator categories keep the expression rules to one CONSUME per precedence level. */
export const AdditiveOperator = createToken({
  name: "AdditiveOperator",
  pattern: Lexer.NA,
  label: "`+` or `-`",
});
export const MultiplicativeOperator = createToken({
  name: "MultiplicativeOperator",
  pattern: Lexer.NA,
  label: "`*` or `/`",
});

export const Plus = createToken({
  name: "Plus",
  pattern: /\+/,
  categories: [AdditiveOperator],
  label: "`+`",
});
export const Minus = createToken({
  name: "Minus",
  pattern: /-/,
  categories: [AdditiveOperator],
  label: "`-`",
});
export const Star = createToken({
  name: "Star",
  pattern: /\*/,
  categories: [MultiplicativeOperator],
  label: "`*`",
});
export const Slash = createToken({
  name: "Slash",
  pattern: /\//,
  categories: [MultiplicativeOperator],
  label: "`/`",
});

// ---- error catching ------------------------------------------------------------------------------------

/** Characters that can start some token; `.` only when a digit follows (`.5`). */
const tokenStart = /[A-Za-z0-9_\s"#\/.(){}[\],:=+\-*]/;

/**
 * Anything else (AX1003). A run of characters that can never start a token is one token, so a
 * megabyte of binary garbage makes a few tokens, not a million; a lone `.` is the one character that
 * can start a token yet fail to make one. The parser never sees these (group "errors").
 * A complement set defeats Chevrotain's first-character analysis, so the start characters are
 * spelled out: every UTF-16 code unit outside `tokenStart` (a surrogate pair starts with a unit in
 * D800–DBFF, which is outside it).
 */
export const Unknown = createToken({
  name: "Unknown",
  pattern: /[^A-Za-z0-9_\s"#\/.(){}[\],:=+\-*]+|\./,
  group: "errors",
  line_breaks: false,
  start_chars_hint: [
    ".",
    ...Array.from({ length: 0x10000 }, (_, code) => String.fromCharCode(code)).filter(
      (c) => !tokenStart.test(c),
    ),
  ],
});

/** Lexer order. */
export const allTokens: TokenType[] = [
  Whitespace,
  Comment,
  Network,
  Input,
  Const,
  Block,
  Train,
  Data,
  Identifier,
  NumberLit,
  StringLiteral,
  StringLit,
  UnterminatedString,
  LCurly,
  RCurly,
  LParen,
  RParen,
  LBracket,
  RBracket,
  Comma,
  Colon,
  Equals,
  AdditiveOperator,
  MultiplicativeOperator,
  Plus,
  Minus,
  Star,
  Slash,
  Unknown,
];

/**
 * The tokens that can stand where no statement can start inside `{ … }`: all but `}` and the
 * top-level keywords. The parser consumes them there one by one (parser.ts, `stray`) and to-ast.ts
 * reports each run once, so a stray token costs one diagnostic instead of the rest of the body.
 * Concrete types, not a category: Chevrotain re-synchronises on the first follow-set type a token
 * matches, and a catch-all category in an outer rule's follow set would make an inner rule (such as
 * a block's parameter list waiting for its `)`) give up on tokens it could have re-synchronised on.
 */
export const strayTokens: TokenType[] = [
  Identifier,
  Input,
  Const,
  Block,
  NumberLit,
  StringLit,
  UnterminatedString,
  LCurly,
  LParen,
  RParen,
  LBracket,
  RBracket,
  Comma,
  Colon,
  Equals,
  Plus,
  Minus,
  Star,
  Slash,
];

/**
 * The one lexer. Lines end at `\n`, `\r\n` or `\r` (Chevrotain's default), which is what spans and
 * the tests' line/column check assume. `ensureOptimizations` fails fast if a pattern change ever
 * disables the first-character optimisation that keeps large inputs fast.
 */
export const lexer = new Lexer(allTokens, {
  positionTracking: "full",
  ensureOptimizations: true,
});
