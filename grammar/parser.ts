// The `.net` grammar (docs/language.md) as a Chevrotain CstParser. Rules are class fields and carry
// no embedded actions: the parser only builds a CST; to-ast.ts turns it into the AST. One shared
// instance is reset per parse by `start()`, which assigns `.input` (Chevrotain's recommended usage:
// construction and self-analysis are the expensive part).
//
// Error recovery is on: a broken statement becomes a partial CST node (`recoveredNode`) with missing
// children, and parsing continues with the next statement. Errors are described by
// `messageProvider` (parser-messages.ts) as the "expected …" half of AX1001; parse.ts adds "found …".
import { CstParser, type IRecognitionException, type IToken } from "chevrotain";
import { messageProvider } from "./parser-messages.ts";
import {
  AdditiveOperator,
  allTokens,
  Block,
  Colon,
  Comma,
  Const,
  Data,
  Equals,
  Identifier,
  Input,
  LBracket,
  LCurly,
  LParen,
  Minus,
  MultiplicativeOperator,
  Network,
  NumberLit,
  RBracket,
  RCurly,
  RParen,
  strayTokens,
  StringLiteral,
  Train,
} from "./tokens.ts";

export { bodyExpectations, describeFound, messageProvider, quoteSource } from "./parser-messages.ts";

/** Chevrotain internals used to stop early; present in 13.2.0 (pinned) and guarded by the fuzz tests. */
interface ParserInternals {
  SAVE_ERROR(error: IRecognitionException): IRecognitionException;
  moveToTerminatedState(): void;
}
const internals = CstParser.prototype as unknown as ParserInternals;

export class NetParser extends CstParser {
  /** Stop after this many errors; parse.ts sets it before each parse. */
  errorLimit = Number.POSITIVE_INFINITY;
  /** Whether the last parse stopped at `errorLimit`; errors after the limit are artefacts of stopping. */
  stoppedEarly = false;

  constructor() {
    super(allTokens, {
      recoveryEnabled: true,
      // `IDENT ':'` (property, named argument) vs `IDENT '='` (layer) vs `IDENT` (a value) needs 2.
      maxLookahead: 2,
      // Node locations let to-ast.ts give every AST node a span without re-walking tokens; under
      // recovery Chevrotain ignores inserted (virtual) tokens, so a node with no real token keeps
      // startOffset -1.
      nodeLocationTracking: "full",
      errorMessageProvider: messageProvider,
    });
    this.performSelfAnalysis();
  }

  /**
   * Every error passes through here. At the limit, pretend the input has ended: recovery then unwinds
   * at once to a partial CST, instead of spending time on garbage whose errors would never be shown,
   * and repetition recovery (which recurses once per error) cannot exhaust the stack.
   */
  SAVE_ERROR(error: IRecognitionException): IRecognitionException {
    const saved = internals.SAVE_ERROR.call(this, error);
    if (!this.stoppedEarly && this.errors.length >= this.errorLimit) {
      this.stoppedEarly = true;
      (this as unknown as ParserInternals).moveToTerminatedState();
    }
    return saved;
  }

  /** Resets the per-parse state together with the input. */
  start(tokens: IToken[], errorLimit: number): void {
    this.input = tokens;
    this.errorLimit = errorLimit;
    this.stoppedEarly = false;
  }

  // ---- comma-separated lists --------------------------------------------------------------------
  // Lists of arguments, parameters and values are parsed as `element (','? element)* ','?`: a
  // forgotten comma then costs one diagnostic (to-ast.ts reports it) and keeps both elements, instead
  // of closing the list early and cascading. The gates stop a list at what must be the next
  // statement, so a forgotten `)` or `]` at the end of a line is still reported there and costs
  // nothing else.

  /** `name =` starts a layer, never a list element. */
  private readonly notALayer = () =>
    !(this.LA(1).tokenType === Identifier && this.LA(2).tokenType === Equals);

  /** Nor does `name:` start an element of a list of values (it starts a property). */
  private readonly notAStatement = () =>
    this.notALayer() && !(this.LA(1).tokenType === Identifier && this.LA(2).tokenType === Colon);

  // file := (network | section)*
  file = this.RULE("file", () => {
    this.MANY(() =>
      this.OR([{ ALT: () => this.SUBRULE(this.network) }, { ALT: () => this.SUBRULE(this.section) }]),
    );
  });

  // network := 'network' IDENT '{' item* '}'
  network = this.RULE("network", () => {
    this.CONSUME(Network);
    this.CONSUME(Identifier, { LABEL: "name" });
    this.CONSUME(LCurly);
    this.MANY(() =>
      this.OR({
        DEF: [{ ALT: () => this.SUBRULE(this.item) }, { ALT: () => this.SUBRULE(this.stray) }],
        IGNORE_AMBIGUITIES: true,
      }),
    );
    this.CONSUME(RCurly);
  });

  // item := input | const | block | property | layer
  item = this.RULE("item", () => {
    this.OR([
      { ALT: () => this.SUBRULE(this.inputDecl) },
      { ALT: () => this.SUBRULE(this.constDecl) },
      { ALT: () => this.SUBRULE(this.block) },
      { ALT: () => this.SUBRULE(this.namedValue) },
      { ALT: () => this.SUBRULE(this.layer) },
    ]);
  });

  // input := 'input' IDENT ':' IDENT '[' value (',' value)* ','? ']'
  // Not named `input`: a rule becomes a parser property, and `input` is the token-vector setter.
  inputDecl = this.RULE("inputDecl", () => {
    this.CONSUME(Input);
    this.CONSUME(Identifier, { LABEL: "name" });
    this.CONSUME(Colon);
    this.CONSUME2(Identifier, { LABEL: "dtype" });
    this.CONSUME(LBracket);
    this.SUBRULE(this.value);
    this.MANY({
      GATE: this.notAStatement,
      DEF: () => {
        this.OPTION(() => this.CONSUME(Comma));
        this.SUBRULE2(this.value);
      },
    });
    this.OPTION2(() => this.CONSUME2(Comma));
    this.CONSUME(RBracket);
  });

  // const := 'const' IDENT '=' value
  constDecl = this.RULE("constDecl", () => {
    this.CONSUME(Const);
    this.CONSUME(Identifier, { LABEL: "name" });
    this.CONSUME(Equals);
    this.SUBRULE(this.value);
  });

  // property := IDENT ':' value, also a named argument and a section entry
  namedValue = this.RULE("namedValue", () => {
    this.CONSUME(Identifier, { LABEL: "name" });
    this.CONSUME(Colon);
    this.SUBRULE(this.value);
  });

  // layer := IDENT '=' IDENT '(' (arg (',' arg)* ','?)? ')'
  layer = this.RULE("layer", () => {
    this.CONSUME(Identifier, { LABEL: "name" });
    this.CONSUME(Equals);
    this.CONSUME2(Identifier, { LABEL: "op" });
    this.CONSUME(LParen);
    this.OPTION(() => {
      this.SUBRULE(this.arg);
      this.MANY({
        GATE: this.notALayer,
        DEF: () => {
          this.OPTION2(() => this.CONSUME(Comma));
          this.SUBRULE2(this.arg);
        },
      });
      this.OPTION3(() => this.CONSUME2(Comma));
    });
    this.CONSUME(RParen);
  });

  // arg := IDENT ':' value | value
  arg = this.RULE("arg", () => {
    this.OR([{ ALT: () => this.SUBRULE(this.namedValue) }, { ALT: () => this.SUBRULE(this.value) }]);
  });

  // block := 'block' IDENT '(' (param (',' param)* ','?)? ')' '{' layer* '}'
  // (no gate on the parameters: `name = value` is a parameter with a default there)
  block = this.RULE("block", () => {
    this.CONSUME(Block);
    this.CONSUME(Identifier, { LABEL: "name" });
    this.CONSUME(LParen);
    this.OPTION(() => {
      this.SUBRULE(this.param);
      this.MANY(() => {
        this.OPTION2(() => this.CONSUME(Comma));
        this.SUBRULE2(this.param);
      });
      this.OPTION3(() => this.CONSUME2(Comma));
    });
    this.CONSUME(RParen);
    this.CONSUME(LCurly);
    this.MANY2(() =>
      this.OR({
        DEF: [{ ALT: () => this.SUBRULE(this.layer) }, { ALT: () => this.SUBRULE(this.stray) }],
        IGNORE_AMBIGUITIES: true,
      }),
    );
    this.CONSUME(RCurly);
  });

  // param := IDENT ('=' value)?
  param = this.RULE("param", () => {
    this.CONSUME(Identifier, { LABEL: "name" });
    this.OPTION(() => {
      this.CONSUME(Equals);
      this.SUBRULE(this.value);
    });
  });

  // section := ('train' | 'data') '{' (IDENT ':' value)* '}'
  section = this.RULE("section", () => {
    this.OR([
      { ALT: () => this.CONSUME(Train, { LABEL: "keyword" }) },
      { ALT: () => this.CONSUME(Data, { LABEL: "keyword" }) },
    ]);
    this.CONSUME(LCurly);
    this.MANY(() =>
      this.OR2({
        DEF: [{ ALT: () => this.SUBRULE(this.namedValue) }, { ALT: () => this.SUBRULE(this.stray) }],
        IGNORE_AMBIGUITIES: true,
      }),
    );
    this.CONSUME(RCurly);
  });

  /**
   * The last alternative in a `{ … }` body: one token no statement can start with (tokens.ts,
   * `strayTokens`). With IGNORE_AMBIGUITIES a body's alternatives are tried in order, so this only
   * takes what nothing else can; to-ast.ts reports each run of stray tokens as one AX1001.
   */
  stray = this.RULE("stray", () => {
    this.OR(strayTokens.map((tokenType) => ({ ALT: () => this.CONSUME(tokenType) })));
  });

  // value := term (('+' | '-') term)*
  value = this.RULE("value", () => {
    this.SUBRULE(this.term, { LABEL: "operands" });
    this.MANY(() => {
      this.CONSUME(AdditiveOperator, { LABEL: "operators" });
      this.SUBRULE2(this.term, { LABEL: "operands" });
    });
  });

  // term := unary (('*' | '/') unary)*
  term = this.RULE("term", () => {
    this.SUBRULE(this.unary, { LABEL: "operands" });
    this.MANY(() => {
      this.CONSUME(MultiplicativeOperator, { LABEL: "operators" });
      this.SUBRULE2(this.unary, { LABEL: "operands" });
    });
  });

  // unary := '-' unary | primary
  unary = this.RULE("unary", () => {
    this.OR([
      {
        ALT: () => {
          this.CONSUME(Minus);
          this.SUBRULE(this.unary);
        },
      },
      { ALT: () => this.SUBRULE(this.primary) },
    ]);
  });

  // primary := NUMBER | STRING | IDENT | IDENT '(' (value (',' value)*)? ')'
  //          | '(' value ')' | '(' value (',' value)+ ','? ')' | '[' (value (',' value)* ','?)? ']'
  primary = this.RULE("primary", () => {
    this.OR([
      { ALT: () => this.CONSUME(NumberLit) },
      { ALT: () => this.CONSUME(StringLiteral) },
      { ALT: () => this.SUBRULE(this.nameOrCall) },
      { ALT: () => this.SUBRULE(this.parenthesized) },
      { ALT: () => this.SUBRULE(this.list) },
    ]);
  });

  nameOrCall = this.RULE("nameOrCall", () => {
    // `data` is a keyword only where a section starts; as a value it is a word (`placement: data`)
    this.OR([
      { ALT: () => this.CONSUME(Identifier, { LABEL: "name" }) },
      { ALT: () => this.CONSUME(Data, { LABEL: "name" }) },
    ]);
    this.OPTION(() => {
      this.CONSUME(LParen);
      this.OPTION2(() => {
        this.SUBRULE(this.value, { LABEL: "args" });
        this.MANY({
          GATE: this.notAStatement,
          DEF: () => {
            this.OPTION3(() => this.CONSUME(Comma));
            this.SUBRULE2(this.value, { LABEL: "args" });
          },
        });
      });
      this.CONSUME(RParen);
    });
  });

  // One value is grouping, two or more a tuple; a trailing comma is allowed only after two.
  parenthesized = this.RULE("parenthesized", () => {
    this.CONSUME(LParen);
    this.SUBRULE(this.value, { LABEL: "items" });
    this.OPTION(() => {
      this.CONSUME(Comma);
      this.SUBRULE2(this.value, { LABEL: "items" });
      this.MANY(() => {
        this.CONSUME2(Comma);
        this.SUBRULE3(this.value, { LABEL: "items" });
      });
      this.OPTION2(() => this.CONSUME3(Comma));
    });
    this.CONSUME(RParen);
  });

  list = this.RULE("list", () => {
    this.CONSUME(LBracket);
    this.OPTION(() => {
      this.SUBRULE(this.value, { LABEL: "items" });
      this.MANY({
        GATE: this.notAStatement,
        DEF: () => {
          this.OPTION2(() => this.CONSUME(Comma));
          this.SUBRULE2(this.value, { LABEL: "items" });
        },
      });
      this.OPTION3(() => this.CONSUME2(Comma));
    });
    this.CONSUME(RBracket);
  });
}

/** The shared instance; call `start()` before a rule. Parsing is synchronous, so sharing is safe. */
export const parser = new NetParser();
