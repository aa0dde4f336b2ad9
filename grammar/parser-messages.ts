// The wording of AX1001 for parser.ts: `messageProvider` gives Chevrotain the "expected …" half,
// `describeFound` the "found …" half that parse.ts and to-ast.ts add.
import { EOF, type IParserErrorMessageProvider, type IToken, type TokenType } from "chevrotain";
import { LBracket, LParen, RBracket, RCurly, RParen } from "./tokens.ts";

/** What a rule stands for when none of its alternatives match (NoViableAlt), in the user's words. */
const ruleDescriptions: Record<string, string> = {
  file: "`network`, `train` or `data`",
  item: "a statement (`input`, `const`, `block`, a layer or a property)",
  arg: "an argument",
  value: "a value",
  term: "a value",
  unary: "a value",
  primary: "a value",
};

/** What a `{ … }` body accepts, also used by to-ast.ts for stray tokens. */
export const bodyExpectations = {
  network: "a statement or `}`",
  block: "a layer or `}`",
  section: "`name: value` or `}`",
} as const;

/** The "found …" half of AX1001: a backticked piece of source, shortened, control characters escaped. */
export function describeFound(token: IToken): string {
  if (token.tokenType === EOF || !(token.startOffset >= 0)) return "end of file";
  return quoteSource(token.image);
}

/** Backticks a piece of source for a message: shortened, invisible characters as `\u` escapes. */
export function quoteSource(image: string): string {
  const short = image.length > 24 ? `${image.slice(0, 20)}…` : image;
  const visible = short.replace(/[\u0000-\u001f\u007f-\u009f\u200b-\u200f\u2028\u2029\ufeff]/g, (c) => {
    return `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`;
  });
  return `\`${visible}\``;
}

function describeToken(tokenType: TokenType): string {
  if (tokenType === EOF) return "end of file";
  return tokenType.LABEL ?? `\`${tokenType.name}\``;
}

/**
 * A closing token after a list or a body is expected exactly where another element could also
 * appear, so say so: "expected `,` or `)`" rather than just "expected `)`".
 */
function describeExpected(expected: TokenType, previous: IToken, ruleName: string): string {
  const afterOpen = previous.tokenType === LParen || previous.tokenType === LBracket;
  if (expected === EOF && ruleName === "file") return ruleDescriptions.file;
  if (expected === RCurly && (ruleName === "network" || ruleName === "block" || ruleName === "section")) {
    return bodyExpectations[ruleName];
  }
  if (expected === RParen) {
    if (ruleName === "layer") return afterOpen ? "an argument or `)`" : "`,` or `)`";
    if (ruleName === "block") return afterOpen ? "a parameter or `)`" : "`,` or `)`";
    if (ruleName === "nameOrCall") return afterOpen ? "a value or `)`" : "`,` or `)`";
    if (ruleName === "parenthesized") return "`,` or `)`";
  }
  if (expected === RBracket && (ruleName === "inputDecl" || ruleName === "list")) {
    return afterOpen ? "a value or `]`" : "`,` or `]`";
  }
  return describeToken(expected);
}

function describeAlternatives(paths: TokenType[][][], ruleName: string): string {
  const known = ruleDescriptions[ruleName];
  if (known !== undefined) return known;
  const firsts = [...new Set(paths.flat().map((path) => describeToken(path[0])))];
  return firsts.length <= 1
    ? (firsts[0] ?? "something else")
    : `${firsts.slice(0, -1).join(", ")} or ${firsts.at(-1)}`;
}

/** Produces only the "expected" description; parse.ts formats the full AX1001 message. */
export const messageProvider: IParserErrorMessageProvider = {
  buildMismatchTokenMessage: ({ expected, previous, ruleName }) =>
    describeExpected(expected, previous, ruleName),
  buildNotAllInputParsedMessage: () => ruleDescriptions.file,
  buildNoViableAltMessage: ({ expectedPathsPerAlt, ruleName }) =>
    describeAlternatives(expectedPathsPerAlt, ruleName),
  buildEarlyExitMessage: ({ expectedIterationPaths, ruleName }) =>
    describeAlternatives([expectedIterationPaths], ruleName),
};
