import { describe, expect, it } from "vitest";
import { alexnetWith, expectSilentOnAlexnet, findings, spanText } from "../helpers.ts";

describe("dropout_on_conv (AX5014)", () => {
  it("fires on dropout over a convolutional feature map", () => {
    const source = alexnetWith(
      ["  conv4 = conv(relu3,", "  drop3 = dropout(relu3, p: 0.2)\n  conv4 = conv(drop3,"],
      ["dropout: [drop6, drop7]", "dropout: [drop3, drop6, drop7]"],
    );
    const [d] = findings(source, "AX5014");
    expect(d.message).toBe("dropout `drop3` drops single pixels of the feature map `relu3`");
    expect(d.notes[0]).toBe("`relu3` is a feature map of 384×13×13; the paper drops out only fc6 and fc7");
    expect(spanText(source, d)).toBe("drop3");
  });

  it("is silent on models/alexnet.net (dropout on fc6 and fc7 only)", () => expectSilentOnAlexnet("AX5014"));
});

describe("dropout_inactive (AX5015)", () => {
  it("fires on a dropout layer the recipe's list leaves out, with a label on the list", () => {
    const source = alexnetWith(["dropout: [drop6, drop7]", "dropout: [drop6]"]);
    const [d] = findings(source, "AX5015");
    expect(d.message).toBe("dropout `drop7` never drops anything: the recipe's `dropout` list leaves it out");
    expect(spanText(source, d)).toBe("drop7");
    expect(d.labels[0]).toMatchObject({ message: "training activates only these" });
    expect(d.help).toBe("add `drop7` to the recipe's `dropout` list, or remove the layer");
  });

  it("fires on p: 0, at the probability", () => {
    const source = alexnetWith(["drop7 = dropout(relu7, p: 0.5)", "drop7 = dropout(relu7, p: 0)"]);
    const [d] = findings(source, "AX5015");
    expect(d.message).toBe("dropout `drop7` never drops anything: its probability is `p: 0`");
    expect(spanText(source, d)).toBe("0");
  });

  it("treats a recipe without a dropout list as activating every dropout layer", () => {
    const source = alexnetWith(["  dropout: [drop6, drop7]\n", ""]);
    expect(findings(source, "AX5015")).toEqual([]);
  });

  it("is silent on models/alexnet.net", () => expectSilentOnAlexnet("AX5015"));
});
