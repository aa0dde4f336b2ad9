// `npm run bench:lint -- [MODEL.net ...] [--iters K] [--format json]`: how long `alexc lint` takes
// in-process (what the language server pays on every edit): parse, check, every lint rule, the
// suppression comments. Each file's first call is reported apart from the median and 95th
// percentile of K warm calls; for the first file that first call is cold (the JIT has not seen
// the code yet). Default models: every models/*.net, alexnet.net first.
// The target is well under 100 ms for models/alexnet.net. Not a test: wall-clock numbers vary.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { lintSource, defaultLintConfig } from "../compiler/lint/index.ts";

const args = process.argv.slice(2);
const flag = (name: string) => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined);
const iters = Number(flag("--iters") ?? 50);
const json = flag("--format") === "json";
const root = new URL("../", import.meta.url).pathname;
const given = args.filter((a) => a.endsWith(".net"));
const files = given.length
  ? given
  : readdirSync(join(root, "models"))
      .filter((f) => f.endsWith(".net"))
      // alexnet.net first: its first call is the process's, so it pays for the JIT (the cold figure).
      .sort((a, b) => Number(b === "alexnet.net") - Number(a === "alexnet.net") || a.localeCompare(b))
      .map((f) => join("models", f));

const quantile = (xs: number[], q: number) =>
  [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))];
const ms = (x: number) => `${x.toFixed(2)} ms`;

const rows = files.map((file) => {
  const source = readFileSync(file.startsWith("/") ? file : join(root, file), "utf8");
  const options = { config: defaultLintConfig }; // the search for alexc.json is I/O, not linting
  let t = performance.now();
  const findings = lintSource(source, options).length;
  const cold = performance.now() - t;
  const times: number[] = [];
  for (let i = 0; i < iters; i++) {
    t = performance.now();
    lintSource(source, options);
    times.push(performance.now() - t);
  }
  return {
    file,
    findings,
    firstMs: cold,
    medianMs: quantile(times, 0.5),
    p95Ms: quantile(times, 0.95),
    iters,
  };
});

if (json) console.log(JSON.stringify(rows, null, 2));
else {
  const width = Math.max(...rows.map((r) => r.file.length));
  console.log(
    `alexc lint, in-process, ${iters} warm runs per file after a first run (cold for the first file)\n`,
  );
  console.log(`${"file".padEnd(width)}  findings     first    median       p95`);
  for (const r of rows)
    console.log(
      `${r.file.padEnd(width)}  ${String(r.findings).padStart(8)}  ${ms(r.firstMs).padStart(8)}  ${ms(r.medianMs).padStart(8)}  ${ms(r.p95Ms).padStart(8)}`,
    );
  const alexnet = rows.find((r) => r.file.endsWith("models/alexnet.net"));
  if (alexnet)
    console.log(
      `\nmodels/alexnet.net: median ${ms(alexnet.medianMs)} (target: well under 100 ms) — ${alexnet.medianMs < 100 ? "met" : "NOT met"}`,
    );
}
