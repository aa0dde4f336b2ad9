// Scans an ImageNet-style folder into a FolderIndex without decoding anything:
//
//   root/train/<class>/…   one folder per class; the sorted folder names are the labels
//   root/val/<class>/…     the same classes ("class-folders"), or
//   root/val/…             flat, labelled by a label file ("label-file"), or no val/ at all ("none")
//
// The scan must stay fast on ILSVRC-2012's 1.28M training files, so it lists directories with
// file types (one readdir per folder) and stats only symbolic links and folders, never plain files.
//
// Folders inside a class folder are searched too, and their images belong to that class, as
// torchvision's ImageFolder does: some mirrors shard big classes into subfolders, and the same
// folder should give the same examples in both tools. Symbolic links are followed (ImageNet copies
// are often farms of links); a link back to a folder being searched is left out, not followed forever.
// Hidden entries (.DS_Store, macOS's ._x.JPEG resource forks, .ipynb_checkpoints) are never images
// or classes, whatever their extension.
//
// Anything found but left out is recorded in `skipped` with a reason; only a folder that cannot be
// the expected layout at all (no train/, no classes, a flat val/ without labels) stops the scan.
import * as fs from "node:fs";
import * as path from "node:path";
import { DiagnosticError, diag, type Diagnostic } from "../../../compiler/diagnostics.ts";
import { IMAGE_EXTENSIONS } from "./types.ts";
import type { FolderIndex, ImageEntry, SkipReason, SkippedFile } from "./types.ts";

export interface ScanOptions {
  /**
   * A label file for a flat val/, relative to the root or absolute. Each line that is neither empty
   * nor a `#` comment is `<file name relative to val/> <class>`, the class being a train/ folder
   * name or a 0-based index into the sorted class list. Given, it labels val/ even if val/ has folders.
   */
  valLabels?: string;
}

/** Scans `root`; throws AX4105 only when the layout itself is wrong. */
export function scanImageFolder(root: string, opts: ScanOptions = {}): FolderIndex {
  const abs = path.resolve(root);
  let top: fs.Dirent[];
  try {
    top = fs.readdirSync(abs, { withFileTypes: true });
  } catch (error) {
    return layoutError(abs, `cannot be read (${ioReason(error)})`, POINT_AT_ROOT);
  }
  if (!top.some((e) => e.name === "train" && kindOf(abs, e) === "dir")) {
    const holds = top.filter((e) => !e.name.startsWith(".")).map((e) => e.name);
    const shown =
      holds.length === 0 ? "nothing" : holds.slice(0, 6).join(", ") + (holds.length > 6 ? ", …" : "");
    return layoutError(abs, `has no \`train/\` folder (it holds ${shown})`, POINT_AT_ROOT);
  }
  const scan = new Scan(abs);

  const classes = scan.classFolders("train").folders;
  if (classes.length === 0) {
    return layoutError(
      abs,
      "`train/` holds no class folders",
      "put each class's images in a folder of its own under `train/`",
    );
  }
  classes.sort();
  const classIndex = new Map(classes.map((name, i) => [name, i]));

  const train: ImageEntry[] = [];
  const emptyClasses: string[] = [];
  for (let label = 0; label < classes.length; label++) {
    const files = scan.images(`train/${classes[label]}`).sort();
    if (files.length === 0) emptyClasses.push(classes[label]);
    for (const file of files) train.push({ path: file, label });
  }

  let val: ImageEntry[] = [];
  let valSource: FolderIndex["valSource"] = "none";
  const valIsDir = top.some((e) => e.name === "val" && kindOf(abs, e) === "dir");
  if (opts.valLabels !== undefined) {
    if (!valIsDir) {
      return layoutError(abs, "a val label file was given but there is no `val/` folder", POINT_AT_ROOT);
    }
    val = labelFileVal(scan, path.resolve(abs, opts.valLabels), classes, classIndex);
    valSource = "label-file";
  } else if (valIsDir) {
    const result = classFolderVal(scan, classIndex);
    val = result.val;
    valSource = result.source;
  }

  scan.skipped.sort((a, b) => compare(a.path, b.path));
  return { root: abs, classes, train, val, valSource, emptyClasses, skipped: scan.skipped };
}

/**
 * AX4106 warnings summarising what a scan (and, given, the statistics pass's `unreadable`) left
 * out: one per reason with the first few paths, and one for empty classes. Empty when all is well.
 */
export function folderWarnings(index: FolderIndex, unreadable: readonly SkippedFile[] = []): Diagnostic[] {
  const root = `\`${index.root}\``;
  const out: Diagnostic[] = [];
  const all = [...index.skipped, ...unreadable];
  for (const reason of Object.keys(REASONS) as SkipReason[]) {
    const files = all.filter((f) => f.reason === reason);
    if (files.length === 0) continue;
    const shown = files.slice(0, 5).map((f) => (f.detail === undefined ? f.path : `${f.path}: ${f.detail}`));
    if (files.length > 5) shown.push(`… and ${files.length - 5} more`);
    const problem = `${files.length} file${files.length === 1 ? "" : "s"} left out: ${REASONS[reason]}`;
    out.push(diag("AX4106", { root, problem }, undefined, { notes: shown }));
  }
  if (index.emptyClasses.length > 0) {
    const n = index.emptyClasses.length;
    const shown = index.emptyClasses.slice(0, 5).join(", ") + (n > 5 ? `, … (${n - 5} more)` : "");
    out.push(
      diag(
        "AX4106",
        { root, problem: `${n} class folder${n === 1 ? "" : "s"} under \`train/\` hold no images` },
        undefined,
        {
          notes: [shown],
          help: "an empty class keeps its label index, but the network never sees an example of it",
        },
      ),
    );
  }
  return out;
}

const REASONS: Record<SkipReason, string> = {
  "not-an-image": "not .JPEG, .jpg or .png, or hidden",
  unreadable: "could not be read or decoded",
  "class-not-in-train": "their class has no folder under `train/`",
  unlabelled: "no label (outside a class folder, or not matched with the val label file)",
};

// ---- walking ---------------------------------------------------------------------------------------

type Kind = "dir" | "file" | "other" | "broken";

/** The state of one scan: the root, and what it has left out so far. */
class Scan {
  readonly root: string;
  readonly skipped: SkippedFile[] = [];
  constructor(root: string) {
    this.root = root;
  }

  skip(rel: string, reason: SkipReason, detail?: string): void {
    this.skipped.push(detail === undefined ? { path: rel, reason } : { path: rel, reason, detail });
  }

  /** The entries of folder `rel` (relative to the root); an unreadable folder is recorded and empty. */
  list(rel: string): fs.Dirent[] {
    try {
      return fs.readdirSync(path.join(this.root, rel), { withFileTypes: true });
    } catch (error) {
      this.skip(`${rel}/`, "unreadable", `folder cannot be read (${ioReason(error)})`);
      return [];
    }
  }

  /** The entry's kind, following symbolic links; a dangling link is recorded as unreadable. */
  kind(dirRel: string, e: fs.Dirent): Kind {
    const kind = kindOf(path.join(this.root, dirRel), e);
    if (kind === "broken") this.skip(`${dirRel}/${e.name}`, "unreadable", "broken symbolic link");
    return kind;
  }

  /**
   * The class folders directly in `top` (train or val). Images beside them have no label; other
   * files and hidden entries are recorded too.
   */
  classFolders(top: string): { folders: string[]; looseImages: number } {
    const folders: string[] = [];
    let looseImages = 0;
    for (const e of this.list(top)) {
      const rel = `${top}/${e.name}`;
      const kind = this.kind(top, e);
      if (kind === "broken") continue;
      if (e.name.startsWith(".")) {
        this.skip(rel, "not-an-image", kind === "dir" ? "hidden folder, not a class" : "hidden file");
      } else if (kind === "dir") folders.push(e.name);
      else if (kind === "file" && isImageName(e.name)) {
        looseImages++;
        this.skip(rel, "unlabelled", `directly in ${top}/, outside any class folder`);
      } else this.skip(rel, "not-an-image", kind === "file" ? undefined : "not a regular file");
    }
    return { folders, looseImages };
  }

  /**
   * Every image under folder `rel`, searched recursively, as root-relative paths (unsorted). Other
   * files are recorded as skipped. `ancestors` holds the device:inode of the folders being searched,
   * so a link back up is noticed.
   */
  images(rel: string, ancestors: string[] = [], out: string[] = []): string[] {
    const id = folderId(path.join(this.root, rel));
    if (id !== undefined && ancestors.includes(id)) {
      this.skip(`${rel}/`, "not-an-image", "symbolic link back to a folder being searched; not followed");
      return out;
    }
    const inner = id === undefined ? ancestors : [...ancestors, id];
    for (const e of this.list(rel)) {
      const child = `${rel}/${e.name}`;
      const kind = this.kind(rel, e);
      if (kind === "broken") continue;
      if (e.name.startsWith(".")) {
        this.skip(child, "not-an-image", kind === "dir" ? "hidden folder" : "hidden file");
      } else if (kind === "dir") this.images(child, inner, out);
      else if (kind === "file" && isImageName(e.name)) out.push(child);
      else this.skip(child, "not-an-image", kind === "file" ? undefined : "not a regular file");
    }
    return out;
  }
}

function kindOf(dir: string, e: fs.Dirent): Kind {
  if (e.isDirectory()) return "dir";
  if (e.isFile()) return "file";
  if (!e.isSymbolicLink()) return "other";
  try {
    const target = fs.statSync(path.join(dir, e.name));
    return target.isDirectory() ? "dir" : target.isFile() ? "file" : "other";
  } catch {
    return "broken";
  }
}

function folderId(dir: string): string | undefined {
  try {
    const s = fs.statSync(dir);
    return `${s.dev}:${s.ino}`;
  } catch {
    return undefined;
  }
}

// ---- val/ ------------------------------------------------------------------------------------------

function classFolderVal(
  scan: Scan,
  classIndex: ReadonlyMap<string, number>,
): { val: ImageEntry[]; source: FolderIndex["valSource"] } {
  const { folders, looseImages } = scan.classFolders("val");
  if (folders.length === 0 && looseImages > 0) {
    return layoutError(
      scan.root,
      `\`val/\` holds ${looseImages} image${looseImages === 1 ? "" : "s"} but no class folders and no label file was given`,
      "give a val label file (one `<file name> <class>` line per image; the class is a train/ folder " +
        "name or its 0-based index), or sort val/ into class folders like train/",
    );
  }
  if (folders.length === 0) return { val: [], source: "none" };
  const byLabel: string[][] = Array.from({ length: classIndex.size }, () => []);
  for (const name of folders.sort()) {
    const label = classIndex.get(name);
    const files = scan.images(`val/${name}`);
    for (const f of files) {
      if (label !== undefined) byLabel[label].push(f);
      else scan.skip(f, "class-not-in-train", `no folder \`train/${name}\``);
    }
  }
  return { val: flatten(byLabel), source: "class-folders" };
}

function labelFileVal(
  scan: Scan,
  labelFile: string,
  classes: readonly string[],
  classIndex: ReadonlyMap<string, number>,
): ImageEntry[] {
  let text: string;
  try {
    text = fs.readFileSync(labelFile, "utf8");
  } catch (error) {
    return layoutError(
      scan.root,
      `the val label file \`${labelFile}\` cannot be read (${ioReason(error)})`,
      LABEL_FORMAT,
    );
  }
  const shortName = path.basename(labelFile);
  // name (relative to val/) → [class label, or -1 for a class train/ lacks; the class as written; line]
  const labels = new Map<string, { label: number; written: string; line: number }>();
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (line === "" || line.startsWith("#")) continue;
    // The class is the last word, so file names may contain spaces.
    const match = /^(.*\S)\s+(\S+)$/.exec(line);
    if (match === null) {
      return layoutError(
        scan.root,
        `line ${i + 1} of the val label file \`${labelFile}\` is \`${line}\`, not \`<file name> <class>\``,
        LABEL_FORMAT,
      );
    }
    const name = match[1].replace(/\\/g, "/").replace(/^(\.\/)+/, "");
    const written = match[2];
    const earlier = labels.get(name);
    if (earlier !== undefined) {
      return layoutError(
        scan.root,
        `the val label file \`${labelFile}\` names \`${name}\` on lines ${earlier.line} and ${i + 1}`,
        LABEL_FORMAT,
      );
    }
    // A folder name wins over an index, so classes named "0" … "10" mean their folders.
    let label = classIndex.get(written);
    if (label === undefined && /^\d+$/.test(written) && Number(written) < classes.length)
      label = Number(written);
    labels.set(name, { label: label ?? -1, written, line: i + 1 });
  }

  const found = new Set<string>();
  const images = collectVal(scan, "val", path.resolve(labelFile), found);
  const byLabel: string[][] = Array.from({ length: classes.length }, () => []);
  for (const rel of images) {
    const name = rel.slice("val/".length);
    const entry = labels.get(name);
    if (entry === undefined) scan.skip(rel, "unlabelled", `not named in ${shortName}`);
    else if (entry.label < 0)
      scan.skip(
        rel,
        "class-not-in-train",
        `${shortName} line ${entry.line} gives class \`${entry.written}\``,
      );
    else byLabel[entry.label].push(rel);
  }
  for (const [name, entry] of labels) {
    if (!found.has(name))
      scan.skip(`val/${name}`, "unlabelled", `named on line ${entry.line} of ${shortName} but not found`);
  }
  return flatten(byLabel);
}

/** Every image under val/ (recursively); `found` gets every file's val-relative name, image or not. */
function collectVal(scan: Scan, rel: string, labelFile: string, found: Set<string>): string[] {
  const before = scan.skipped.length;
  const images = scan.images(rel);
  // Files the walk recorded as not-an-image still count as found, so a label naming one is not
  // reported a second time as missing; the label file itself, when kept in val/, is no stray file.
  const kept: SkippedFile[] = [];
  for (const s of scan.skipped.splice(before)) {
    found.add(s.path.slice("val/".length));
    if (path.join(scan.root, s.path) !== labelFile) kept.push(s);
  }
  scan.skipped.push(...kept);
  for (const f of images) found.add(f.slice("val/".length));
  return images;
}

// ---- helpers ---------------------------------------------------------------------------------------

function flatten(byLabel: string[][]): ImageEntry[] {
  const out: ImageEntry[] = [];
  byLabel.forEach((files, label) => {
    for (const file of files.sort()) out.push({ path: file, label });
  });
  return out;
}

function isImageName(name: string): boolean {
  const dot = name.lastIndexOf(".");
  return dot > 0 && IMAGE_EXTENSIONS.includes(name.slice(dot).toLowerCase());
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function ioReason(error: unknown): string {
  const e = error as NodeJS.ErrnoException;
  return e.code ?? e.message;
}

const POINT_AT_ROOT =
  "point alexc at the folder that holds `train/` (and, optionally, `val/`); images are .JPEG, .jpg or .png";

const LABEL_FORMAT =
  "a val label file has one line per image, `<file name relative to val/> <class>`, the class being a " +
  "train/ folder name or its 0-based index; empty lines and lines starting with `#` are ignored";

/** The layout every AX4105 shows, drawn with the root's own name. */
function expectedLayout(root: string): string {
  return [
    "expected layout:",
    `      ${path.basename(root) || root}/`,
    "      ├── train/",
    "      │   ├── n01440764/                    one folder per class; sorted names give the labels",
    "      │   │   ├── n01440764_10026.JPEG      .JPEG, .jpg or .png",
    "      │   │   └── …",
    "      │   └── n01443537/ …",
    "      └── val/                              optional:",
    "          ├── n01440764/ …                  the same class folders,",
    "          └── ILSVRC2012_val_00000001.JPEG  or flat, with a label file",
  ].join("\n");
}

function layoutError(root: string, problem: string, help: string): never {
  throw new DiagnosticError(
    diag("AX4105", { root: `\`${root}\``, problem }, undefined, { notes: [expectedLayout(root)], help }),
  );
}
