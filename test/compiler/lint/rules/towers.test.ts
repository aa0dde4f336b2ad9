import { describe, expect, it } from "vitest";
import { defaultLintConfig } from "../../../../compiler/lint/index.ts";
import { alexnetWith, expectSilentOnAlexnet, findings, spanText } from "../helpers.ts";
import { readFileSync } from "node:fs";
import { modelPath } from "../helpers.ts";

describe("tower_imbalance (AX5005)", () => {
  it("fires when a large layer lies whole on one tower, naming it and the excess", () => {
    const source = alexnetWith([
      "fc6 = dense(pool5, units: 4096, towers: cross",
      "fc6 = dense(pool5, units: 4096, towers: on(0)",
    ]);
    const [d] = findings(source, "AX5005");
    expect(d.message).toMatch(
      /^the towers are unbalanced: tower 0 has \d+ % more multiply-adds and \d+ % more parameters than tower 1$/,
    );
    expect(spanText(source, d)).toBe("on(0)");
    expect(d.labels.map((l) => l.message)).toEqual(["`fc8` is on tower 0 too"]);
    expect(d.help).toBe("split `fc6` over the towers with `towers: cross` (4,096 units, 2,048 per tower)");
  });

  it("fires on alexnet-67.net, where fc8 on tower 0 is 14 % of the work", () => {
    const [d] = findings(
      readFileSync(modelPath("alexnet-67.net"), "utf8").replace(
        /^[ \t]*# alexc-disable-next-line .*\n/gm,
        "",
      ),
      "AX5005",
    );
    expect(d.message).toBe(
      "the towers are unbalanced: tower 0 has 14 % more multiply-adds and 41 % more parameters than tower 1",
    );
  });

  it("follows the thresholds of alexc.json", () => {
    const strict = {
      ...defaultLintConfig,
      settings: { ...defaultLintConfig.settings, towerImbalance: { flops: 0.5, params: 0.1 } },
    };
    const [d] = findings(readFileSync(modelPath("alexnet.net"), "utf8"), "AX5005", strict);
    expect(d.message).toBe("the towers are unbalanced: tower 0 has 14 % more parameters than tower 1");
  });

  it("is silent on models/alexnet.net (fc8 on tower 0: +1 % FLOPs, +14 % parameters)", () =>
    expectSilentOnAlexnet("AX5005"));
});

describe("tower_pattern (AX5006)", () => {
  it("reports conv4 reading across the towers where the paper's reads locally, with the transfer it costs", () => {
    const source = alexnetWith([
      "conv4 = conv(relu3, filters: 384, kernel: 3, pad: 1, towers: local",
      "conv4 = conv(relu3, filters: 384, kernel: 3, pad: 1, towers: cross",
    ]);
    const [d] = findings(source, "AX5006");
    expect(d.severity).toBe("info");
    expect(d.message).toBe(
      "`conv4` reads every tower's maps (`towers: cross`), where the paper's conv4 reads only its own tower (`towers: local`)",
    );
    expect(d.notes[0]).toContain("129,792-byte share of `relu3`");
    expect(d.fix).toMatchObject({ applicability: "maybe", edits: [{ text: "local" }] });
  });

  it("reports conv3 reading locally where the paper's reads both towers", () => {
    const [d] = findings(
      alexnetWith([
        "conv3 = conv(pool2, filters: 384, kernel: 3, pad: 1, towers: cross",
        "conv3 = conv(pool2, filters: 384, kernel: 3, pad: 1, towers: local",
      ]),
      "AX5006",
    );
    expect(d.message).toContain("where the paper's conv3 reads both towers (`towers: cross`)");
  });

  it("reports a local fully connected layer in any multi-tower network", () => {
    const source = alexnetWith(
      [
        "  conv5 = conv(relu4, filters: 256, kernel: 3, pad: 1, towers: local, init: w, bias: 1)\n  relu5 = relu(conv5)\n",
        "  relu5 = relu(relu4)\n",
      ],
      ["fc7 = dense(drop6, units: 4096, towers: cross", "fc7 = dense(drop6, units: 4096, towers: local"],
    );
    const [d] = findings(source, "AX5006");
    expect(d.message).toContain("where the paper's fully connected layers read both towers");
  });

  it("is silent on models/alexnet.net", () => expectSilentOnAlexnet("AX5006"));
});
