import { describe, expect, it } from "vitest";
import { channelRangeText, convGeometryConsts, describeConv } from "../../../compiler/wgsl/conv-geometry.ts";
import { convKernel } from "../../../compiler/wgsl/conv.ts";
import { convWeightGradKernel } from "../../../compiler/wgsl/backward/conv.ts";
import { winogradInputKernel } from "../../../compiler/wgsl/winograd.ts";

// AlexNet's conv2 on one tower's half of the output channels: grouped, padded, a weight part.
const conv2 = {
  batch: 2,
  input: [96, 27, 27],
  output: [256, 27, 27],
  kernel: [5, 5] as const,
  stride: [1, 1] as const,
  pad: { top: 2, bottom: 2, left: 2, right: 2 },
  groups: 2,
  outBase: 128,
  outCount: 128,
};

describe("conv geometry", () => {
  it("derives the per-group channel counts and the weight part's range as WGSL literals", () => {
    const c = convGeometryConsts(conv2);
    expect(c).toMatchObject({ N: "2u", CI: "96u", CO: "256u", CI_PER_GROUP: "48u", CO_PER_GROUP: "128u" });
    expect(c).toMatchObject({ OC_BASE: "128u", OC_COUNT: "128u", PAD_TOP: "2i", PAD_LEFT: "2i" });
  });

  it("types strides as u32 by default and as i32 for signed window arithmetic", () => {
    const strided = { ...conv2, stride: [4, 3] as const };
    expect(convGeometryConsts(strided)).toMatchObject({ SH: "4u", SW: "3u" });
    expect(convGeometryConsts(strided, "i32")).toMatchObject({ SH: "4i", SW: "3i" });
  });

  it("rejects groups that do not divide the channels instead of emitting a fractional constant", () => {
    expect(() => convGeometryConsts({ ...conv2, groups: 5 })).toThrow(/not a u32/);
  });

  it("describes padding, groups and a partial channel range the same way in every kernel header", () => {
    expect(describeConv(conv2, ", bias")).toBe(
      "kernel 5x5, stride 1x1, pad top 2 bottom 2 left 2 right 2, groups 2, bias",
    );
    expect(channelRangeText(conv2)).toBe(", output channels [128, 256)");
    expect(channelRangeText({ ...conv2, outBase: 0, outCount: 256 })).toBe("");
    const id = { name: "k", layer: "conv2", group: ["conv2"] };
    const forward = convKernel(id, { ...conv2, tensors: { x: "x", w: "w", y: "y" } }).wgsl;
    const wgrad = convWeightGradKernel(id, { ...conv2, tensors: { x: "x", dy: "dy", dw: "dw" } }).wgsl;
    for (const wgsl of [forward, wgrad])
      expect(wgsl).toContain("pad top 2 bottom 2 left 2 right 2, groups 2");
    expect(wgrad).toContain("weight rows [128, 256)");
    const three = { ...conv2, kernel: [3, 3] as const, pad: { top: 1, bottom: 1, left: 1, right: 1 } };
    const scratch = { x: "x", w: "w", y: "y", u: "u", v: "v", m: "m" };
    const wino = winogradInputKernel(id, { ...three, tensors: scratch }).wgsl;
    expect(wino).toContain("kernel 3x3, stride 1x1, pad top 1 bottom 1 left 1 right 1");
  });
});
