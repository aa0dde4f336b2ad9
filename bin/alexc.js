#!/usr/bin/env node
// alexc is written in TypeScript and runs on Node's built-in type stripping (Node >= 22.18).
// An older `node` on PATH re-runs this under the Node pinned in the project's devDependencies.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

const [major, minor] = process.versions.node.split(".").map(Number);
if (major > 22 || (major === 22 && minor >= 18)) {
  const { main } = await import("../compiler/cli.ts");
  process.exitCode = await main(process.argv.slice(2));
} else {
  const pinned = fileURLToPath(new URL("../node_modules/node/bin/node", import.meta.url));
  if (!existsSync(pinned)) {
    console.error(
      `alexc needs Node >= 22.18 (this is ${process.version}); run \`npm run setup\` to install the pinned Node`,
    );
    process.exit(2);
  }
  const child = spawnSync(pinned, [fileURLToPath(import.meta.url), ...process.argv.slice(2)], {
    stdio: "inherit",
  });
  process.exit(child.status ?? 70);
}
