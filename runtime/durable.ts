// Durable file primitives shared by every writer that must survive a crash (safetensors, checkpoints,
// metrics, the compiler's plan output): write + fsync, fsync a directory after a rename, and the
// temp-file-then-rename pattern that leaves the old file or the new one, never a torn one.
import * as fs from "node:fs";
import * as path from "node:path";

/** Distinguishes temporary files of concurrent writes from one process (the pid covers others). */
let tempCounter = 0;

/** Creates `file` (which must not exist), writes all of `bytes` and fsyncs it. */
export function writeDurably(file: string, bytes: Uint8Array | string): void {
  const data = typeof bytes === "string" ? Buffer.from(bytes) : bytes;
  const fd = fs.openSync(file, "wx", 0o644);
  try {
    let written = 0;
    while (written < data.length) written += fs.writeSync(fd, data, written, data.length - written);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** Fsyncs a directory so that a rename inside it survives a crash. */
export function syncDirectory(dir: string): void {
  // Not every platform can fsync a directory (Windows cannot open one); the data is already
  // durable there, only the rename's durability is best-effort.
  let fd: number | undefined;
  try {
    fd = fs.openSync(dir, "r");
    fs.fsyncSync(fd);
  } catch {
    // best effort
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/** A temporary path beside `file` (same directory, so a rename cannot cross file systems). */
export function tempPathFor(file: string): string {
  const dir = path.dirname(path.resolve(file));
  return path.join(dir, `.${path.basename(file)}.${process.pid}.${++tempCounter}.tmp`);
}

/** Replaces `file` atomically: temp file written and fsynced, renamed over `file`, directory fsynced. */
export function replaceFileAtomically(file: string, bytes: Uint8Array | string): void {
  const temp = tempPathFor(file);
  try {
    writeDurably(temp, bytes);
    fs.renameSync(temp, file);
  } catch (error) {
    fs.rmSync(temp, { force: true });
    throw error;
  }
  syncDirectory(path.dirname(path.resolve(file)));
}
