import { describe, expect, it } from "vitest";
import { defaultLintConfig } from "../../../../compiler/lint/index.ts";
import { alexnetWith, expectSilentOnAlexnet, findings, net, spanText } from "../helpers.ts";

describe("binding_limit (AX5024)", () => {
  it("fires on an activation whose one example exceeds 128 MiB", () => {
    // 64 × 512 × 1024 floats = 128 MiB exactly for the input; the convolution doubles the channels.
    const source = net("  c = conv(x, filters: 128, kernel: 1)\n  logits = dense(c, units: 10)", {
      input: "f32[64, 512, 1024]",
    });
    const ds = findings(source, "AX5024");
    expect(ds.map((d) => d.message)).toEqual([
      "one example of `c`'s output is 256 MiB (268,435,456 bytes), larger than the 128 MiB one storage binding may hold",
      "one row of `logits.weight` is 256 MiB (268,435,456 bytes), larger than the 128 MiB one storage binding may hold",
    ]);
    expect(spanText(source, ds[0])).toBe("c");
  });

  it("follows lint.maxBindingBytes", () => {
    const small = {
      ...defaultLintConfig,
      settings: { ...defaultLintConfig.settings, maxBindingBytes: 1 << 20 },
    };
    const ds = findings(alexnetWith(), "AX5024", small);
    expect(ds.map((d) => d.message)).toContain(
      "one example of `conv1`'s output is 1.1 MiB (1,161,600 bytes), larger than the 1 MiB one storage binding may hold",
    );
  });

  it("is silent on models/alexnet.net (fc6.weight is split by rows, activations micro-batched)", () =>
    expectSilentOnAlexnet("AX5024"));
});
