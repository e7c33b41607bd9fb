/**
 * procview's version, as `procview --version` prints it and the first log line carries.
 * A constant rather than a read of package.json: the built package, the single executable
 * and the image have no package.json beside the code. core/version.test.ts keeps it equal
 * to package.json's.
 */

export const version = "0.1.0";

/** `procview --version` output: the version and what runs it. */
export function versionText(runtime: string, runtimeVersion: string): string {
  return `procview ${version} (${runtime} ${runtimeVersion})\n`;
}
