/** Paths of the fake host: a procfs and sysfs of a 4-CPU machine, with a few processes. */

import { fileURLToPath } from "node:url";

const moduleUrl = import.meta.url;

export const fixtureProcDir = fileURLToPath(new URL(".", moduleUrl)).replace(/\/$/, "");
export const fixtureSysDir = `${fixtureProcDir}/sys`;
