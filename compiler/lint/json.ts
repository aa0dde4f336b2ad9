// A JSON reader that remembers where every value starts, so that a problem in alexc.json can be
// reported at its line and column (JSON.parse gives neither for a value that parses but is wrong).
// Strict JSON (RFC 8259): no comments, no trailing commas, as JSON.parse accepts.
import type { Position, Span } from "../../grammar/ast.ts";

export type JsonPath = (string | number)[];

export interface JsonDocument {
  value: unknown;
  /** The span of the value (for an object key: of the key) at each path, keyed by `pathKey`. */
  spans: Map<string, Span>;
}

export class JsonSyntaxError extends Error {
  readonly span: Span;
  constructor(message: string, span: Span) {
    super(message);
    this.name = "JsonSyntaxError";
    this.span = span;
  }
}

export const pathKey = (path: JsonPath): string => JSON.stringify(path);

/** `lint.rules.AX5001`, `a[2].b`: the path as a user would write it. */
export function showPath(path: JsonPath): string {
  return path
    .map((p, i) =>
      typeof p === "number"
        ? `[${p}]`
        : /^[A-Za-z_$][\w$-]*$/.test(p)
          ? i
            ? `.${p}`
            : p
          : `[${JSON.stringify(p)}]`,
    )
    .join("");
}

export function parseJson(text: string): JsonDocument {
  const spans = new Map<string, Span>();
  let i = 0;
  let line = 1;
  let lineStart = 0;

  const here = (): Position => ({ offset: i, line, column: i - lineStart + 1 });
  const fail = (message: string): never => {
    const start = here();
    const end = i < text.length ? { ...start, offset: i + 1, column: start.column + 1 } : start;
    throw new JsonSyntaxError(message, { start, end });
  };
  const skipSpace = () => {
    while (i < text.length) {
      const c = text[i];
      if (c === "\n") {
        line++;
        lineStart = i + 1;
      } else if (c !== " " && c !== "\t" && c !== "\r") return;
      i++;
    }
  };
  const found = () => (i < text.length ? `\`${text[i]}\`` : "the end of the file");

  const string = (): string => {
    const start = i;
    i++; // the opening quote
    while (i < text.length && text[i] !== '"') {
      if (text[i] === "\n") break;
      i += text[i] === "\\" ? 2 : 1;
    }
    if (text[i] !== '"') fail("unterminated string");
    i++;
    try {
      return JSON.parse(text.slice(start, i)) as string;
    } catch {
      i = start;
      return fail("invalid escape in string");
    }
  };

  const value = (path: JsonPath): unknown => {
    skipSpace();
    const start = here();
    const record = () => {
      if (!spans.has(pathKey(path))) spans.set(pathKey(path), { start, end: here() });
    };
    const c = text[i];
    if (c === "{") {
      i++;
      const out: Record<string, unknown> = {};
      skipSpace();
      if (text[i] === "}") {
        i++;
        record();
        return out;
      }
      for (;;) {
        skipSpace();
        if (text[i] !== '"') fail(`expected a key in quotes, found ${found()}`);
        const keyStart = here();
        const key = string();
        // The key's span stands for the entry: "unknown key" points at the key itself.
        spans.set(pathKey([...path, key]), { start: keyStart, end: here() });
        if (Object.hasOwn(out, key)) {
          i = keyStart.offset;
          line = keyStart.line;
          lineStart = keyStart.offset - keyStart.column + 1;
          fail(`key "${key}" is given twice`);
        }
        skipSpace();
        if (text[i] !== ":") fail(`expected \`:\`, found ${found()}`);
        i++;
        out[key] = value([...path, key]);
        skipSpace();
        if (text[i] === ",") {
          i++;
          continue;
        }
        if (text[i] === "}") {
          i++;
          record();
          return out;
        }
        fail(`expected \`,\` or \`}\`, found ${found()}`);
      }
    }
    if (c === "[") {
      i++;
      const out: unknown[] = [];
      skipSpace();
      if (text[i] === "]") {
        i++;
        record();
        return out;
      }
      for (;;) {
        out.push(value([...path, out.length]));
        skipSpace();
        if (text[i] === ",") {
          i++;
          continue;
        }
        if (text[i] === "]") {
          i++;
          record();
          return out;
        }
        fail(`expected \`,\` or \`]\`, found ${found()}`);
      }
    }
    if (c === '"') {
      const s = string();
      record();
      return s;
    }
    const literal = /^(?:true|false|null|-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?)/.exec(
      text.slice(i, i + 400),
    );
    if (!literal) fail(`expected a value, found ${found()}`);
    i += literal![0].length;
    record();
    return JSON.parse(literal![0]);
  };

  const result = value([]);
  skipSpace();
  if (i < text.length) fail(`expected the end of the file, found ${found()}`);
  return { value: result, spans };
}
