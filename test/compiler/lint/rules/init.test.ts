import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { alexnetWith, expectSilentOnAlexnet, findings, modelPath, net, spanText } from "../helpers.ts";

describe("init_saturation (AX5022)", () => {
  it("fires on weights whose spread drives the tanh after them into its tails", () => {
    const source = net(
      "  c = conv(x, filters: 8, kernel: 5, init: normal(0.5))\n  t = tanh(c)\n  logits = dense(t, units: 10)",
    );
    const [d] = findings(source, "AX5022");
    expect(d.message).toBe("the initial weights of `c` (normal(0.5)) will saturate the tanh `t`");
    expect(spanText(source, d)).toBe("normal(0.5)");
    expect(d.notes[0]).toBe(
      "fan-in 75: pre-activations spread with std ≈ √(75·(0.5² + 0²)) = 4.33 for unit-variance inputs, so about 64 % of units start beyond ±2",
    );
    expect(d.help).toBe("use `init: normal(0.115)` (std 1/√fan-in)");
    expect(d.fix).toMatchObject({ applicability: "maybe", edits: [{ text: "normal(0.115)" }] });
  });

  it("allows sigmoid a wider spread than tanh (flat beyond ±4, not ±2)", () => {
    const body = (act: string) =>
      net(
        `  c = conv(x, filters: 8, kernel: 5, init: normal(0.3))\n  t = ${act}(c)\n  logits = dense(t, units: 10)`,
      );
    expect(findings(body("tanh"), "AX5022")).toHaveLength(1); // spread 2.6
    expect(findings(body("sigmoid"), "AX5022")).toEqual([]);
  });

  it("is silent on the Figure 1 tanh models (std 0.01, and He-scaled std)", () => {
    for (const model of ["fig1-tanh.net", "fig1-tanh-fmnist.net"])
      expect(findings(readFileSync(modelPath(model), "utf8"), "AX5022")).toEqual([]);
  });

  it("is silent on models/alexnet.net (ReLU everywhere)", () => expectSilentOnAlexnet("AX5022"));
});

describe("constant_weight_init (AX5023)", () => {
  it("fires on a layer whose weights all start equal", () => {
    const source = alexnetWith([
      "fc7 = dense(drop6, units: 4096, towers: cross, init: w",
      "fc7 = dense(drop6, units: 4096, towers: cross, init: constant(0)",
    ]);
    const [d] = findings(source, "AX5023");
    expect(d.message).toBe("every weight of `fc7` starts at 0, so its units stay identical");
    expect(spanText(source, d)).toBe("constant(0)");
    expect(d.fix).toMatchObject({ applicability: "maybe", edits: [{ text: "normal(0, 0.01)" }] });
  });

  it("is silent on models/alexnet.net (normal(0, 0.01) everywhere)", () => expectSilentOnAlexnet("AX5023"));
});
