// The paper's Figure 3: the learned kernels of the first convolution, one block of rows per tower.
// In the paper the 48 kernels of GPU 1 came out largely colour-agnostic and the 48 of GPU 2 largely
// colour-specific, whatever the initialisation; this picture, written at every checkpoint, lets a
// user watch that specialisation appear.
//
// Each kernel is scaled on its own (v ↦ 128 + 127·v / max|v| over its C×k×k values, so zero is mid
// grey and sign is kept), enlarged with square pixels, and placed 16 to a row as in the figure.
// Inputs with 3 channels are drawn as RGB, one channel as grey; other channel counts draw channel 0.
import sharp from "sharp";
import type { Graph } from "../../compiler/graph.ts";

export interface KernelGrid {
  /** The layer drawn and how its filters divide among the towers. */
  layer: string;
  towers: number;
  width: number;
  height: number;
  /** width × height × 3, RGB. */
  rgb: Uint8Array;
}

const PER_ROW = 16;
const SCALE = 4;
const GAP = 2;
const TOWER_GAP = 8;
const BACKGROUND = 255;

/**
 * The grid for the first convolution that reads the network's input, or undefined when there is
 * none (a network without convolutions). `weights` holds the layer's [F, C, k, k] weight.
 */
export function firstConvKernels(
  graph: Graph,
  weights: ReadonlyMap<string, Float32Array>,
): KernelGrid | undefined {
  const input = graph.inputs[0]?.name;
  const node = graph.nodes.find((n) => n.attrs.op === "conv" && n.inputs[0] === input);
  if (!node || node.attrs.op !== "conv") return undefined;
  const param = graph.params.find((p) => p.name === node.params[0]);
  const data = param && weights.get(param.name);
  if (!param || !data) return undefined;
  const [filters, channels, kh, kw] = param.shape;
  // `cross` and `local` split a layer's filters evenly over the towers; `on(t)` keeps them on one.
  const towers = node.attrs.towers.kind === "on" ? 1 : graph.towers;
  const perTower = filters / towers;
  const rowsPerTower = Math.ceil(perTower / PER_ROW);
  const cellW = kw * SCALE + GAP;
  const cellH = kh * SCALE + GAP;
  const width = Math.min(perTower, PER_ROW) * cellW + GAP;
  const height = towers * rowsPerTower * cellH + (towers - 1) * TOWER_GAP + GAP;
  const rgb = new Uint8Array(width * height * 3).fill(BACKGROUND);
  const size = channels * kh * kw;
  for (let f = 0; f < filters; f++) {
    const kernel = data.subarray(f * size, (f + 1) * size);
    let peak = 0;
    for (const v of kernel) peak = Math.max(peak, Math.abs(v));
    const scale = peak > 0 ? 127 / peak : 0;
    const tower = Math.floor(f / perTower);
    const index = f % perTower;
    const x0 = GAP + (index % PER_ROW) * cellW;
    const y0 = GAP + tower * (rowsPerTower * cellH + TOWER_GAP) + Math.floor(index / PER_ROW) * cellH;
    for (let y = 0; y < kh * SCALE; y++) {
      for (let x = 0; x < kw * SCALE; x++) {
        const at = (Math.floor(y / SCALE) * kw + Math.floor(x / SCALE)) | 0;
        const out = ((y0 + y) * width + x0 + x) * 3;
        for (let c = 0; c < 3; c++) {
          const channel = channels === 3 ? c : 0;
          rgb[out + c] = Math.round(128 + kernel[channel * kh * kw + at] * scale);
        }
      }
    }
  }
  return { layer: node.name, towers, width, height, rgb };
}

/** The grid as PNG bytes. */
export function kernelGridPng(grid: KernelGrid): Promise<Buffer> {
  return sharp(grid.rgb, { raw: { width: grid.width, height: grid.height, channels: 3 } })
    .png()
    .toBuffer();
}
