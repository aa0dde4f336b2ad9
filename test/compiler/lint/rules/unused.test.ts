import { describe, expect, it } from "vitest";
import { applyFixes } from "../../../../compiler/lint/fix.ts";
import { alexnetWith, expectSilentOnAlexnet, findings, lint, net, spanText } from "../helpers.ts";

describe("unused_layer (AX5001)", () => {
  it("fires on a layer nothing reads, at its name, with a removal offered but not as safe", () => {
    const source = alexnetWith(["  fc8 = dense(", "  side = relu(pool5)\n  fc8 = dense("]);
    const [d] = findings(source, "AX5001");
    expect(d.message).toBe("layer `side` is never used");
    expect(spanText(source, d)).toBe("side");
    expect(d.fix?.applicability).toBe("maybe");
    expect(applyFixes(source, [d], () => true).text).not.toContain("side = relu(pool5)");
  });

  it("fires on a softmax after the logits and says the loss already applies one", () => {
    const [d] = findings(alexnetWith(["  loss = ", "  prob = softmax(fc8)\n  loss = "]), "AX5001");
    expect(d.message).toBe("layer `prob` is never used");
    expect(d.notes.join("\n")).toContain("the loss applies softmax itself");
  });

  it("reports an unused block instance at its call, not inside the block", () => {
    const source = net(
      "  block twice(y) {\n    a = relu(y)\n    b = relu(a)\n  }\n  f = flatten(x)\n  spare = twice(f)\n  logits = dense(f, units: 10)",
    );
    const [d] = findings(source, "AX5001");
    expect(d.message).toBe("layer `spare` is never used");
    expect(spanText(source, d)).toBe("spare");
  });

  it("is silent on models/alexnet.net", () => expectSilentOnAlexnet("AX5001"));
});

describe("unused_const (AX5002)", () => {
  it("fires on a constant nothing refers to, and --fix removes its line", () => {
    const source = alexnetWith([
      "  const lrn_k = 2\n",
      "  const lrn_k = 2\n  const spare = 3   # not used\n",
    ]);
    const [d] = findings(source, "AX5002");
    expect(d.message).toBe("constant `spare` is never used");
    expect(d.fix?.applicability).toBe("safe");
    const fixed = applyFixes(source, [d]).text;
    expect(fixed).not.toContain("spare");
    expect(lint(fixed).filter((x) => x.code.startsWith("AX5"))).toEqual([]);
  });

  it("treats a constant shadowed by a block parameter as unused inside that block", () => {
    const source = net(
      "  const w = normal(0.1)\n  block c(y, w) {\n    o = dense(y, units: 10, init: w)\n  }\n  f = flatten(x)\n  logits = c(f, w: normal(0.2))",
    );
    expect(findings(source, "AX5002").map((d) => d.message)).toEqual(["constant `w` is never used"]);
  });

  it("counts a use in another constant, an input shape and a block default", () => {
    const source = net("  f = flatten(x)\n  logits = b(f)", {
      input: "f32[3, side, side]",
      head: "  const side = 8\n  const s = 0.1\n  const w = normal(s)\n  block b(y, init = w) {\n    o = dense(y, units: 10, init: init)\n  }\n",
    });
    expect(findings(source, "AX5002")).toEqual([]);
  });

  it("is silent on models/alexnet.net", () => expectSilentOnAlexnet("AX5002"));
});

describe("unused_block (AX5003)", () => {
  it("fires on a block no layer calls, and the safe fix removes all of it", () => {
    const source = alexnetWith(["  const w = ", "  block spare(y) {\n    r = relu(y)\n  }\n\n  const w = "]);
    const [d] = findings(source, "AX5003");
    expect(d.message).toBe("block `spare` is never used");
    expect(d.fix?.applicability).toBe("safe");
    const fixed = applyFixes(source, [d]).text;
    expect(fixed).not.toContain("block spare");
    expect(fixed).not.toContain("r = relu(y)");
  });

  it("is silent on models/alexnet.net", () => expectSilentOnAlexnet("AX5003"));
});

describe("unused_block_param (AX5004)", () => {
  it("fires on a parameter the block's body never reads", () => {
    const source = net(
      "  block d(y, units) {\n    o = dense(y, units: 10)\n  }\n  f = flatten(x)\n  logits = d(f, units: 10)",
    );
    const [d] = findings(source, "AX5004");
    expect(d.message).toBe("parameter `units` of block `d` is never used");
    expect(spanText(source, d)).toBe("units");
  });

  it("is silent on models/alexnet.net", () => expectSilentOnAlexnet("AX5004"));
});

describe("unused_layer on a layer with weights", () => {
  it("says its parameters never receive a gradient", () => {
    const [d] = findings(
      alexnetWith(["  fc8 = dense(", "  extra = dense(drop7, units: 10, towers: cross)\n  fc8 = dense("]),
      "AX5001",
    );
    expect(d.message).toBe("layer `extra` is never used");
    expect(d.notes[0]).toBe(
      "its parameters (`extra.weight`, `extra.bias`) are allocated and saved but never receive a gradient",
    );
  });
});
