import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // GPU tests share one lavapipe adapter on 2 cores: run files one at a time so timings and
    // memory stay predictable; property tests are CPU-bound and fast enough serially.
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
