import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { alexnetWith, expectSilentOnAlexnet, findings, modelPath, net, spanText } from "../helpers.ts";

describe("shadowed_builtin (AX5025)", () => {
  it("fires on a constant named like a word attributes accept, at its name", () => {
    const source = alexnetWith(["  const lrn_k = 2", "  const lrn_k = 2\n  const floor = 3"]);
    const [d] = findings(source, "AX5025");
    expect(d.message).toBe(
      "constant `floor` shadows the word `floor` that attributes such as `round` accept",
    );
    expect(spanText(source, d)).toBe("floor");
    expect(d.notes[0]).toBe("where `floor` is visible, `round: floor` reads this constant, not the word");
  });

  it("fires on layers and block parameters too", () => {
    const source = net(
      "  block b(y, local) {\n    o = dense(y, units: 10)\n  }\n  none = flatten(x)\n  logits = b(none, local: 1)",
    );
    expect(findings(source, "AX5025").map((d) => d.message)).toEqual([
      "block parameter `local` shadows the word `local` that attributes such as `towers` accept",
      "layer `none` shadows the word `none` that attributes such as `bias` accept",
    ]);
  });

  it("does not report a layer named like a layer kind (`conv = conv(…)` hides nothing)", () => {
    expect(findings(readFileSync(modelPath("fig1-relu.net"), "utf8"), "AX5025")).toEqual([]);
  });

  it("is silent on models/alexnet.net", () => expectSilentOnAlexnet("AX5025"));
});
