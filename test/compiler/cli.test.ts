import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { main } from "../../compiler/cli.ts";
import { planSchema } from "../../compiler/plan.ts";

const alexnet = new URL("../../models/alexnet.net", import.meta.url).pathname;

async function alexc(...args: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(args, { out: (t) => void out.push(t), err: (t) => void err.push(t) });
  return { code, out: out.join("\n"), err: err.join("\n") };
}

function tempFile(name: string, text: string): string {
  const dir = mkdtempSync(join(tmpdir(), "alexc-cli-"));
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

describe("alexc CLI", () => {
  it("check: a clean model exits 0", async () => {
    expect((await alexc("check", alexnet)).code).toBe(0);
  });

  it("check: prints file:line:col, the code, the source line and a caret; exits 1", async () => {
    const file = tempFile(
      "bad.net",
      "network n {\n  input x: f32[3, 8, 8]\n  classes: 2\n  c = convv(x)\n}\n",
    );
    const { code, err } = await alexc("check", file);
    expect(code).toBe(1);
    expect(err).toContain(`${file}:4:7: error AX2001: unknown layer kind \`convv\``);
    expect(err).toContain("4 |   c = convv(x)");
    expect(err).toMatch(/\|\s{7}\^{5}/);
    expect(err).toContain("help: did you mean `conv`?");
  });

  it("check --format json gives machine-readable diagnostics", async () => {
    const file = tempFile(
      "bad.net",
      "network n {\n  input x: f32[3, 8, 8]\n  classes: 2\n  c = convv(x)\n}\n",
    );
    const { code, out } = await alexc("check", file, "--format", "json");
    expect(code).toBe(1);
    const [d] = JSON.parse(out);
    expect(d).toMatchObject({ code: "AX2001", severity: "error", line: 4, column: 7, file });
  });

  it("info reports the per-tower table and 60,965,224 parameters", async () => {
    const { code, out } = await alexc("info", alexnet);
    expect(code).toBe(0);
    expect(out).toContain("60,965,224 parameters");
    expect(out).toMatch(/conv1\s+conv\s+split\(2\)\s+48×55×55\s+34,944/);
    const json = JSON.parse((await alexc("info", alexnet, "--format", "json")).out);
    expect(json.totals.params).toBe(60_965_224);
  });

  it("info reports kernel dispatches per training step before and after fusion", async () => {
    const { out } = await alexc("info", alexnet);
    // 84 → 42 kernels per run of the training schedule, run twice per step (micro-batches of 64):
    // activations, LRNs, arg-maxes and dropout masks fused (fuse.ts), bias gradients folded into
    // the weight gradients (fuse-backward.ts), one optimizer kernel (fuse-optimizer.ts)
    expect(out).toContain(
      "kernel dispatches per training step (batch 128, 2 micro-steps): 168 unfused, 84 fused; forward at batch 1: 21 unfused, 12 fused",
    );
    const json = JSON.parse((await alexc("info", alexnet, "--format", "json")).out);
    // conv3–conv5 each run as Winograd input transform, GEMM, output transform: forward plans
    // transform the weights once per upload; a training step (each of its micro-steps) transforms
    // them every time, runs the data gradients the same way, and the weight gradients as ∂L/∂y
    // transform, GEMM (on the forward's input transform) and output transform
    expect(json.dispatches.training).toEqual({
      ...{ batch: 128, microSteps: 2, unfused: 168, fused: 84 },
      fusedWinograd: 84 + 2 * 3 * (3 + 3 + 2),
    });
    expect(out).toContain(
      "with Winograd 3×3 convolutions (the default): 132 per training step, 18 per forward run",
    );
    expect(json.dispatches.forward).toEqual({ batch: 1, unfused: 21, fused: 12, fusedWinograd: 18 });
  });

  it("compile --explain-fusion lists each group and why it ends", async () => {
    const { code, out } = await alexc("compile", alexnet, "--explain-fusion");
    expect(code).toBe(0);
    expect(out.split("\n")[0]).toBe("12 groups for 23 layers (9 fused)");
    expect(out).toMatch(/^norm1\+pool1 +pool1 computes norm1's LRN in its loads/m);
    expect(out).toMatch(/^fc6\+relu6\+drop6 +fc6 with relu epilogue and drop6's mask in training/m);
    expect(out).toMatch(/^fc8 +alone; ends: its output is the logits/m);
  });

  it("compile --dump-ir prints one binding per line with shape and tower", async () => {
    const { code, out } = await alexc("compile", alexnet, "--dump-ir");
    expect(code).toBe(0);
    expect(out).toMatch(
      /^%conv2: f32\[256,27,27\] @split\(2\) = conv\(%pool1, %conv2\.weight, %conv2\.bias\) \{.*towers=local, groups=2.*\}/m,
    );
    expect(out).toMatch(/^%fc8: f32\[1000\] @tower0 = dense\(/m);
  });

  it("compile -o writes a valid plan and one WGSL file per kernel, without a GPU", async () => {
    const dir = mkdtempSync(join(tmpdir(), "alexc-plan-"));
    const { code, err } = await alexc("compile", alexnet, "-o", dir);
    expect(code).toBe(0);
    // conv1's training activation at the recipe's batch 128 exceeds a 128 MiB binding: the training
    // plan is micro-batched (two runs of 64 per step) instead of refused. 87 kernels: 54 with direct
    // convolutions, and conv3–conv5's three more Winograd stages each in the step's forward, its data
    // gradients and the evaluation schedule, and two more in its weight gradients.
    expect(err).toContain("train/plan.json (87 kernels, batch 128 in micro-batches of 64)");
    const train = planSchema.parse(JSON.parse(readFileSync(join(dir, "train", "plan.json"), "utf8")));
    expect(train).toMatchObject({ mode: "train", batch: 128, microBatch: 64 });
    expect(readdirSync(dir)).toEqual(
      expect.arrayContaining(["graph.json", "train.ts", "infer.ts", "plan.json"]),
    );
    const plan = planSchema.parse(JSON.parse(readFileSync(join(dir, "plan.json"), "utf8")));
    const files = readdirSync(join(dir, "kernels"));
    expect(files.length).toBe(plan.kernels.length);
    expect(plan.params.length).toBe(16);
    const conv2 = plan.kernels.find((k) => k.layer === "conv2")!;
    expect(readFileSync(join(dir, conv2.file), "utf8")).toContain("conv2");
  });

  it("bad usage exits 2 with the usage text", async () => {
    expect((await alexc()).code).toBe(2);
    expect((await alexc("frobnicate", alexnet)).code).toBe(2);
    const r = await alexc("check", alexnet, "--format", "yaml");
    expect(r.code).toBe(2);
    expect((await alexc("compile", alexnet, "--bogus")).code).toBe(2);
  });

  it("a missing file is a clear error, not a stack trace", async () => {
    const r = await alexc("check", "/nonexistent/model.net");
    expect(r.code).toBe(1);
    expect(r.err).toBe("alexc: cannot read /nonexistent/model.net: ENOENT");
  });
});
