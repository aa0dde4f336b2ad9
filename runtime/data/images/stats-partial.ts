// A statistics pass over ILSVRC-2012's 1.28M images takes hours on a CPU; a kill or a crash must not
// cost them. At intervals, at a moment when every file before a watermark is done, the pass writes
// its sums so far and what it found next to the cache (`<cache>.partial`, atomically). A later pass
// over the same file list (same hash and size) resumes at the watermark. The sums are exact integers,
// so the final statistics are bit-identical to an uninterrupted pass's.
import * as fs from "node:fs";
import * as path from "node:path";
import { replaceFileAtomically } from "../../durable.ts";
import type { StatsAccumulator } from "./stats.ts";
import type { Conversion, SkippedFile } from "./types.ts";

const FORMAT = "alexc-image-stats-partial-1";

export interface PartialPass {
  hash: string;
  size: number;
  /** Files (train then val, in the pass's order) all done before this index. */
  done: number;
  acc: StatsAccumulator;
  unreadable: SkippedFile[];
  conversions: Partial<Record<Conversion, number>>;
}

export function partialPath(cacheFile: string): string {
  return `${cacheFile}.partial`;
}

/** Writes `p` atomically; false (and nothing changed) when the folder cannot be written. */
export function writePartial(file: string, p: PartialPass): boolean {
  const json = JSON.stringify({
    format: FORMAT,
    hash: p.hash,
    size: p.size,
    done: p.done,
    count: p.acc.count,
    pixelSum: Buffer.from(
      p.acc.pixelSum.buffer,
      p.acc.pixelSum.byteOffset,
      p.acc.pixelSum.byteLength,
    ).toString("base64"),
    channelSum: p.acc.channelSum.map(String),
    productSum: p.acc.productSum.map(String),
    unreadable: p.unreadable,
    conversions: p.conversions,
  });
  try {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    replaceFileAtomically(file, json);
    return true;
  } catch {
    return false;
  }
}

/** The partial pass in `file` if it is one for exactly this hash and size; anything else is ignored. */
export function readPartial(file: string, hash: string, size: number): PartialPass | undefined {
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(file, "utf8"));
  } catch {
    return undefined; // absent or damaged: start from the beginning
  }
  const r = raw as Record<string, unknown>;
  if (r.format !== FORMAT || r.hash !== hash || r.size !== size) return undefined;
  try {
    const bytes = Buffer.from(String(r.pixelSum), "base64");
    if (bytes.length !== 3 * size * size * 8) return undefined;
    const pixelSum = new Float64Array(3 * size * size);
    new Uint8Array(pixelSum.buffer).set(bytes);
    const ints = (v: unknown, n: number) => {
      if (!Array.isArray(v) || v.length !== n) throw new Error("bad sums");
      return v.map((x) => BigInt(String(x)));
    };
    const done = Number(r.done);
    const count = Number(r.count);
    if (!Number.isInteger(done) || done < 0 || !Number.isInteger(count) || count < 0 || count > done)
      return undefined;
    if (!Array.isArray(r.unreadable) || typeof r.conversions !== "object" || r.conversions === null)
      return undefined;
    return {
      hash,
      size,
      done,
      acc: {
        size,
        count,
        pixelSum,
        channelSum: ints(r.channelSum, 3) as [bigint, bigint, bigint],
        productSum: ints(r.productSum, 6),
      },
      unreadable: r.unreadable as SkippedFile[],
      conversions: r.conversions as Partial<Record<Conversion, number>>,
    };
  } catch {
    return undefined;
  }
}

/** Removes the partial files of a finished pass; a leftover is harmless (its hash is checked). */
export function removePartials(files: readonly string[]): void {
  for (const f of files) fs.rmSync(f, { force: true });
}
