// `alexc lint FILE… [--fix] [--format text|json|sarif] [--max-warnings N] [--config alexc.json]` and
// `alexc explain CODE | --list`. Exit status: 0 no errors (and no more warnings than --max-warnings
// allows), 1 errors in a file (or too many warnings, or a file that cannot be read, as for
// `alexc check`), 2 bad usage — an unknown flag, no file, or an alexc.json that does not validate:
// a broken configuration is a broken invocation, and nothing is linted under it (ESLint's rule too).
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, relative, resolve, sep } from "node:path";
import { parseArgs } from "node:util";
import type { CliIo } from "../cli.ts";
import { VERSION } from "../command-context.ts";
import { catalogue, didYouMean, hasErrors, type Code, type Diagnostic } from "../diagnostics.ts";
import { diagnosticsToJson, renderDiagnostics, summary } from "../render.ts";
import { readLintConfig, type LintConfig } from "./config.ts";
import { fixSource } from "./fix.ts";
import { findRule, lintRules, lintSource, loadLintConfig, ruleNames } from "./index.ts";
import { toSarif } from "./sarif.ts";

const lintUsage = `usage: alexc lint FILE... [options]

  Everything \`alexc check\` reports, plus lint warnings with a code each (\`alexc explain CODE\`).
  Severities and thresholds come from the nearest alexc.json above each file.

options:
  --fix                  apply the safe fixes and format the file
  --format text|json|sarif
                         text (default, on stderr), JSON or SARIF 2.1.0 (on stdout)
  --max-warnings N       exit 1 when there are more than N warnings (default: no limit)
  --config FILE          read this alexc.json instead of searching for one
  -h, --help             this help

exit status: 0 no errors, 1 errors (or more warnings than --max-warnings), 2 bad usage or a bad alexc.json`;

const explainUsage = `usage: alexc explain CODE | RULE | --list

  The long explanation of a diagnostic code (AX5001) or lint rule (unused_layer).
  --list prints every lint rule: code, name, default severity, summary.`;

function packageHomepage(): string | undefined {
  const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as {
    homepage?: string;
    repository?: string | { url?: string };
  };
  const repo = typeof pkg.repository === "string" ? pkg.repository : pkg.repository?.url;
  const uri = pkg.homepage ?? repo;
  return uri && /^https?:\/\//.test(uri) ? uri : undefined;
}

export async function lintCommand(args: string[], io: CliIo): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      strict: true,
      options: {
        fix: { type: "boolean" },
        format: { type: "string" },
        "max-warnings": { type: "string" },
        config: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    });
  } catch (e) {
    io.err(`alexc lint: ${(e as Error).message}\n\n${lintUsage}`);
    return 2;
  }
  const { values, positionals: files } = parsed;
  if (values.help) {
    io.out(lintUsage);
    return 0;
  }
  if (files.length === 0) {
    io.err(`alexc lint: no FILE given\n\n${lintUsage}`);
    return 2;
  }
  const format = values.format ?? "text";
  if (format !== "text" && format !== "json" && format !== "sarif") {
    io.err(`alexc lint: --format must be text, json or sarif, got \`${format}\``);
    return 2;
  }
  let maxWarnings = Number.POSITIVE_INFINITY;
  if (values["max-warnings"] !== undefined) {
    maxWarnings = Number(values["max-warnings"]);
    if (!Number.isInteger(maxWarnings) || maxWarnings < 0) {
      io.err(`alexc lint: --max-warnings must be an integer ≥ 0, got \`${values["max-warnings"]}\``);
      return 2;
    }
  }

  // One configuration per directory; a bad one stops the run before any file is linted.
  const configs = new Map<string, LintConfig>();
  const configFor = (file: string): LintConfig | undefined => {
    const dir = dirname(resolve(file));
    const key = values.config ?? dir;
    if (configs.has(key)) return configs.get(key);
    const found = values.config
      ? { path: values.config, ...readLintConfig(values.config, ruleNames) }
      : loadLintConfig(dir);
    if (found.diagnostics.length) {
      const text = found.path ? safeRead(found.path) : "";
      io.err(
        `${renderDiagnostics(found.diagnostics, found.path ?? "alexc.json", text, { color: process.stderr.isTTY })}\n\n` +
          `alexc lint: ${found.path ?? "alexc.json"} is not a valid configuration; nothing was linted`,
      );
      return undefined;
    }
    configs.set(key, found.config);
    return found.config;
  };

  const results: { file: string; source: string; diagnostics: Diagnostic[] }[] = [];
  let unreadable = false;
  for (const file of files) {
    const config = configFor(file);
    if (!config) return 2;
    let source: string;
    try {
      source = readFileSync(file, "utf8");
    } catch (e) {
      io.err(`alexc: cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
      unreadable = true;
      continue;
    }
    if (values.fix) {
      const fixed = fixSource(source, { config });
      if (fixed.text !== source) {
        writeFileSync(file, fixed.text);
        if (format === "text")
          io.err(
            `${file}: ${fixed.fixed ? `fixed ${fixed.fixed} finding${fixed.fixed === 1 ? "" : "s"} and ` : ""}formatted`,
          );
      }
      results.push({ file, source: fixed.text, diagnostics: fixed.diagnostics });
    } else results.push({ file, source, diagnostics: lintSource(source, { config }) });
  }

  const all = results.flatMap((r) => r.diagnostics);
  if (format === "json")
    io.out(
      JSON.stringify(
        results.flatMap((r) => diagnosticsToJson(r.diagnostics, r.file)),
        null,
        2,
      ),
    );
  else if (format === "sarif") {
    const uri = (file: string) => relative(process.cwd(), resolve(file)).split(sep).join("/");
    const log = toSarif(
      results.map((r) => ({ uri: uri(r.file), diagnostics: r.diagnostics })),
      { version: VERSION, informationUri: packageHomepage(), rules: lintRules },
    );
    io.out(JSON.stringify(log, null, 2));
  } else {
    const color = process.stderr.isTTY;
    for (const r of results)
      if (r.diagnostics.length) io.err(renderDiagnostics(r.diagnostics, r.file, r.source, { color }) + "\n");
    if (all.length) io.err(summary(all) || `${all.length} note${all.length === 1 ? "" : "s"}`);
  }

  const warnings = all.filter((d) => d.severity === "warning").length;
  if (hasErrors(all) || unreadable) return 1;
  if (warnings > maxWarnings) {
    io.err(`alexc lint: ${warnings} warnings, more than --max-warnings ${maxWarnings}`);
    return 1;
  }
  return 0;
}

function safeRead(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return "";
  }
}

const phases: Record<string, string> = {
  AX1: "a syntax error, reported by the parser: the file is not valid `.net` text at this point",
  AX2: "a name, attribute or shape error, reported by `alexc check`: the network does not describe a valid graph",
  AX3: "a placement or device-limit problem, reported when the network is placed on devices or its memory is planned",
  AX4: "a code-generation or runtime problem, reported while compiling kernels or running them on a device",
  AX5: "reported by `alexc lint`: the lint configuration (alexc.json) does not validate, so nothing is linted under it",
  AX9: "an internal error: a bug in alexc, not in the network; please report it",
};

export async function explainCommand(args: string[], io: CliIo): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      strict: true,
      options: { list: { type: "boolean" }, help: { type: "boolean", short: "h" } },
    });
  } catch (e) {
    io.err(`alexc explain: ${(e as Error).message}\n\n${explainUsage}`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    io.out(explainUsage);
    return 0;
  }
  if (values.list) {
    if (positionals.length) {
      io.err(`alexc explain: --list takes no CODE\n\n${explainUsage}`);
      return 2;
    }
    const width = Math.max(...lintRules.map((r) => r.name.length));
    io.out(
      lintRules
        .map((r) => `${r.code}  ${r.name.padEnd(width)}  ${r.severity.padEnd(7)}  ${r.summary}`)
        .join("\n"),
    );
    return 0;
  }
  if (positionals.length !== 1) {
    io.err(`alexc explain: give exactly one CODE\n\n${explainUsage}`);
    return 2;
  }
  const key = positionals[0];
  const rule = findRule(key) ?? findRule(key.toUpperCase());
  if (rule) {
    io.out(
      `${rule.code} ${rule.name} (lint, ${rule.severity} by default): ${rule.summary}\n\n${rule.explanation}\n\n` +
        `Configure it in alexc.json: { "lint": { "rules": { "${rule.name}": "off" | "info" | "warning" | "error" } } }\n` +
        `Suppress it on one line: # alexc-disable-next-line ${rule.name}`,
    );
    return 0;
  }
  const code = key.toUpperCase();
  if (Object.hasOwn(catalogue, code)) {
    const entry = catalogue[code as Code];
    io.out(`${code} (${entry.severity}): ${entry.template}\n\n${phases[code.slice(0, 3)] ?? ""}.`);
    return 0;
  }
  const similar = didYouMean(key, [...Object.keys(catalogue), ...lintRules.map((r) => r.name)]);
  io.err(`alexc explain: unknown code \`${key}\`${similar ? `; ${similar}` : ""}\n\n${explainUsage}`);
  return 2;
}
