import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DiagnosticError } from "../../../../compiler/diagnostics.ts";
import { folderWarnings, scanImageFolder } from "../../../../runtime/data/images/folder.ts";
import type { ScanOptions } from "../../../../runtime/data/images/folder.ts";
import {
  emptyFolder,
  flatValSpec,
  makeImageFolder,
  messyFolderSpec,
  solid,
  text,
  type FileSpec,
} from "../../../helpers/image-folder.ts";

let tmp: string;
let serial = 0;
/** A fresh folder built from `spec` (the pixels do not matter to a scan, so images are 4 × 4). */
const folder = (spec: Record<string, FileSpec>) => makeImageFolder(path.join(tmp, `f${++serial}`), spec);
const img = () => solid(4, 4, [1, 2, 3], "png");

beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "alexc-folder-"));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** The AX4105 a scan throws; fails the test if it throws anything else or nothing. */
function layoutError(root: string, opts?: ScanOptions) {
  let caught: unknown;
  try {
    scanImageFolder(root, opts);
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(DiagnosticError);
  const [d] = (caught as DiagnosticError).diagnostics;
  expect(d.code).toBe("AX4105");
  expect(d.severity).toBe("error");
  expect(d.help).toBeTruthy();
  return d;
}

describe("the standard layout", () => {
  let root: string;
  beforeAll(async () => {
    root = await folder(messyFolderSpec());
  });

  it("classes are train/'s folders, sorted; empty ones stay classes and are listed", () => {
    const index = scanImageFolder(root);
    expect(index.root).toBe(root);
    expect(index.classes).toEqual(["cat", "dog", "empty"]);
    expect(index.emptyClasses).toEqual(["empty"]);
  });

  it("train entries: every image by (label, path), nested folders searched, paths root-relative with /", () => {
    const { train } = scanImageFolder(root);
    expect(train).toEqual([
      ...[
        "alpha.png",
        "cmyk.jpg",
        "deep.png",
        "gray.jpg",
        "gray.png",
        "photo.JPEG",
        "png-named.JPEG",
        "small.png",
        "tiny.png",
      ].map((f) => ({ path: `train/cat/${f}`, label: 0 })),
      ...["corrupt.JPEG", "garbage.jpg", "photo.jpg", "shard/nested.png", "truncated.JPEG", "zero.JPEG"].map(
        (f) => ({
          path: `train/dog/${f}`,
          label: 1,
        }),
      ),
    ]);
  });

  it("val/ in class folders; a val class train/ lacks is skipped, not guessed", () => {
    const index = scanImageFolder(root);
    expect(index.valSource).toBe("class-folders");
    expect(index.val).toEqual([
      { path: "val/cat/v1.JPEG", label: 0 },
      { path: "val/dog/v2.png", label: 1 },
      { path: "val/dog/v3.JPEG", label: 1 },
    ]);
    expect(index.skipped).toContainEqual({
      path: "val/fox/v4.JPEG",
      reason: "class-not-in-train",
      detail: "no folder `train/fox`",
    });
  });

  it("non-images and hidden files are skipped with a reason, in path order", () => {
    const { skipped } = scanImageFolder(root);
    expect(skipped).toEqual([
      { path: "train/cat/.DS_Store", reason: "not-an-image", detail: "hidden file" },
      { path: "train/cat/README.txt", reason: "not-an-image" },
      { path: "val/fox/v4.JPEG", reason: "class-not-in-train", detail: "no folder `train/fox`" },
    ]);
  });

  it("folderWarnings summarises what was left out as AX4106 warnings", () => {
    const index = scanImageFolder(root);
    const warnings = folderWarnings(index, [
      { path: "train/dog/zero.JPEG", reason: "unreadable", detail: "is empty (0 bytes)" },
    ]);
    expect(warnings.map((w) => [w.code, w.severity, w.message])).toEqual([
      ["AX4106", "warning", `image folder \`${root}\`: 2 files left out: not .JPEG, .jpg or .png, or hidden`],
      ["AX4106", "warning", `image folder \`${root}\`: 1 file left out: could not be read or decoded`],
      [
        "AX4106",
        "warning",
        `image folder \`${root}\`: 1 file left out: their class has no folder under \`train/\``,
      ],
      ["AX4106", "warning", `image folder \`${root}\`: 1 class folder under \`train/\` hold no images`],
    ]);
    expect(warnings[1].notes).toEqual(["train/dog/zero.JPEG: is empty (0 bytes)"]);
  });

  it("no val/ at all: valSource none", async () => {
    const index = scanImageFolder(await folder({ "train/a/x.png": img() }));
    expect([index.valSource, index.val]).toEqual(["none", []]);
  });
});

describe("names", () => {
  it("classes sort by code unit, like sorted wnids (not by locale)", async () => {
    const root = await folder({
      "train/n10/x.png": img(),
      "train/n02/x.png": img(),
      "train/N01/x.png": img(),
      "train/_x/x.png": img(),
    });
    expect(scanImageFolder(root).classes).toEqual(["N01", "_x", "n02", "n10"]);
  });

  it("extensions are compared without case; other extensions are not images", async () => {
    const root = await folder({
      "train/a/1.JPEG": img(),
      "train/a/2.Jpg": img(),
      "train/a/3.PnG": img(),
      "train/a/4.jpeg": img(),
      "train/a/5.gif": img(),
      "train/a/JPEG": img(),
    });
    const index = scanImageFolder(root);
    expect(index.train.map((e) => e.path)).toEqual([
      "train/a/1.JPEG",
      "train/a/2.Jpg",
      "train/a/3.PnG",
      "train/a/4.jpeg",
    ]);
    expect(index.skipped.map((s) => [s.path, s.reason])).toEqual([
      ["train/a/5.gif", "not-an-image"],
      ["train/a/JPEG", "not-an-image"],
    ]);
  });

  it("hidden files are never images (macOS ._ forks), hidden folders never classes", async () => {
    const root = await folder({
      "train/a/x.png": img(),
      "train/a/._x.png": img(),
      "train/a/.thumbs/t.png": img(),
      "train/.ipynb_checkpoints/y.png": img(),
    });
    const index = scanImageFolder(root);
    expect(index.classes).toEqual(["a"]);
    expect(index.train.map((e) => e.path)).toEqual(["train/a/x.png"]);
    expect(index.skipped).toEqual([
      { path: "train/.ipynb_checkpoints", reason: "not-an-image", detail: "hidden folder, not a class" },
      { path: "train/a/._x.png", reason: "not-an-image", detail: "hidden file" },
      { path: "train/a/.thumbs", reason: "not-an-image", detail: "hidden folder" },
    ]);
  });

  it("an image directly in train/ or in class-folder val/ has no label", async () => {
    const root = await folder({
      "train/a/x.png": img(),
      "train/loose.png": img(),
      "val/a/y.png": img(),
      "val/loose.png": img(),
    });
    const index = scanImageFolder(root);
    expect(index.skipped.map((s) => [s.path, s.reason])).toEqual([
      ["train/loose.png", "unlabelled"],
      ["val/loose.png", "unlabelled"],
    ]);
    expect(index.val).toEqual([{ path: "val/a/y.png", label: 0 }]);
  });
});

describe("symbolic links are followed", () => {
  it("a linked class folder and a linked file count; a broken link is unreadable; a loop is not followed", async () => {
    const elsewhere = await folder({ "b/1.png": img(), "c.png": img() });
    const root = await folder({ "train/a/x.png": img() });
    fs.symlinkSync(path.join(elsewhere, "b"), path.join(root, "train/b"));
    fs.symlinkSync(path.join(elsewhere, "c.png"), path.join(root, "train/a/c.png"));
    fs.symlinkSync(path.join(elsewhere, "gone.png"), path.join(root, "train/a/gone.png"));
    fs.symlinkSync(path.join(root, "train/a"), path.join(root, "train/a/loop"));
    const index = scanImageFolder(root);
    expect(index.classes).toEqual(["a", "b"]);
    expect(index.train).toEqual([
      { path: "train/a/c.png", label: 0 },
      { path: "train/a/x.png", label: 0 },
      { path: "train/b/1.png", label: 1 },
    ]);
    expect(index.skipped.map((s) => [s.path, s.reason])).toEqual([
      ["train/a/gone.png", "unreadable"],
      ["train/a/loop/", "not-an-image"],
    ]);
  });
});

describe("a flat val/ with a label file", () => {
  it("labels by class name or index; missing, omitted and unknown-class files are skipped with reasons", async () => {
    const root = await folder(flatValSpec());
    const index = scanImageFolder(root, { valLabels: "labels.txt" });
    expect(index.valSource).toBe("label-file");
    expect(index.classes).toEqual(["n01", "n02"]);
    expect(index.val).toEqual([
      { path: "val/ILSVRC2012_val_00000001.JPEG", label: 0 },
      { path: "val/ILSVRC2012_val_00000002.JPEG", label: 1 },
    ]);
    expect(index.skipped).toEqual([
      {
        path: "val/ILSVRC2012_val_00000003.JPEG",
        reason: "class-not-in-train",
        detail: "labels.txt line 5 gives class `n99`",
      },
      { path: "val/ILSVRC2012_val_00000004.JPEG", reason: "unlabelled", detail: "not named in labels.txt" },
      {
        path: "val/ILSVRC2012_val_00000009.JPEG",
        reason: "unlabelled",
        detail: "named on line 6 of labels.txt but not found",
      },
    ]);
  });

  it("the label file may be absolute, live in val/, and name files with spaces and CRLF endings", async () => {
    const root = await folder({
      "train/0/a.png": img(),
      "train/1/a.png": img(),
      "train/10/a.png": img(),
      "train/2/a.png": img(),
      "train/a/a.png": img(),
      "val/my photo.png": img(),
      "val/b.png": img(),
      "val/sub/c.png": img(),
      "val/labels.txt": text("my photo.png 2\r\nb.png 4\r\n./sub/c.png 10\r\n"),
    });
    const index = scanImageFolder(root, { valLabels: path.join(root, "val/labels.txt") });
    // A folder name wins over an index: "2" is folder 2 (index 3 in code-unit order), "10" folder 10
    // (index 2); "4" names no folder, so it is the index of `a`.
    expect(index.classes).toEqual(["0", "1", "10", "2", "a"]);
    expect(index.val).toEqual([
      { path: "val/sub/c.png", label: 2 },
      { path: "val/my photo.png", label: 3 },
      { path: "val/b.png", label: 4 },
    ]);
    expect(index.skipped).toEqual([]);
  });

  it("a malformed or contradictory label file is a layout error naming the line", async () => {
    const bad = await folder({
      "train/a/x.png": img(),
      "val/x.png": img(),
      "l.txt": text("x.png a\njustonefield\n"),
    });
    expect(layoutError(bad, { valLabels: "l.txt" }).message).toMatch(
      /line 2 of the val label file .* is `justonefield`/,
    );
    const twice = await folder({
      "train/a/x.png": img(),
      "val/x.png": img(),
      "l.txt": text("x.png a\nx.png a\n"),
    });
    expect(layoutError(twice, { valLabels: "l.txt" }).message).toMatch(/names `x.png` on lines 1 and 2/);
    expect(layoutError(twice, { valLabels: "nope.txt" }).message).toMatch(
      /label file .*nope.txt` cannot be read \(ENOENT\)/,
    );
  });
});

describe("layouts that cannot be scanned throw AX4105 showing the expected layout", () => {
  const showsTree = (d: { notes: string[] }) => {
    expect(d.notes[0]).toContain("expected layout:");
    expect(d.notes[0]).toContain("├── train/");
    expect(d.notes[0]).toContain("│   ├── n01440764/");
    expect(d.notes[0]).toContain("└── val/");
  };

  it("a root that does not exist", () => {
    const missing = path.join(tmp, "no-such-folder");
    const d = layoutError(missing);
    expect(d.message).toBe(`image folder \`${missing}\`: cannot be read (ENOENT)`);
    showsTree(d);
    expect(d.notes[0]).toContain("no-such-folder/");
  });

  it("a root without train/ (someone pointed at train/ itself)", async () => {
    const root = await folder({ "n01/x.png": img(), "n02/y.png": img() });
    const d = layoutError(root);
    expect(d.message).toMatch(/has no `train\/` folder \(it holds n01, n02\)/);
    showsTree(d);
  });

  it("train/ without class folders", async () => {
    const root = await folder({ "train/x.png": img() });
    const d = layoutError(root);
    expect(d.message).toMatch(/`train\/` holds no class folders/);
    showsTree(d);
  });

  it("a flat val/ without a label file", async () => {
    const root = await folder({ "train/a/x.png": img(), "val/1.JPEG": img(), "val/2.JPEG": img() });
    const d = layoutError(root);
    expect(d.message).toMatch(/`val\/` holds 2 images but no class folders and no label file was given/);
    expect(d.help).toMatch(/label file/);
    showsTree(d);
  });

  it("a label file without val/", async () => {
    const root = await folder({ "train/a/x.png": img(), "l.txt": text("") });
    expect(layoutError(root, { valLabels: "l.txt" }).message).toMatch(/no `val\/` folder/);
  });

  it("an empty val/ is simply no val", async () => {
    const index = scanImageFolder(await folder({ "train/a/x.png": img(), val: emptyFolder() }));
    expect(index.valSource).toBe("none");
  });
});

describe("scale", () => {
  it("scans 6,000 files in 60 classes quickly", async () => {
    const root = path.join(tmp, "many");
    for (let c = 0; c < 60; c++) {
      const dir = path.join(root, "train", `n${String(c).padStart(3, "0")}`);
      fs.mkdirSync(dir, { recursive: true });
      for (let i = 0; i < 100; i++) fs.writeFileSync(path.join(dir, `${i}.JPEG`), "");
    }
    const started = performance.now();
    const index = scanImageFolder(root);
    const ms = performance.now() - started;
    expect(index.train).toHaveLength(6000);
    expect(index.train[100]).toEqual({ path: "train/n001/0.JPEG", label: 1 });
    expect(ms).toBeLessThan(3000);
  });
});
