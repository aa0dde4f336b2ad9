// What counts as a name in a `.net` file, read from the lexer itself so that the server, the rename
// check and the TextMate grammar's test cannot drift from grammar/tokens.ts.
import type { TokenType } from "chevrotain";
import { allTokens, Identifier } from "../../grammar/tokens.ts";

/** The reserved words: the tokens the lexer tries before `Identifier` with `longer_alt: Identifier`. */
export const keywords: readonly string[] = allTokens
  .filter((token: TokenType) => {
    const alt = token.LONGER_ALT;
    return alt === Identifier || (Array.isArray(alt) && alt.includes(Identifier));
  })
  .map((token) => (token.PATTERN as RegExp).source);

const identifierPattern = new RegExp(`^(?:${(Identifier.PATTERN as RegExp).source})$`);

/** A name the lexer reads as one `Identifier` token. */
export function isIdentifier(text: string): boolean {
  return identifierPattern.test(text) && !keywords.includes(text);
}
