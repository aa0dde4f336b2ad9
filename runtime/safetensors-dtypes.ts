// The safetensors dtypes alexc reads, and the conversion of a tensor's raw bytes to f32
// (safetensors.ts validates the file around them).

interface Dtype {
  bytes: number;
  /** Reads element i as a number; absent for dtypes alexc knows but cannot convert. */
  read?: (v: DataView, i: number) => number;
}
const bf16Scratch = new Float32Array(1);
const bf16Bits = new Uint32Array(bf16Scratch.buffer);
export const DTYPES: Record<string, Dtype> = {
  F32: { bytes: 4, read: (v, i) => v.getFloat32(4 * i, true) },
  F64: { bytes: 8, read: (v, i) => v.getFloat64(8 * i, true) },
  F16: { bytes: 2, read: (v, i) => halfToFloat(v.getUint16(2 * i, true)) },
  // bf16 is the top half of an f32: widening is exact.
  BF16: { bytes: 2, read: (v, i) => ((bf16Bits[0] = v.getUint16(2 * i, true) << 16), bf16Scratch[0]) },
  I64: { bytes: 8, read: (v, i) => exactNumber(v.getBigInt64(8 * i, true)) },
  U64: { bytes: 8, read: (v, i) => exactNumber(v.getBigUint64(8 * i, true)) },
  I32: { bytes: 4, read: (v, i) => v.getInt32(4 * i, true) },
  U32: { bytes: 4, read: (v, i) => v.getUint32(4 * i, true) },
  I16: { bytes: 2, read: (v, i) => v.getInt16(2 * i, true) },
  U16: { bytes: 2, read: (v, i) => v.getUint16(2 * i, true) },
  I8: { bytes: 1, read: (v, i) => v.getInt8(i) },
  U8: { bytes: 1, read: (v, i) => v.getUint8(i) },
  BOOL: { bytes: 1, read: (v, i) => (v.getUint8(i) !== 0 ? 1 : 0) },
  F8_E4M3: { bytes: 1 },
  F8_E5M2: { bytes: 1 },
};
/** A 64-bit integer as a number; throws when inexact, since past 2^53 the later f32 check cannot see the rounding. */
function exactNumber(b: bigint): number {
  const x = Number(b);
  if (BigInt(x) !== b) throw new RangeError(`${b}`);
  return x;
}
export const READABLE = Object.keys(DTYPES).filter((d) => DTYPES[d].read !== undefined);

export const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

export function toFloat32(
  raw: Uint8Array,
  dtype: string,
  name: string,
  bad: (problem: string) => never,
  inPlace: boolean,
): Float32Array {
  const { bytes, read } = DTYPES[dtype];
  if (dtype === "F32" && LITTLE_ENDIAN_HOST) {
    // A 244 MB AlexNet checkpoint is not worth copying when the buffer is ours and aligned.
    if (inPlace && raw.byteOffset % 4 === 0)
      return new Float32Array(raw.buffer, raw.byteOffset, raw.length / 4);
    // Otherwise copy into a fresh, aligned buffer: the caller's bytes may change or be unaligned.
    // (Not `raw.slice()`: on a Node Buffer that is a view into a shared pool, not a copy.)
    const copy = new Uint8Array(raw.length);
    copy.set(raw);
    return new Float32Array(copy.buffer);
  }
  const v = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const out = new Float32Array(raw.length / bytes);
  for (let i = 0; i < out.length; i++) {
    let x: number;
    try {
      x = read!(v, i);
    } catch (error) {
      return bad(
        `tensor \`${name}\` (${dtype}) element ${i} = ${(error as Error).message} is not exactly representable in f32`,
      );
    }
    out[i] = x;
    if (out[i] === x || Number.isNaN(x)) continue;
    // F64 narrows by rounding to nearest, the only sensible reading of f64 weights, unless a finite
    // value overflows; integers must come through exactly (|v| ≤ 2^24 always does).
    if (dtype !== "F64")
      bad(`tensor \`${name}\` (${dtype}) element ${i} = ${x} is not exactly representable in f32`);
    if (Number.isFinite(x) && !Number.isFinite(out[i]))
      bad(`tensor \`${name}\` (F64) element ${i} = ${x} overflows f32`);
  }
  return out;
}

/** IEEE 754 binary16 → number, exact (subnormals, infinities and NaN included). */
export function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exponent = (h >> 10) & 0x1f;
  const fraction = h & 0x3ff;
  if (exponent === 0) return sign * fraction * 2 ** -24;
  if (exponent === 0x1f) return fraction === 0 ? sign * Infinity : NaN;
  return sign * (1 + fraction / 1024) * 2 ** (exponent - 15);
}
