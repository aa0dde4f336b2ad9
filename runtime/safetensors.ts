// Safetensors reader/writer: the interchange format for weights and input tensors (see
// docs/ARCHITECTURE: `<layer>.weight` / `<layer>.bias`, PyTorch layout).
//
// Format (https://github.com/huggingface/safetensors):
//   u64 little-endian N · N bytes of UTF-8 JSON header · data buffer
//   header = { "__metadata__"?: {string: string}, name: {dtype, shape, data_offsets: [begin, end]} }
//   offsets are relative to the data buffer; the tensors tile it exactly (no gaps, no overlaps, no
//   trailing bytes) and writers pad the header with spaces so the data starts 8-byte aligned.
//
// The reader is deliberately stricter than most: a weights file is untrusted input, so every
// inconsistency becomes a DiagnosticError (AX4005 for weights, AX4006 for inputs) that names the
// file and the exact problem, instead of a silently wrong tensor later.
import * as fs from "node:fs";
import { DiagnosticError, diag } from "../compiler/diagnostics.ts";
import { replaceFileAtomically } from "./durable.ts";
import { DTYPES, LITTLE_ENDIAN_HOST, READABLE, toFloat32 } from "./safetensors-dtypes.ts";

export { halfToFloat } from "./safetensors-dtypes.ts";

export interface TensorF32 {
  shape: number[];
  data: Float32Array;
}

/** A tensor as read: always Float32Array, plus the dtype it was stored as. */
export interface LoadedTensor extends TensorF32 {
  dtype: string;
}

export interface SafetensorsContents {
  tensors: Map<string, LoadedTensor>;
  metadata: Record<string, string>;
}

/** Which kind of file this is; selects the diagnostic code (AX4005 weights, AX4006 input). */
export type FileRole = "weights" | "input";

/** The reference implementation refuses larger headers; a bigger one is corruption, not a model. */
export const MAX_HEADER_BYTES = 100_000_000;

function fail(role: FileRole, file: string, problem: string): never {
  throw new DiagnosticError(
    diag(role === "weights" ? "AX4005" : "AX4006", { file: `\`${file}\``, problem }, undefined),
  );
}

// ---- reading ---------------------------------------------------------------------------------------

/** Reads a safetensors file; every tensor converted to f32. */
export function readSafetensors(file: string, role: FileRole): Map<string, LoadedTensor> {
  return readSafetensorsFile(file, role).tensors;
}

/** Like readSafetensors, with the `__metadata__` map. */
export function readSafetensorsFile(file: string, role: FileRole): SafetensorsContents {
  let bytes: Uint8Array;
  try {
    bytes = fs.readFileSync(file);
  } catch (error) {
    fail(role, file, `cannot be read (${ioReason(error)})`);
  }
  // readFileSync gives large files a buffer of their own, so f32 tensors may view it in place.
  return decodeImage(bytes, file, role, isExclusive(bytes));
}

/** Decodes an in-memory safetensors image; `file` only names it in diagnostics. */
export function decodeSafetensors(bytes: Uint8Array, file: string, role: FileRole): SafetensorsContents {
  return decodeImage(bytes, file, role, false);
}

/** `inPlace`: the caller hands `bytes` over, so aligned f32 tensors may be views into it. */
function decodeImage(bytes: Uint8Array, file: string, role: FileRole, inPlace: boolean): SafetensorsContents {
  const bad = (problem: string): never => fail(role, file, problem);
  if (bytes.length < 8) bad(`is ${bytes.length} bytes long, too short for the 8-byte header length`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = view.getBigUint64(0, true);
  if (headerLength > BigInt(bytes.length - 8)) {
    bad(`header length ${headerLength} exceeds the ${bytes.length - 8} bytes after the length field`);
  }
  const n = Number(headerLength);
  if (n > MAX_HEADER_BYTES) bad(`header length ${n} exceeds the ${MAX_HEADER_BYTES}-byte limit`);
  if (n < 2) bad(`header length ${n} is too small to hold a JSON object`);

  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(8, 8 + n));
  } catch {
    return bad("header is not valid UTF-8");
  }
  if (text[0] !== "{") bad(`header must start with \`{\`, found ${JSON.stringify(text.slice(0, 1))}`);
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (error) {
    return bad(`header is not valid JSON (${(error as Error).message})`);
  }
  if (!isRecord(header)) return bad("header is not a JSON object");
  const duplicate = findDuplicateKey(text);
  if (duplicate !== undefined) bad(`header names ${duplicate} twice`);

  const metadata = parseMetadata(header["__metadata__"], bad);
  const data = bytes.subarray(8 + n);
  const entries: { name: string; dtype: string; shape: number[]; begin: number; end: number }[] = [];
  for (const [name, info] of Object.entries(header)) {
    if (name === "__metadata__") continue;
    entries.push({ name, ...parseEntry(name, info, data.length, bad) });
  }

  // The tensors must tile the data buffer exactly: sorted by position, each starts where the
  // previous one ended, and the last ends at the end of the file (the reference's rule).
  const sorted = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let cursor = 0;
  let previous: string | undefined;
  for (const e of sorted) {
    if (e.begin < cursor) {
      bad(
        `tensor \`${e.name}\` (bytes ${e.begin}–${e.end}) overlaps \`${previous}\` (ends at byte ${cursor})`,
      );
    }
    if (e.begin > cursor) {
      bad(
        `${e.begin - cursor} unused bytes before tensor \`${e.name}\` (data_offsets must be contiguous from 0)`,
      );
    }
    cursor = e.end;
    previous = e.name;
  }
  if (cursor !== data.length) {
    bad(`${data.length - cursor} bytes after the last tensor are not covered by any data_offsets`);
  }

  const tensors = new Map<string, LoadedTensor>();
  for (const e of entries) {
    const raw = data.subarray(e.begin, e.end);
    tensors.set(e.name, {
      shape: e.shape,
      dtype: e.dtype,
      data: toFloat32(raw, e.dtype, e.name, bad, inPlace),
    });
  }
  return { tensors, metadata };
}

function parseMetadata(value: unknown, bad: (problem: string) => never): Record<string, string> {
  if (value === undefined) return {};
  if (!isRecord(value)) return bad("`__metadata__` must be an object of strings");
  for (const [key, v] of Object.entries(value)) {
    if (typeof v !== "string") bad(`\`__metadata__\` entry \`${key}\` is ${describe(v)}, expected a string`);
  }
  // fromEntries, not assignment: a key `__proto__` must stay an ordinary entry.
  return Object.fromEntries(Object.entries(value)) as Record<string, string>;
}

function parseEntry(
  name: string,
  info: unknown,
  dataLength: number,
  bad: (problem: string) => never,
): { dtype: string; shape: number[]; begin: number; end: number } {
  const where = `tensor \`${name}\``;
  if (!isRecord(info)) return bad(`${where} is described by ${describe(info)}, expected an object`);
  for (const key of Object.keys(info)) {
    if (key !== "dtype" && key !== "shape" && key !== "data_offsets") {
      bad(`${where} has an unknown field \`${key}\` (expected dtype, shape, data_offsets)`);
    }
  }
  const { dtype, shape, data_offsets: offsets } = info;
  if (typeof dtype !== "string") return bad(`${where}: \`dtype\` is ${describe(dtype)}, expected a string`);
  const size = Object.hasOwn(DTYPES, dtype) ? DTYPES[dtype].bytes : undefined;
  if (size === undefined)
    return bad(`${where} has unknown dtype \`${dtype}\` (known: ${READABLE.join(", ")})`);
  if (DTYPES[dtype].read === undefined) {
    bad(
      `${where} has dtype \`${dtype}\`, which alexc cannot convert to f32 (supported: ${READABLE.join(", ")})`,
    );
  }
  if (!Array.isArray(shape) || !shape.every(isIndex)) {
    return bad(`${where}: \`shape\` must be a list of non-negative integers, got ${JSON.stringify(shape)}`);
  }
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isIndex)) {
    return bad(
      `${where}: \`data_offsets\` must be [begin, end] with non-negative integers, got ${JSON.stringify(offsets)}`,
    );
  }
  const [begin, end] = offsets as [number, number];
  if (end < begin) bad(`${where}: data_offsets [${begin}, ${end}] end before they begin`);
  if (end > dataLength) {
    bad(`${where}: data_offsets [${begin}, ${end}] run past the end of the ${dataLength}-byte data section`);
  }
  // The byte count is checked against the (already bounded) span, so no product can overflow
  // unnoticed: a product above the span fails the comparison either way.
  let elements = 1;
  for (const d of shape as number[]) elements *= d;
  if (elements * size !== end - begin) {
    bad(
      `${where}: shape [${shape.join(", ")}] of ${dtype} needs ${elements * size} bytes ` +
        `but data_offsets [${begin}, ${end}] span ${end - begin}`,
    );
  }
  return { dtype, shape: [...(shape as number[])], begin, end };
}

/**
 * JSON.parse keeps the last of two equal keys silently; a header naming a tensor twice is
 * ambiguous, so scan the (already valid) JSON text for a repeated key in any one object.
 * Returns the repeated key, quoted, or undefined.
 */
function findDuplicateKey(text: string): string | undefined {
  const stack: (Set<string> | null)[] = []; // one entry per open container; null for arrays
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === "{") stack.push(new Set());
    else if (c === "[") stack.push(null);
    else if (c === "}" || c === "]") stack.pop();
    else if (c === '"') {
      let j = i + 1;
      while (text[j] !== '"') j += text[j] === "\\" ? 2 : 1;
      const keys = stack[stack.length - 1];
      let k = j + 1;
      while (k < text.length && /\s/.test(text[k])) k++;
      if (keys && text[k] === ":") {
        const key = JSON.parse(text.slice(i, j + 1)) as string;
        if (keys.has(key)) return `\`${key}\``;
        keys.add(key);
      }
      i = j;
    }
  }
  return undefined;
}

// ---- writing ---------------------------------------------------------------------------------------

/**
 * Encodes f32 tensors. Tensors are laid out in name order (code-point order, as the reference
 * implementation sorts) so equal contents give byte-identical files whatever the Map's insertion
 * order; `__metadata__` comes first; the header is padded with spaces to a multiple of 8 bytes.
 */
export function encodeSafetensors(
  tensors: ReadonlyMap<string, TensorF32>,
  metadata?: Readonly<Record<string, string>>,
  file = "<memory>",
  role: FileRole = "weights",
): Uint8Array {
  const bad = (problem: string): never => fail(role, file, `cannot be written: ${problem}`);
  const names = [...tensors.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  // No prototype: a tensor may be called `__proto__`, and must then be an ordinary key.
  const header: Record<string, unknown> = Object.create(null);
  if (metadata !== undefined) {
    for (const [key, value] of Object.entries(metadata)) {
      if (typeof value !== "string") bad(`metadata entry \`${key}\` is not a string`);
    }
    header["__metadata__"] = { ...metadata };
  }
  let offset = 0;
  for (const name of names) {
    if (name === "__metadata__") bad("`__metadata__` is reserved and cannot name a tensor");
    const { shape, data } = tensors.get(name)!;
    if (!shape.every((d) => isIndex(d))) bad(`tensor \`${name}\` has an invalid shape [${shape.join(", ")}]`);
    const elements = shape.reduce((a, b) => a * b, 1);
    if (elements !== data.length) {
      bad(`tensor \`${name}\` has ${data.length} values but shape [${shape.join(", ")}] needs ${elements}`);
    }
    header[name] = { dtype: "F32", shape: [...shape], data_offsets: [offset, offset + 4 * elements] };
    offset += 4 * elements;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const headerLength = Math.ceil(json.length / 8) * 8;
  if (headerLength > MAX_HEADER_BYTES) bad(`the header would exceed ${MAX_HEADER_BYTES} bytes`);

  const out = new Uint8Array(8 + headerLength + offset);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(headerLength), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.length, 8 + headerLength);
  let at = 8 + headerLength;
  for (const name of names) {
    const { data } = tensors.get(name)!;
    if (LITTLE_ENDIAN_HOST) out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), at);
    else for (let i = 0; i < data.length; i++) view.setFloat32(at + 4 * i, data[i], true);
    at += data.byteLength;
  }
  return out;
}

/**
 * Writes f32 tensors atomically: a temporary file in the same directory (so the rename cannot
 * cross file systems) is written and fsynced, then renamed over `file`, and the directory is
 * fsynced so the rename itself survives a crash. A reader sees the old file or the new one,
 * never a torn one.
 */
export function writeSafetensors(
  file: string,
  tensors: ReadonlyMap<string, TensorF32>,
  metadata?: Readonly<Record<string, string>>,
  role: FileRole = "weights",
): void {
  const bytes = encodeSafetensors(tensors, metadata, file, role);
  try {
    replaceFileAtomically(file, bytes);
  } catch (error) {
    fail(role, file, `cannot be written (${ioReason(error)})`);
  }
}

// ---- helpers ---------------------------------------------------------------------------------------

/** Whether `bytes` is the whole of its ArrayBuffer (not a slice of Node's shared Buffer pool). */
function isExclusive(bytes: Uint8Array): boolean {
  return bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function isIndex(value: unknown): value is number {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= 0;
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "a list";
  return typeof value === "object" ? "an object" : `${typeof value} ${JSON.stringify(value)}`;
}

function ioReason(error: unknown): string {
  const e = error as NodeJS.ErrnoException;
  if (e.code === "ENOENT") return "no such file or directory";
  if (e.code === "EACCES" || e.code === "EPERM") return "permission denied";
  if (e.code === "EISDIR") return "it is a directory";
  return e.message ?? String(error);
}
