import { describe, expect, it } from "vitest";
import { applyFixes } from "../../../../compiler/lint/fix.ts";
import { defaultLintConfig } from "../../../../compiler/lint/index.ts";
import { alexnetWith, expectSilentOnAlexnet, findings, lint, spanText } from "../helpers.ts";

describe("learning_rate_range (AX5016)", () => {
  it("fires on a rate far above the usual range, at the entry", () => {
    const source = alexnetWith(["  lr: 0.01", "  lr: 5"]);
    const [d] = findings(source, "AX5016");
    expect(d.message).toBe("learning rate 5 is far outside the usual range 1e-5 to 1");
    expect(spanText(source, d)).toBe("5");
    expect(d.notes[0]).toContain("turns NaN");
    expect(d.help).toBe("the paper's recipe uses lr: 0.01");
  });

  it("fires on a rate far below it, and follows alexc.json's range", () => {
    expect(findings(alexnetWith(["  lr: 0.01", "  lr: 1e-7"]), "AX5016")[0].notes[0]).toContain(
      "barely move",
    );
    const narrow = {
      ...defaultLintConfig,
      settings: {
        ...defaultLintConfig.settings,
        usualRanges: {
          ...defaultLintConfig.settings.usualRanges,
          learningRate: [0.1, 1] as [number, number],
        },
      },
    };
    expect(findings(alexnetWith(), "AX5016", narrow).map((d) => d.message)).toEqual([
      "learning rate 0.01 is far outside the usual range 0.1 to 1",
    ]);
  });

  it("is silent on models/alexnet.net (lr 0.01)", () => expectSilentOnAlexnet("AX5016"));
});

describe("momentum_range (AX5017)", () => {
  it("fires above 0.99 and says how late the velocity reacts", () => {
    const [d] = findings(alexnetWith(["  momentum: 0.9", "  momentum: 0.999"]), "AX5017");
    expect(d.message).toBe("momentum 0.999 is far outside the usual range 0 to 0.99");
    expect(d.notes[0]).toContain("= 1000 gradients");
  });

  it("is silent on models/alexnet.net (momentum 0.9)", () => expectSilentOnAlexnet("AX5017"));
});

describe("weight_decay_range (AX5018)", () => {
  it("fires above 0.01", () => {
    const [d] = findings(alexnetWith(["  weight_decay: 0.0005", "  weight_decay: 0.1"]), "AX5018");
    expect(d.message).toBe("weight decay 0.1 is far outside the usual range 0 to 0.01");
    expect(d.notes[0]).toBe(
      "each step shrinks every weight by ε·λ = 0.001 of itself, 200× the paper's pull toward zero",
    );
  });

  it("is silent on models/alexnet.net (weight decay 0.0005)", () => expectSilentOnAlexnet("AX5018"));
});

describe("batch_not_divisible (AX5019)", () => {
  it("is an error for data placement with an odd batch (`data` is a word in value position)", () => {
    const source = alexnetWith(["  batch: 128", "  batch: 127\n  devices: 2\n  placement: data"]);
    const [d] = findings(source, "AX5019");
    expect(d.message).toBe("batch 127 does not divide over 2 devices under `data` placement");
  });

  it("is an error for hybrid placement with an odd batch, suggesting the neighbours", () => {
    const source = alexnetWith(["  batch: 128", "  batch: 127\n  devices: 2\n  placement: hybrid"]);
    const [d] = findings(source, "AX5019");
    expect(d.severity).toBe("error");
    expect(d.message).toBe("batch 127 does not divide over 2 devices under `hybrid` placement");
    expect(spanText(source, d)).toBe("127");
    expect(d.help).toBe("use batch 126 or 128");
  });

  it("is silent under model placement, which splits the towers, not the batch", () => {
    expect(findings(alexnetWith(["  batch: 128", "  batch: 127\n  devices: 2"]), "AX5019")).toEqual([]);
  });

  it("is silent on models/alexnet.net", () => expectSilentOnAlexnet("AX5019"));
});

describe("ineffective_schedule (AX5020)", () => {
  it("fires on a step longer than the training", () => {
    const source = alexnetWith(["  schedule: plateau(2, 10)\n  max_drops: 3\n", "  schedule: step(100)\n"]);
    const [d] = findings(source, "AX5020");
    expect(d.message).toBe(
      "`schedule: step(100)` never changes the learning rate: it divides the rate after every 100 epochs and the recipe trains for 90",
    );
  });

  it("fires on a plateau that cannot see enough evaluations", () => {
    const [d] = findings(alexnetWith(["  epochs: 90", "  epochs: 6\n  eval_every: 2"]), "AX5020");
    expect(d.message).toBe(
      "`schedule: plateau(2, 10)` never changes the learning rate: a drop needs 3 evaluations before the last epoch, and 6 epochs with `eval_every: 2` make 2",
    );
  });

  it("fires on max_drops: 0", () => {
    const [d] = findings(alexnetWith(["  max_drops: 3", "  max_drops: 0"]), "AX5020");
    expect(d.message).toContain("`max_drops: 0` allows no drop");
  });

  it("removes, as a safe fix, a max_drops that a step schedule ignores", () => {
    const source = alexnetWith(["  schedule: plateau(2, 10)", "  schedule: step(30)"]);
    const [d] = findings(source, "AX5020");
    expect(d.message).toBe(
      "`max_drops: 3` never changes the learning rate: only `plateau` counts its drops, and the schedule is `step(30)`",
    );
    expect(d.fix?.applicability).toBe("safe");
    const fixed = applyFixes(source, [d]).text;
    expect(fixed).not.toContain("max_drops");
    expect(lint(fixed).filter((x) => x.code.startsWith("AX5"))).toEqual([]);
  });

  it("is silent on models/alexnet.net", () => expectSilentOnAlexnet("AX5020"));
});

describe("placement_mismatch (AX5021)", () => {
  it("is an error for model placement on two devices of a one-tower network", () => {
    const source = alexnetWith(
      ["  batch: 128", "  batch: 128\n  devices: 2"],
      ["  towers: 2\n", "  towers: 1\n"],
    );
    const ds = lint(source);
    const [d] = ds.filter((x) => x.code === "AX5021");
    expect(d.severity).toBe("error");
    expect(d.message).toBe(
      "the recipe trains on 2 devices with `model` placement, but `alexnet` has 1 tower and `model` placement puts tower t on device t",
    );
    expect(spanText(source, d)).toBe("2");
  });

  it("is an error for more than two devices", () => {
    const [d] = findings(alexnetWith(["  batch: 128", "  batch: 128\n  devices: 4"]), "AX5021");
    expect(d.message).toContain("alexc places a network on one or two devices");
  });

  it("is silent on models/alexnet.net", () => expectSilentOnAlexnet("AX5021"));
});
