import { describe, expect, it } from "vitest";
import { applyFixes } from "../../../../compiler/lint/fix.ts";
import { alexnetWith, expectSilentOnAlexnet, findings, lint, net, spanText } from "../helpers.ts";

describe("lrn_before_relu (AX5009)", () => {
  const swapped = alexnetWith(
    ["  relu1 = relu(conv1)\n  norm1 = lrn(relu1,", "  norm1 = lrn(conv1,"],
    [
      "beta: lrn_beta)\n  pool1 = maxpool(norm1,",
      "beta: lrn_beta)\n  relu1 = relu(norm1)\n  pool1 = maxpool(relu1,",
    ],
  );

  it("fires on an LRN that reads the convolution and feeds the ReLU", () => {
    const [d] = findings(swapped, "AX5009");
    expect(d.message).toBe(
      "`norm1` normalises `conv1` before the ReLU `relu1`; the paper applies LRN after it",
    );
    expect(spanText(swapped, d)).toBe("norm1");
    expect(d.labels[0].message).toBe("the ReLU comes after it");
  });

  it("offers (not as safe) the swap that restores the paper's order and names", () => {
    const [d] = findings(swapped, "AX5009");
    expect(d.fix?.applicability).toBe("maybe");
    const fixed = applyFixes(swapped, [d], () => true).text;
    expect(fixed).toContain(
      "  relu1 = relu(conv1)\n  norm1 = lrn(relu1, size: lrn_n, k: lrn_k, alpha: lrn_alpha, beta: lrn_beta)\n  pool1 = maxpool(norm1,",
    );
    expect(lint(fixed).filter((x) => x.severity !== "info")).toEqual([]);
  });

  it("is silent on models/alexnet.net (relu → lrn → pool, as in the paper)", () =>
    expectSilentOnAlexnet("AX5009"));
});

describe("linear_stack (AX5010)", () => {
  it("fires on a dense layer reading another through dropout only", () => {
    const source = alexnetWith(["drop6 = dropout(relu6, p: 0.5)", "drop6 = dropout(fc6, p: 0.5)"]);
    const ds = findings(source, "AX5010");
    expect(ds.map((d) => d.message)).toEqual(["`fc7` follows `fc6` with no non-linearity between them"]);
    expect(ds[0].labels[0].message).toBe("`fc6` is linear too");
    expect(ds[0].help).toBe("add an activation after `fc6` (e.g. `relu(fc6)`) and read it here");
  });

  it("does not count a max-pool as linear", () => {
    const source = net(
      "  c = conv(x, filters: 4, kernel: 3, pad: 1)\n  p = maxpool(c, window: 2)\n  logits = dense(p, units: 10)",
    );
    expect(findings(source, "AX5010")).toEqual([]);
  });

  it("is silent on models/alexnet.net", () => expectSilentOnAlexnet("AX5010"));
});

describe("double_softmax (AX5011)", () => {
  it("fires on a loss that reads a softmax layer, at the loss's input", () => {
    const source = alexnetWith([
      "  loss = softmax_cross_entropy(fc8)",
      "  prob = softmax(fc8)\n  loss = softmax_cross_entropy(prob)",
    ]);
    const [d] = findings(source, "AX5011");
    expect(d.message).toBe("`loss` applies softmax to `prob`, which is already a softmax");
    expect(spanText(source, d)).toBe("prob");
    expect(d.fix).toMatchObject({ applicability: "maybe", edits: [{ text: "fc8" }] });
  });

  it("is silent on models/alexnet.net", () => expectSilentOnAlexnet("AX5011"));
});

describe("bias_before_batchnorm (AX5012)", () => {
  it("reports, as information, a bias that the batch norm after it cancels", () => {
    const source = net(
      "  c = conv(x, filters: 4, kernel: 3, bias: 1)\n  b = batchnorm(c)\n  r = relu(b)\n  logits = dense(r, units: 10)",
    );
    const [d] = findings(source, "AX5012");
    expect(d.severity).toBe("info");
    expect(d.message).toBe("the bias of `c` is cancelled by the batch norm `b`");
    expect(spanText(source, d)).toBe("1");
    expect(d.fix).toMatchObject({ applicability: "maybe", edits: [{ text: "none" }] });
    expect(findings(source.replace("bias: 1", "bias: none"), "AX5012")).toEqual([]);
  });

  it("is silent on models/alexnet.net", () => expectSilentOnAlexnet("AX5012"));
});

describe("lrn_even_size (AX5013)", () => {
  it("fires on an even size and says how the frameworks differ", () => {
    const source = alexnetWith(["  const lrn_n = 5", "  const lrn_n = 4"]);
    const ds = findings(source, "AX5013");
    expect(ds.map((d) => d.message)).toEqual([
      "`norm1` has an even LRN size (4)",
      "`norm2` has an even LRN size (4)",
    ]);
    expect(ds[0].notes[0]).toBe(
      "alexc sums maps i − 2 … i + 2 (5 maps); PyTorch sums 4 (i − 2 … i + 1); Caffe refuses even sizes",
    );
    expect(ds[0].help).toBe("use an odd size, 3 or 5 (the paper's is 5)");
  });

  it("is silent on models/alexnet.net (size 5)", () => expectSilentOnAlexnet("AX5013"));
});
