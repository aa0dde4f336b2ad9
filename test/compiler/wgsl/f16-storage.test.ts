import { describe, expect, it } from "vitest";
import { withF16Storage } from "../../../compiler/wgsl/f16-storage.ts";

const kernel = `// y[i] = x[i] in a comment stays as written
@group(0) @binding(0) var<storage, read> x: array<f32>; // in
@group(0) @binding(1) var<storage, read> idx: array<f32>; // index table
@group(0) @binding(2) var<storage, read_write> y: array<f32>; // out
var<workgroup> partial: array<f32, 64>;

@compute @workgroup_size(64)
fn main(@builtin(local_invocation_index) lid: u32) {
  let a = x[lid] + x[u32(idx[lid])];
  partial[lid] = a;
  y[lid] = max(a, x[lid + 1u]) * 2.0;
}
`;

describe("withF16Storage", () => {
  const out = withF16Storage(kernel);

  it("enables f16 first and declares every storage array as f16, workgroup memory stays f32", () => {
    expect(out.startsWith("enable f16;\n")).toBe(true);
    expect(out).toContain("var<storage, read> x: array<f16>;");
    expect(out).toContain("var<storage, read> idx: array<f16>;");
    expect(out).toContain("var<storage, read_write> y: array<f16>;");
    expect(out).toContain("var<workgroup> partial: array<f32, 64>;");
  });

  it("widens every read to f32, nested reads inside an index too, and rounds every store to f16", () => {
    expect(out).toContain("let a = f32(x[lid]) + f32(x[u32(f32(idx[lid]))]);");
    expect(out).toContain("partial[lid] = a;");
    expect(out).toContain("y[lid] = f16(max(a, f32(x[lid + 1u])) * 2.0);");
  });

  it("leaves comments as written", () => {
    expect(out).toContain("// y[i] = x[i] in a comment stays as written");
  });

  it("refuses a read-modify-write of storage, which one conversion cannot express", () => {
    const rmw = kernel.replace("partial[lid] = a;", "y[lid] += a;");
    expect(() => withF16Storage(rmw)).toThrow(/reads and writes storage in one statement/);
  });

  it("returns a kernel without storage arrays unchanged", () => {
    const plain = "fn main() {}\n";
    expect(withF16Storage(plain)).toBe(plain);
  });
});
