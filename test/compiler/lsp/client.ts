// A real LSP client for the tests: spawns `alexc lsp --stdio` and talks to it with
// vscode-languageserver-protocol over the child's stdin/stdout.
import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath, pathToFileURL } from "node:url";
import {
  createProtocolConnection,
  DidChangeTextDocumentNotification,
  DidOpenTextDocumentNotification,
  ExitNotification,
  InitializedNotification,
  InitializeRequest,
  PublishDiagnosticsNotification,
  ShutdownRequest,
  StreamMessageReader,
  StreamMessageWriter,
  type InitializeResult,
  type ProtocolConnection,
  type PublishDiagnosticsParams,
  type TextDocumentContentChangeEvent,
} from "vscode-languageserver-protocol/node";

export const root = fileURLToPath(new URL("../../../", import.meta.url));
export const uriOf = (path: string) => pathToFileURL(`${root}${path}`).href;

export interface Client {
  connection: ProtocolConnection;
  child: ChildProcess;
  initialized: InitializeResult;
  /** Every publishDiagnostics notification received, in order. */
  published: PublishDiagnosticsParams[];
  /** The first publication for `uri` at `version` (already received or still to come). */
  diagnostics(uri: string, version: number, timeoutMs?: number): Promise<PublishDiagnosticsParams>;
  open(uri: string, text: string, version?: number): Promise<PublishDiagnosticsParams>;
  change(uri: string, version: number, changes: TextDocumentContentChangeEvent[]): Promise<void>;
  /** shutdown, exit; resolves with the server's exit status. */
  stop(): Promise<number | null>;
  stderr: () => string;
}

export async function startClient(): Promise<Client> {
  const child = spawn(`${root}node_modules/.bin/node`, ["compiler/cli.ts", "lsp", "--stdio"], {
    cwd: root,
    stdio: ["pipe", "pipe", "pipe"],
  });
  let stderr = "";
  child.stderr!.on("data", (chunk) => (stderr += chunk));
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  const connection = createProtocolConnection(
    new StreamMessageReader(child.stdout!),
    new StreamMessageWriter(child.stdin!),
  );
  const published: PublishDiagnosticsParams[] = [];
  const waiters: (() => void)[] = [];
  connection.onNotification(PublishDiagnosticsNotification.type, (params) => {
    published.push(params);
    for (const wake of waiters.splice(0)) wake();
  });
  connection.listen();
  const initialized = await connection.sendRequest(InitializeRequest.type, {
    processId: process.pid,
    rootUri: pathToFileURL(root).href,
    workspaceFolders: null,
    capabilities: {
      textDocument: {
        rename: { prepareSupport: true },
        publishDiagnostics: { relatedInformation: true, versionSupport: true },
      },
    },
  });
  await connection.sendNotification(InitializedNotification.type, {});

  const diagnostics = (uri: string, version: number, timeoutMs = 10_000) =>
    new Promise<PublishDiagnosticsParams>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`no diagnostics for ${uri} v${version}; stderr: ${stderr}`)),
        timeoutMs,
      );
      const look = () => {
        const found = published.find((p) => p.uri === uri && p.version === version);
        if (found) {
          clearTimeout(timer);
          resolve(found);
        } else waiters.push(look);
      };
      look();
    });

  return {
    connection,
    child,
    initialized,
    published,
    diagnostics,
    async open(uri, text, version = 1) {
      await connection.sendNotification(DidOpenTextDocumentNotification.type, {
        textDocument: { uri, languageId: "alexc", version, text },
      });
      return diagnostics(uri, version);
    },
    async change(uri, version, contentChanges) {
      await connection.sendNotification(DidChangeTextDocumentNotification.type, {
        textDocument: { uri, version },
        contentChanges,
      });
    },
    async stop() {
      await connection.sendRequest(ShutdownRequest.type);
      await connection.sendNotification(ExitNotification.type);
      const code = await exited;
      connection.dispose();
      return code;
    },
    stderr: () => stderr,
  };
}

/** The zero-based position of the `nth` occurrence of `needle` in `text` (UTF-16 columns, as LSP). */
export function positionOf(
  text: string,
  needle: string,
  nth = 0,
  delta = 0,
): { line: number; character: number } {
  let at = -1;
  for (let i = 0; i <= nth; i++) {
    at = text.indexOf(needle, at + 1);
    if (at < 0) throw new Error(`\`${needle}\` #${nth} not found`);
  }
  at += delta;
  const before = text.slice(0, at);
  const line = before.split("\n").length - 1;
  return { line, character: at - (before.lastIndexOf("\n") + 1) };
}

/** Applies LSP text edits (non-overlapping, any order) to `text`. */
export function applyEdits(
  text: string,
  edits: { range: { start: Pos; end: Pos }; newText: string }[],
): string {
  const offset = (p: Pos) => {
    const lines = text.split("\n");
    let o = 0;
    for (let i = 0; i < p.line; i++) o += lines[i].length + 1;
    return o + p.character;
  };
  const sorted = [...edits].sort((a, b) => offset(b.range.start) - offset(a.range.start));
  let out = text;
  for (const e of sorted)
    out = out.slice(0, offset(e.range.start)) + e.newText + out.slice(offset(e.range.end));
  return out;
}
type Pos = { line: number; character: number };
