import { describe, expect, it } from "vitest";
import { JsonSyntaxError, parseJson, pathKey, showPath } from "../../../compiler/lint/json.ts";

describe("parseJson", () => {
  it("parses as JSON.parse does and records where each key and value starts", () => {
    const text = '{\n  "a": [1, {"b": true}],\n  "c": "x"\n}';
    const doc = parseJson(text);
    expect(doc.value).toEqual(JSON.parse(text));
    expect(doc.spans.get(pathKey(["a"]))?.start).toMatchObject({ line: 2, column: 3 });
    expect(doc.spans.get(pathKey(["a", 1, "b"]))?.start).toMatchObject({ line: 2, column: 13 });
    expect(doc.spans.get(pathKey(["c"]))?.start).toMatchObject({ line: 3, column: 3 });
  });

  it("rejects what JSON.parse rejects, with a position: trailing commas, comments, repeated keys", () => {
    for (const [text, message] of [
      ["[1, 2,]", "expected a value, found `]`"],
      ['{"a": 1 // no\n}', "expected `,` or `}`, found `/`"],
      ['{"a": 1, "a": 2}', 'key "a" is given twice'],
      ['"open', "unterminated string"],
      ["{} x", "expected the end of the file, found `x`"],
    ] as const) {
      expect(() => parseJson(text), text).toThrow(JsonSyntaxError);
      expect(() => parseJson(text), text).toThrow(message);
    }
  });

  it("shows paths as a user writes them", () => {
    expect(showPath(["lint", "rules", "AX5001"])).toBe("lint.rules.AX5001");
    expect(showPath(["lint", "usualRanges", "lr", 0])).toBe("lint.usualRanges.lr[0]");
    expect(showPath(["a b"])).toBe('["a b"]');
  });
});
