import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { alexnetWith, expectSilentOnAlexnet, findings, modelPath, net, spanText } from "../helpers.ts";

describe("window_border (AX5007)", () => {
  it("catches AlexNet's 224 + floor + no padding trap at conv1", () => {
    const source = alexnetWith(["kernel: 11, stride: 4, pad: 2,", "kernel: 11, stride: 4,"]);
    const ds = findings(source, "AX5007");
    expect(ds[0].message).toBe("`conv1` never reads the last row and column of `image`");
    expect(spanText(source, ds[0])).toBe("conv1");
    expect(ds[0].notes[0]).toBe(
      "`image` is 224×224; windows of 11×11 at stride 4×4 give 54×54 and read rows and columns 0–222 only",
    );
    expect(ds[0].notes[1]).toContain("224 + floor + no padding trap");
    expect(ds[0].help).toContain("`round: ceil` reads them (output 55×55)");
  });

  it("catches a 3/2 pool on an even size (alexnet-fmnist.net's pool1 on 28×28)", () => {
    const [d] = findings(
      readFileSync(modelPath("alexnet-fmnist.net"), "utf8").replace(
        /^[ \t]*# alexc-disable-next-line .*\n/gm,
        "",
      ),
      "AX5007",
    );
    expect(d.message).toBe("`pool1` never reads the last row and column of `norm1`");
    expect(d.help).toContain("output 14×14");
  });

  it("counts rows and columns apart, and only real pixels (not trailing padding)", () => {
    const rows = net(
      "  p = maxpool(x, window: (3, 2), stride: 2)\n  f = flatten(p)\n  logits = dense(f, units: 10)",
      { input: "f32[1, 8, 8]" },
    );
    expect(findings(rows, "AX5007").map((d) => d.message)).toEqual(["`p` never reads the last row of `x`"]);
    const padded = net(
      "  c = conv(x, filters: 4, kernel: 3, stride: 2, pad: 1)\n  f = flatten(c)\n  logits = dense(f, units: 10)",
      { input: "f32[1, 8, 8]" },
    );
    expect(findings(padded, "AX5007")).toEqual([]);
  });

  it("is silent with round: ceil", () => {
    const source = alexnetWith(["kernel: 11, stride: 4, pad: 2,", "kernel: 11, stride: 4, round: ceil,"]);
    expect(findings(source, "AX5007")).toEqual([]);
  });

  it("is silent on models/alexnet.net", () => expectSilentOnAlexnet("AX5007"));
});

describe("window_gap (AX5008)", () => {
  it("fires when the stride is larger than the window, at the stride", () => {
    const source = net(
      "  p = maxpool(x, window: 2, stride: 3)\n  f = flatten(p)\n  logits = dense(f, units: 10)",
      { input: "f32[1, 11, 11]" },
    );
    const [d] = findings(source, "AX5008");
    expect(d.message).toBe(
      "`p` steps 3 but its window is 2 wide: 1 of every 3 rows and columns are never read",
    );
    expect(spanText(source, d)).toBe("3");
    expect(d.help).toBe("use `window: 3` or wider, or `stride: 2`");
  });

  it("is silent on models/alexnet.net (overlapping pooling: window 3, stride 2)", () =>
    expectSilentOnAlexnet("AX5008"));
});
