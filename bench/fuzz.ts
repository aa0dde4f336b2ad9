// `npm run bench:fuzz -- [--count N] [--seed S] [--start I] [--out DIR] [--slow-ms MS]`: fuzzes the
// front end (parse → check → lint → format, and the lint fixes) with N generated and mutated inputs
// (default 100,000) and checks on each what test/helpers/fuzz-check.ts promises: nothing throws, no
// internal error, every diagnostic inside the text, the formatter never changes meaning, fixed files
// still parse. Input I of seed S is the same on every run: `--start I --count 1` replays it.
// Progress goes to stderr; the summary to stdout; each failing check's first inputs (and a shrunk
// reproducer of the first) to DIR (default runs/fuzz). Exit 1 on any failure.
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { checkFrontEnd, minimize, runFuzz, type FuzzSummary } from "../test/helpers/fuzz-check.ts";

const args = process.argv.slice(2);
const flag = (name: string, fallback: number) =>
  args.includes(name) ? Number(args[args.indexOf(name) + 1]) : fallback;
const count = flag("--count", 100_000);
const seed = flag("--seed", 1);
const start = flag("--start", 0);
const slowMs = flag("--slow-ms", 10_000);
const outDir = args.includes("--out") ? args[args.indexOf("--out") + 1] : "runs/fuzz";
if (![count, seed, start, slowMs].every(Number.isFinite)) {
  console.error("usage: bench:fuzz [--count N] [--seed S] [--start I] [--out DIR] [--slow-ms MS]");
  process.exit(2);
}

const began = performance.now();
let lastReport = began;
const rate = (n: number, ms: number) => (n / (ms / 1000)).toFixed(0);
const failed = (s: FuzzSummary) => Object.values(s.failuresPerCheck).reduce((a, b) => a + b, 0);

console.error(`fuzzing the front end: ${count} inputs, seed ${seed}, from input ${start}`);
const summary = runFuzz({
  seed,
  count,
  start,
  slowMs,
  onProgress: (done, s) => {
    const now = performance.now();
    if (now - lastReport < 10_000 && done !== count) return;
    lastReport = now;
    const elapsed = now - began;
    console.error(
      `  ${done}/${count} (${((100 * done) / count).toFixed(1)} %), ${rate(done, elapsed)} inputs/s, ` +
        `${failed(s)} failing, slowest ${s.slowest.ms.toFixed(0)} ms, heap ${(process.memoryUsage().heapUsed / 2 ** 20).toFixed(0)} MiB`,
    );
  },
});

const reproducers: string[] = [];
if (summary.failing.length > 0) {
  mkdirSync(outDir, { recursive: true });
  const minimized = new Set<string>();
  for (const c of summary.failing) {
    const base = join(outDir, `seed${seed}-input${c.index}`);
    writeFileSync(`${base}.net`, c.text);
    writeFileSync(`${base}.json`, JSON.stringify({ ...c, text: undefined }, null, 2));
    reproducers.push(`${base}.net`);
    // One shrunk reproducer per check: the first input that broke it.
    for (const check of new Set(c.failures.map((f) => f.check))) {
      if (minimized.has(check) || check === "slow") continue;
      minimized.add(check);
      console.error(`  shrinking input ${c.index} (${check}) …`);
      const small = minimize(c.text, (t) => checkFrontEnd(t).some((f) => f.check === check));
      const file = `${base}.min-${check.replace(/[^A-Za-z0-9]+/g, "_")}.net`;
      writeFileSync(file, small);
      reproducers.push(file);
    }
  }
}

const seconds = summary.ms / 1000;
console.log(`alexc front-end fuzz: seed ${seed}, inputs ${start}..${start + summary.count - 1}`);
console.log(
  `inputs:     ${summary.count} in ${seconds.toFixed(1)} s (${rate(summary.count, summary.ms)} inputs/s)`,
);
console.log(
  `generators: ${Object.entries(summary.perGenerator)
    .sort((a, b) => b[1] - a[1])
    .map(([g, n]) => `${g} ${n}`)
    .join(", ")}`,
);
const s = summary.slowest;
console.log(`slowest:    input ${s.index} (${s.generator}, ${s.length} chars) ${s.ms.toFixed(0)} ms`);
console.log(`failing:    ${failed(summary)} input(s)`);
for (const [check, n] of Object.entries(summary.failuresPerCheck)) console.log(`  ${n} × ${check}`);
for (const c of summary.failing.slice(0, 20)) {
  const first = c.failures[0];
  console.log(`  input ${c.index} (${c.generator}): ${first.check}: ${first.detail.split("\n")[0]}`);
}
if (reproducers.length) console.log(`reproducers: ${reproducers.join(" ")}`);
process.exit(failed(summary) > 0 ? 1 : 0);
