/** Paths of the fake host: a procfs and sysfs of a 4-CPU machine, with a few processes. */

import { fileURLToPath } from "node:url";

// Deno type-checks with tsconfig's lib but without node's types, where ImportMeta has no url.
const moduleUrl = (import.meta as ImportMeta & { url: string }).url;

export const fixtureProcDir = fileURLToPath(new URL(".", moduleUrl)).replace(/\/$/, "");
export const fixtureSysDir = `${fixtureProcDir}/sys`;
