// `alexc fmt [--check] [--stdin] FILE…`: rewrites .net files in canonical form (grammar/format.ts,
// the same text as the Prettier plugin). Exit codes: 0 all formatted (or rewritten), 1 a syntax error,
// an unreadable file or, with --check, a file not in canonical form, 2 bad usage, 70 internal error.
import { chmodSync, readFileSync, realpathSync, renameSync, rmSync, statSync } from "node:fs";
import { dirname } from "node:path";
import { parseArgs } from "node:util";
import { formatSource } from "../grammar/format.ts";
import { syncDirectory, tempPathFor, writeDurably } from "../runtime/durable.ts";
import type { CliIo } from "./cli.ts";
import { renderDiagnostics, summary } from "./render.ts";

const usage = `usage: alexc fmt [--check] FILE…
       alexc fmt [--check] --stdin

Rewrites each FILE in canonical form, in place; prints the files it changed.
  --check    change nothing; list the files that are not in canonical form, exit 1 if there are any
  --stdin    format standard input to standard output (no FILE)
  -h, --help this help

A file with a syntax error is reported and left as it is (exit 1).`;

const STDIN_NAME = "<stdin>";

type Outcome = "formatted" | "changed" | "failed" | "bug";
const exitCodes: Record<Outcome, number> = { formatted: 0, changed: 0, failed: 1, bug: 70 };

/** `readStdin` is for tests; the CLI reads file descriptor 0. */
export async function fmtCommand(
  args: string[],
  io: CliIo,
  readStdin: () => string = () => readFileSync(0, "utf8"),
): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      options: {
        check: { type: "boolean" },
        stdin: { type: "boolean" },
        help: { type: "boolean", short: "h" },
      },
      allowPositionals: true,
      strict: true,
    });
  } catch (e) {
    io.err(`alexc fmt: ${(e as Error).message}\n\n${usage}`);
    return 2;
  }
  const { values, positionals: files } = parsed;
  if (values.help) {
    io.out(usage);
    return 0;
  }
  if (values.stdin ? files.length > 0 : files.length === 0) {
    io.err(`alexc fmt: ${values.stdin ? "--stdin takes no FILE" : "no FILE given"}\n\n${usage}`);
    return 2;
  }
  const check = values.check === true;
  if (values.stdin) return exitCodes[formatStdin(readStdin, check, io)];

  const outcomes = files.map((file) => formatFile(file, check, io));
  const code = Math.max(...outcomes.map((o) => exitCodes[o]));
  const unformatted = outcomes.filter((o) => o === "changed").length;
  if (!check || unformatted === 0) return code;
  const count = unformatted === 1 ? "1 file is" : `${unformatted} files are`;
  io.err(`alexc fmt: ${count} not in canonical form (\`alexc fmt FILE…\` rewrites them)`);
  return Math.max(code, 1);
}

/** Checks or rewrites one file; reports on it as it goes. */
function formatFile(file: string, check: boolean, io: CliIo): Outcome {
  let source: string;
  try {
    source = readFileSync(file, "utf8");
  } catch (e) {
    io.err(`alexc fmt: cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    return "failed";
  }
  const outcome = format(file, source, io);
  if (outcome.text === undefined) return outcome.result;
  if (outcome.text === source) return "formatted";
  if (!check) {
    try {
      replaceKeepingMode(file, outcome.text);
    } catch (e) {
      io.err(`alexc fmt: cannot write ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
      return "failed";
    }
  }
  io.out(file);
  return "changed";
}

function formatStdin(readStdin: () => string, check: boolean, io: CliIo): Outcome {
  const source = readStdin();
  const outcome = format(STDIN_NAME, source, io);
  if (outcome.text === undefined) return outcome.result;
  if (check) {
    if (outcome.text === source) return "formatted";
    io.out(STDIN_NAME);
    return "failed";
  }
  // `io.out` ends what it prints with a newline; the canonical text already ends with one.
  if (outcome.text !== "") io.out(outcome.text.slice(0, -1));
  return "formatted";
}

/** The canonical text, or undefined after reporting why there is none. */
function format(file: string, source: string, io: CliIo): { text?: string; result: Outcome } {
  let result;
  try {
    result = formatSource(source);
  } catch (e) {
    io.err(
      `alexc fmt: ${file}: internal error (this is a bug in alexc, please report it):\n${(e as Error).stack ?? e}`,
    );
    return { result: "bug" };
  }
  if (result.ok) return { text: result.text, result: "formatted" };
  const { diagnostics } = result;
  io.err(
    `${renderDiagnostics(diagnostics, file, source, { color: process.stderr.isTTY })}\n\n${summary(diagnostics)}`,
  );
  return { result: diagnostics.some((d) => d.code.startsWith("AX9")) ? "bug" : "failed" };
}

/**
 * Replaces the file through a temporary file and a rename, so a crash leaves the old text or the new,
 * never a torn one. The file keeps its permissions; a symbolic link keeps pointing at the file.
 */
function replaceKeepingMode(file: string, text: string): void {
  const target = realpathSync(file);
  const mode = statSync(target).mode & 0o7777;
  const temp = tempPathFor(target);
  try {
    writeDurably(temp, text);
    chmodSync(temp, mode);
    renameSync(temp, target);
  } catch (error) {
    rmSync(temp, { force: true });
    throw error;
  }
  syncDirectory(dirname(target));
}
