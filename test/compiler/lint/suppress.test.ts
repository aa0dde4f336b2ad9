import { describe, expect, it } from "vitest";
import { applyFixes } from "../../../compiler/lint/fix.ts";
import { alexnetWith, lint, spanText } from "./helpers.ts";

/** alexnet.net with an unused constant `spare` on its own line, preceded by `before` and followed by `after`. */
const withSpare = (before = "", after = "") =>
  alexnetWith(["  const lrn_k = 2\n", `  const lrn_k = 2\n${before}  const spare = 1${after}\n`]);

describe("suppression comments", () => {
  it("alexc-disable-next-line suppresses the named rule, by code or by name", () => {
    expect(lint(withSpare("  # alexc-disable-next-line AX5002\n"))).toEqual([]);
    expect(lint(withSpare("  # alexc-disable-next-line unused_const\n"))).toEqual([]);
    expect(
      lint(withSpare("  // alexc-disable-next-line unused-const -- kept for the next experiment\n")),
    ).toEqual([]);
  });

  it("alexc-disable-line suppresses on its own line; no names means every lint rule", () => {
    expect(lint(withSpare("", "   # alexc-disable-line AX5002"))).toEqual([]);
    expect(lint(withSpare("", "   # alexc-disable-line"))).toEqual([]);
  });

  it("covers one line only", () => {
    const ds = lint(withSpare("  # alexc-disable-next-line AX5002\n\n"));
    expect(ds.map((d) => d.code)).toEqual(["AX5026", "AX5002"]);
    expect(ds[0].notes).toContain("`alexc-disable-next-line` covers line 16 only");
  });

  it("reports a suppression that suppresses nothing, and the safe fix deletes its line", () => {
    const source = alexnetWith([
      "  const lrn_k = 2\n",
      "  # alexc-disable-next-line unused_layer\n  const lrn_k = 2\n",
    ]);
    const [d] = lint(source);
    expect(d.code).toBe("AX5026");
    expect(d.message).toBe("this comment suppresses `unused_layer`, but nothing here reports it");
    expect(d.fix?.applicability).toBe("safe");
    expect(applyFixes(source, [d]).text).toBe(alexnetWith());
  });

  it("removes only the unused names from a comment that still suppresses something", () => {
    const source = withSpare("  # alexc-disable-next-line unused_layer, AX5002 -- why\n");
    const [d] = lint(source);
    expect(d.message).toBe("this comment suppresses `unused_layer`, but nothing here reports it");
    expect(spanText(source, d)).toBe("unused_layer");
    const fixed = applyFixes(source, [d]).text;
    expect(fixed).toContain("  # alexc-disable-next-line AX5002 -- why\n  const spare = 1\n");
    expect(lint(fixed)).toEqual([]);
  });

  it("reports a name that is not a lint rule; check errors cannot be suppressed", () => {
    const source = alexnetWith([
      "relu3 = relu(conv3)",
      "relu3 = reluu(conv3)   # alexc-disable-line AX2001, unused_layr",
    ]);
    const ds = lint(source);
    expect(ds.map((d) => [d.code, d.message])).toEqual([
      ["AX2001", "unknown layer kind `reluu`"],
      ["AX5027", "`AX2001` in a suppression comment is not a lint rule"],
      ["AX5027", "`unused_layr` in a suppression comment is not a lint rule"],
    ]);
    expect(ds[1].notes[0]).toBe(
      "only lint findings (AX5xxx) can be suppressed; errors from `alexc check` must be fixed",
    );
    expect(ds[2].help).toBe("did you mean `unused_layer`?");
  });
});
