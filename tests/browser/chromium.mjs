// What every browser test launches: Debian's Chromium (SEQCAST_CHROMIUM to use another),
// headless through playwright-core, with the flags a container needs; screenshots and
// traces go to ARTIFACTS.
import path from "node:path";

import { REPO } from "../e2e/harness.mjs";

export const CHROMIUM = process.env.SEQCAST_CHROMIUM || "/usr/bin/chromium";
export const ARTIFACTS = path.join(REPO, "tests/artifacts/browser");
export const LAUNCH_ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
  "--disable-dev-shm-usage",
];
