// Every lint rule, in code order. A rule family lives in its own file; adding a rule means adding
// its catalogue entry (AX5xxx in compiler/diagnostics.ts), its object here, and its tests.
import type { LintRule } from "../rule.ts";
import { dropoutRules } from "./dropout.ts";
import { initRules } from "./init.ts";
import { limitRules } from "./limits.ts";
import { nameRules } from "./names.ts";
import { orderRules } from "./order.ts";
import { recipeRules } from "./recipe.ts";
import { towerRules } from "./towers.ts";
import { unusedRules } from "./unused.ts";
import { windowRules } from "./windows.ts";

export const allRules: readonly LintRule[] = [
  ...unusedRules,
  ...towerRules,
  ...windowRules,
  ...orderRules,
  ...dropoutRules,
  ...recipeRules,
  ...initRules,
  ...limitRules,
  ...nameRules,
].sort((a, b) => a.code.localeCompare(b.code));
