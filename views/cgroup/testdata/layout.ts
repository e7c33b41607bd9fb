/** Cgroup layouts whose mount points are this directory's fixture trees (laid out like /sys/fs/cgroup). */

import { fileURLToPath } from "node:url";
import type { CgroupLayout } from "../layout.ts";

const moduleUrl = import.meta.url;
const here = fileURLToPath(new URL(".", moduleUrl));

/** This directory, without a trailing slash. */
export const fixtureCgroupDir = here.replace(/\/$/, "");

/** A v1 host: every controller in its own hierarchy under testdata/v1/<controller>. */
export function v1FixtureLayout(): CgroupLayout {
  const controllers = ["memory", "cpu", "cpuacct", "cpuset", "blkio", "pids"];
  return { v1: new Map(controllers.map((name) => [name, `${here}v1/${name}`])), unified: `${here}v2-empty` };
}

/** A pure cgroup v2 host mounted at testdata/v2. */
export function v2FixtureLayout(): CgroupLayout {
  return { v1: new Map(), unified: `${here}v2` };
}
