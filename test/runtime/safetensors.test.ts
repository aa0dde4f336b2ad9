import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import fc from "fast-check";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { DiagnosticError } from "../../compiler/diagnostics.ts";
import {
  decodeSafetensors,
  encodeSafetensors,
  halfToFloat,
  readSafetensors,
  readSafetensorsFile,
  writeSafetensors,
  type TensorF32,
} from "../../runtime/safetensors.ts";

/** Assembles a file: u64 LE header length, header text padded with spaces to 8 bytes, data. */
function assemble(header: string | object, data: Uint8Array = new Uint8Array(0), pad = true): Uint8Array {
  const text = typeof header === "string" ? header : JSON.stringify(header);
  let json = new TextEncoder().encode(text);
  if (pad && json.length % 8 !== 0) {
    const padded = new Uint8Array(Math.ceil(json.length / 8) * 8).fill(0x20);
    padded.set(json);
    json = padded;
  }
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

function f32Bytes(values: number[]): Uint8Array {
  return new Uint8Array(new Float32Array(values).buffer);
}

function diagnosticOf(fn: () => unknown): DiagnosticError {
  try {
    fn();
  } catch (error) {
    if (error instanceof DiagnosticError) return error;
    throw error;
  }
  throw new Error("expected a DiagnosticError, nothing was thrown");
}

function expectProblem(bytes: Uint8Array, pattern: RegExp, role: "weights" | "input" = "weights"): void {
  const error = diagnosticOf(() => decodeSafetensors(bytes, "model.safetensors", role));
  expect(error.diagnostics).toHaveLength(1);
  const [d] = error.diagnostics;
  expect(d.code).toBe(role === "weights" ? "AX4005" : "AX4006");
  expect(d.message).toMatch(/^(weights|input) file `model\.safetensors`: /);
  expect(d.message).toMatch(pattern);
}

const entry = (dtype: string, shape: number[], begin: number, end: number) => ({
  dtype,
  shape,
  data_offsets: [begin, end],
});

describe("safetensors encoding", () => {
  it("matches the reference implementation byte for byte", () => {
    // huggingface/safetensors, safetensors/src/tensor.rs, test_serialization.
    const expected = [
      64, 0, 0, 0, 0, 0, 0, 0, 123, 34, 97, 116, 116, 110, 46, 48, 34, 58, 123, 34, 100, 116, 121, 112, 101,
      34, 58, 34, 70, 51, 50, 34, 44, 34, 115, 104, 97, 112, 101, 34, 58, 91, 49, 44, 50, 44, 51, 93, 44, 34,
      100, 97, 116, 97, 95, 111, 102, 102, 115, 101, 116, 115, 34, 58, 91, 48, 44, 50, 52, 93, 125, 125, 0, 0,
      0, 0, 0, 0, 128, 63, 0, 0, 0, 64, 0, 0, 64, 64, 0, 0, 128, 64, 0, 0, 160, 64,
    ];
    const tensors = new Map([["attn.0", { shape: [1, 2, 3], data: new Float32Array([0, 1, 2, 3, 4, 5]) }]]);
    expect([...encodeSafetensors(tensors)]).toEqual(expected);
    const back = decodeSafetensors(new Uint8Array(expected), "ref", "weights").tensors.get("attn.0")!;
    expect(back.shape).toEqual([1, 2, 3]);
    expect([...back.data]).toEqual([0, 1, 2, 3, 4, 5]);
  });

  it("round-trips tensors and metadata, including scalars and empty tensors", () => {
    const tensors = new Map<string, TensorF32>([
      [
        "conv1.weight",
        { shape: [4, 3, 2, 2], data: Float32Array.from({ length: 48 }, (_, i) => i * 0.5 - 7) },
      ],
      ["conv1.bias", { shape: [4], data: new Float32Array([1, -0, Infinity, NaN]) }],
      ["scalar", { shape: [], data: new Float32Array([3.25]) }],
      ["empty", { shape: [0, 3], data: new Float32Array(0) }],
    ]);
    const bytes = encodeSafetensors(tensors, { format: "pt", note: "ünïcödé" });
    const headerLength = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    expect(headerLength % 8).toBe(0);
    const { tensors: back, metadata } = decodeSafetensors(bytes, "x", "weights");
    expect(metadata).toEqual({ format: "pt", note: "ünïcödé" });
    expect([...back.keys()].sort()).toEqual([...tensors.keys()].sort());
    for (const [name, t] of tensors) {
      expect(back.get(name)!.shape).toEqual(t.shape);
      expect(back.get(name)!.dtype).toBe("F32");
      expect(Object.is(back.get(name)!.data[1], t.data[1]) || t.data.length < 2).toBe(true);
      expect(new Uint8Array(back.get(name)!.data.buffer)).toEqual(new Uint8Array(t.data.buffer));
    }
  });

  it("treats `__proto__` as an ordinary tensor and metadata name", () => {
    const tensors = new Map([["__proto__", { shape: [1], data: Float32Array.from([5]) }]]);
    const metadata = JSON.parse('{"__proto__": "x"}') as Record<string, string>;
    const back = decodeSafetensors(encodeSafetensors(tensors, metadata), "p", "weights");
    expect([...back.tensors.get("__proto__")!.data]).toEqual([5]);
    expect(Object.entries(back.metadata)).toEqual([["__proto__", "x"]]);
  });

  it("is independent of insertion order", () => {
    const a = { shape: [2], data: new Float32Array([1, 2]) };
    const b = { shape: [1], data: new Float32Array([3]) };
    expect(
      encodeSafetensors(
        new Map([
          ["a", a],
          ["b", b],
        ]),
      ),
    ).toEqual(
      encodeSafetensors(
        new Map([
          ["b", b],
          ["a", a],
        ]),
      ),
    );
  });

  it("round-trips arbitrary tensors (property)", () => {
    const tensor = fc.array(fc.integer({ min: 0, max: 4 }), { maxLength: 3 }).chain((shape) =>
      fc
        .float32Array({
          minLength: shape.reduce((x, y) => x * y, 1),
          maxLength: shape.reduce((x, y) => x * y, 1),
        })
        .map((data) => ({ shape, data })),
    );
    fc.assert(
      fc.property(
        fc.dictionary(
          fc.string({ minLength: 1 }).filter((s) => s !== "__metadata__"),
          tensor,
        ),
        (dict) => {
          const tensors = new Map(Object.entries(dict));
          const back = decodeSafetensors(encodeSafetensors(tensors), "p", "weights").tensors;
          expect(back.size).toBe(tensors.size);
          for (const [name, t] of tensors) {
            expect(back.get(name)!.shape).toEqual(t.shape);
            expect(new Uint8Array(back.get(name)!.data.buffer)).toEqual(
              new Uint8Array(t.data.slice().buffer),
            );
          }
        },
      ),
      { numRuns: 200 },
    );
  });

  it("rejects tensors it cannot write", () => {
    const short = new Map([["w", { shape: [2, 2], data: new Float32Array(3) }]]);
    expect(diagnosticOf(() => encodeSafetensors(short)).message).toMatch(
      /`w` has 3 values but shape \[2, 2\] needs 4/,
    );
    const reserved = new Map([["__metadata__", { shape: [1], data: new Float32Array(1) }]]);
    expect(diagnosticOf(() => encodeSafetensors(reserved)).message).toMatch(/reserved/);
    const badShape = new Map([["w", { shape: [-1], data: new Float32Array(0) }]]);
    expect(diagnosticOf(() => encodeSafetensors(badShape)).message).toMatch(/invalid shape/);
  });
});

describe("safetensors decoding of files written by others", () => {
  it("reads a hand-written file: header order, padding, metadata last, mixed dtypes", () => {
    // Laid out by hand from the format description: the header lists tensors out of data order,
    // `__metadata__` comes last, and each dtype is converted exactly.
    const data = new Uint8Array(40);
    const v = new DataView(data.buffer);
    v.setUint16(0, 0x3c00, true); // F16 1.0
    v.setUint16(2, 0xc000, true); // F16 -2.0
    v.setUint16(4, 0x3f80, true); // BF16 1.0
    v.setUint16(6, 0x4049, true); // BF16 3.140625
    v.setBigInt64(8, -7n, true); // I64
    v.setFloat64(16, 0.1, true); // F64
    data.set([0, 128, 255, 7], 24); // U8
    v.setFloat32(28, 1.5, true); // F32 (unaligned start: 28 is not a multiple of 8)
    v.setFloat32(32, -2.5, true);
    v.setFloat32(36, 1e-3, true);
    const header =
      '{"f32":{"dtype":"F32","shape":[3],"data_offsets":[28,40]},' +
      '"half":{"dtype":"F16","shape":[2],"data_offsets":[0,4]},' +
      '"brain":{"dtype":"BF16","shape":[1,2],"data_offsets":[4,8]},' +
      '"label":{"dtype":"I64","shape":[1],"data_offsets":[8,16]},' +
      '"double":{"dtype":"F64","shape":[],"data_offsets":[16,24]},' +
      '"pixels":{"dtype":"U8","shape":[2,2],"data_offsets":[24,28]},' +
      '"__metadata__":{"format":"pt"}}';
    const { tensors, metadata } = decodeSafetensors(assemble(header, data), "hand", "input");
    expect(metadata).toEqual({ format: "pt" });
    expect([...tensors.get("half")!.data]).toEqual([1, -2]);
    expect([...tensors.get("brain")!.data]).toEqual([1, 3.140625]);
    expect(tensors.get("brain")!.shape).toEqual([1, 2]);
    expect([...tensors.get("label")!.data]).toEqual([-7]);
    expect(tensors.get("double")!.data[0]).toBe(Math.fround(0.1));
    expect(tensors.get("double")!.shape).toEqual([]);
    expect([...tensors.get("pixels")!.data]).toEqual([0, 128, 255, 7]);
    expect([...tensors.get("f32")!.data]).toEqual([1.5, -2.5, Math.fround(1e-3)]);
    expect(tensors.get("f32")!.dtype).toBe("F32");
  });

  it("converts half floats exactly, including subnormals and specials", () => {
    expect(halfToFloat(0x0001)).toBe(2 ** -24);
    expect(halfToFloat(0x7bff)).toBe(65504);
    expect(halfToFloat(0xfc00)).toBe(-Infinity);
    expect(halfToFloat(0x7e00)).toBeNaN();
    expect(Object.is(halfToFloat(0x8000), -0)).toBe(true);
  });
});

describe("safetensors corruption gives AX4005 with the problem named", () => {
  const good = () => assemble({ w: entry("F32", [2], 0, 8) }, f32Bytes([1, 2]));

  it.each([
    ["a file shorter than the length field", new Uint8Array(5), /5 bytes long, too short/],
    [
      "a header length past the end",
      (() => {
        const b = good();
        new DataView(b.buffer).setBigUint64(0, 1000n, true);
        return b;
      })(),
      /header length 1000 exceeds the \d+ bytes after/,
    ],
    ["a header that is not JSON", assemble('{"w": {"dtype": "F32",'), /not valid JSON/],
    [
      "a header that is not UTF-8",
      (() => {
        const b = assemble('{"a": 1}');
        b[10] = 0xff; // never valid in UTF-8
        return b;
      })(),
      /not valid UTF-8/,
    ],
    ["a header that is not an object", assemble("[1, 2]"), /must start with `\{`/],
    [
      "a duplicated tensor name",
      assemble(
        '{"w":' +
          JSON.stringify(entry("F32", [1], 0, 4)) +
          ',"w":' +
          JSON.stringify(entry("F32", [1], 4, 8)) +
          "}",
        f32Bytes([1, 2]),
      ),
      /names `w` twice/,
    ],
    [
      "offsets past the data",
      assemble({ w: entry("F32", [4], 0, 16) }, f32Bytes([1, 2])),
      /`w`: data_offsets \[0, 16\] run past the end of the 8-byte data section/,
    ],
    [
      "overlapping tensors",
      assemble({ a: entry("F32", [2], 0, 8), b: entry("F32", [1], 4, 8) }, f32Bytes([1, 2])),
      /`b` \(bytes 4–8\) overlaps `a`|`a` \(bytes 0–8\) overlaps `b`/,
    ],
    [
      "a gap between tensors",
      assemble({ a: entry("F32", [1], 0, 4), b: entry("F32", [1], 8, 12) }, f32Bytes([1, 2, 3])),
      /4 unused bytes before tensor `b`/,
    ],
    [
      "data not starting at 0",
      assemble({ a: entry("F32", [1], 4, 8) }, f32Bytes([1, 2])),
      /4 unused bytes before tensor `a`/,
    ],
    [
      "trailing bytes",
      assemble({ a: entry("F32", [1], 0, 4) }, f32Bytes([1, 2])),
      /4 bytes after the last tensor/,
    ],
    [
      "a shape that does not match the byte count",
      assemble({ w: entry("F32", [3], 0, 8) }, f32Bytes([1, 2])),
      /`w`: shape \[3\] of F32 needs 12 bytes but data_offsets \[0, 8\] span 8/,
    ],
    ["an unknown dtype", assemble({ w: entry("F31", [2], 0, 8) }, f32Bytes([1, 2])), /unknown dtype `F31`/],
    [
      "an unconvertible dtype",
      assemble({ w: entry("F8_E4M3", [8], 0, 8) }, f32Bytes([1, 2])),
      /`F8_E4M3`, which alexc cannot convert/,
    ],
    [
      "a negative dimension",
      assemble({ w: entry("F32", [-2], 0, 8) }, f32Bytes([1, 2])),
      /`shape` must be a list of non-negative integers/,
    ],
    [
      "a fractional dimension",
      assemble({ w: entry("F32", [1.5], 0, 8) }, f32Bytes([1, 2])),
      /non-negative integers, got \[1.5\]/,
    ],
    [
      "three data offsets",
      assemble({ w: { dtype: "F32", shape: [2], data_offsets: [0, 4, 8] } }, f32Bytes([1, 2])),
      /`data_offsets` must be \[begin, end\]/,
    ],
    [
      "offsets that end before they begin",
      assemble({ w: entry("F32", [0], 8, 0) }, f32Bytes([1, 2])),
      /end before they begin/,
    ],
    [
      "a missing dtype",
      assemble({ w: { shape: [2], data_offsets: [0, 8] } }, f32Bytes([1, 2])),
      /`dtype` is undefined/,
    ],
    [
      "an unknown field",
      assemble({ w: { ...entry("F32", [2], 0, 8), data_offset: [0, 8] } }, f32Bytes([1, 2])),
      /unknown field `data_offset`/,
    ],
    ["a tensor described by a number", assemble({ w: 3 }), /`w` is described by number 3/],
    [
      "non-string metadata",
      assemble({ __metadata__: { epoch: 3 } }),
      /`__metadata__` entry `epoch` is number 3, expected a string/,
    ],
    [
      "an integer f32 cannot hold",
      assemble({ n: entry("I32", [1], 0, 4) }, new Uint8Array(new Int32Array([16777217]).buffer)),
      /`n` \(I32\) element 0 = 16777217 is not exactly representable/,
    ],
    [
      "a 64-bit integer past 2^53",
      assemble({ n: entry("I64", [1], 0, 8) }, new Uint8Array(new BigInt64Array([2n ** 60n + 1n]).buffer)),
      /`n` \(I64\) element 0 = 1152921504606846977 is not exactly representable/,
    ],
    [
      "an f64 that overflows f32",
      assemble({ d: entry("F64", [1], 0, 8) }, new Uint8Array(new Float64Array([1e300]).buffer)),
      /`d` \(F64\) element 0 = 1e\+300 overflows f32/,
    ],
  ] as [string, Uint8Array, RegExp][])("%s", (_, bytes, pattern) => {
    expectProblem(bytes, pattern);
  });

  it("uses AX4006 for input files", () => {
    expectProblem(new Uint8Array(3), /too short/, "input");
  });

  it("never throws anything but a diagnostic on a corrupted file (property)", () => {
    const valid = encodeSafetensors(
      new Map([
        ["a", { shape: [2, 3], data: Float32Array.from([1, 2, 3, 4, 5, 6]) }],
        ["b", { shape: [1], data: Float32Array.from([7]) }],
      ]),
      { k: "v" },
    );
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(valid.length - 1), fc.integer({ min: 0, max: 255 })), {
          minLength: 1,
          maxLength: 4,
        }),
        fc.nat(valid.length),
        (edits, cut) => {
          const bytes = valid.slice(0, Math.max(cut, 1));
          for (const [at, value] of edits) if (at < bytes.length) bytes[at] = value;
          try {
            decodeSafetensors(bytes, "fuzz", "weights");
          } catch (error) {
            expect(error).toBeInstanceOf(DiagnosticError);
          }
        },
      ),
      { numRuns: 2000 },
    );
  });
});

describe("safetensors files", () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "alexc-st-"));
  });
  afterEach(() => {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("writes atomically and reads back, replacing an existing file", () => {
    const file = path.join(dir, "w.safetensors");
    fs.writeFileSync(file, "old contents");
    const tensors = new Map([["fc.weight", { shape: [2, 3], data: Float32Array.from([1, 2, 3, 4, 5, 6]) }]]);
    writeSafetensors(file, tensors, { step: "10" });
    expect(fs.readdirSync(dir)).toEqual(["w.safetensors"]); // no temporary file left behind
    const { tensors: back, metadata } = readSafetensorsFile(file, "weights");
    expect(metadata).toEqual({ step: "10" });
    expect([...back.get("fc.weight")!.data]).toEqual([1, 2, 3, 4, 5, 6]);
    expect(readSafetensors(file, "weights").get("fc.weight")!.shape).toEqual([2, 3]);
  });

  it("reads large files in place and small ones by copy, with the same values", () => {
    const big = Float32Array.from({ length: 25_000 }, (_, i) => Math.sin(i));
    const tensors = new Map([
      ["a", { shape: [5, 5000], data: big }],
      ["b", { shape: [3], data: Float32Array.from([1, 2, 3]) }],
    ]);
    const file = path.join(dir, "big.safetensors");
    writeSafetensors(file, tensors);
    const back = readSafetensors(file, "weights");
    expect(back.get("a")!.data).toEqual(big);
    expect(back.get("b")!.data).toEqual(Float32Array.from([1, 2, 3]));
    // Both tensors view the one buffer read from the file: no second 244 MB copy for AlexNet.
    expect(back.get("a")!.data.buffer).toBe(back.get("b")!.data.buffer);
  });

  it("copies out of caller-owned bytes, so later changes to them do not leak in", () => {
    const bytes = encodeSafetensors(new Map([["w", { shape: [2], data: Float32Array.from([1, 2]) }]]));
    const w = decodeSafetensors(bytes, "mem", "weights").tensors.get("w")!;
    bytes.fill(0);
    expect([...w.data]).toEqual([1, 2]);
  });

  it("reports unreadable and unwritable files", () => {
    const missing = path.join(dir, "nope.safetensors");
    const read = diagnosticOf(() => readSafetensors(missing, "input"));
    expect(read.diagnostics[0].code).toBe("AX4006");
    expect(read.message).toContain(`input file \`${missing}\`: cannot be read (no such file or directory)`);
    const target = path.join(dir, "no-dir", "w.safetensors");
    const write = diagnosticOf(() => writeSafetensors(target, new Map()));
    expect(write.diagnostics[0].code).toBe("AX4005");
    expect(write.message).toMatch(/cannot be written \(no such file or directory\)/);
    expect(fs.existsSync(target)).toBe(false);
  });
});
