// `alexc lsp [--stdio]`: the language server over stdin/stdout.
import { createConnection } from "vscode-languageserver/node";
import type { CliIo } from "../cli.ts";
import { startServer } from "./server.ts";

const usage = "usage: alexc lsp [--stdio]";

export async function lspCommand(args: string[], io: CliIo): Promise<number> {
  // Editors launch servers with `--stdio` and sometimes `--clientProcessId N`, which the protocol
  // library reads from process.argv itself (it exits when that process is gone).
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === "--stdio" || /^--clientProcessId=\d+$/.test(arg)) continue;
    if (arg === "--clientProcessId" && /^\d+$/.test(args[i + 1] ?? "")) {
      i++;
      continue;
    }
    if (arg === "-h" || arg === "--help") {
      io.out(usage);
      return 0;
    }
    io.err(`alexc lsp: unknown argument \`${arg}\`\n${usage}`);
    return 2;
  }
  // stdout carries the protocol: a stray console.log there would corrupt it.
  for (const method of ["log", "info", "debug", "warn"] as const) console[method] = console.error;
  startServer(createConnection(process.stdin, process.stdout));
  // Never settles: the protocol library ends the process on `exit` (status 0 after `shutdown`,
  // 1 without) and when stdin closes.
  return new Promise<number>(() => {});
}
