/**
 * /proc/<pid>/mountinfo, read once for everyone who asks what is mounted where: the
 * cgroup layout, whether a FUSE filesystem is live, what a harness must unmount.
 */

export interface MountEntry {
  /** The superblock's device, "major:minor": the same for every bind of one filesystem instance. */
  device: string;
  /** The path inside the filesystem that is mounted (a bind of one file shows that file), unescaped. */
  root: string;
  /** Where it is mounted, unescaped. */
  mountPoint: string;
  fsType: string;
  /** Per-superblock options (for cgroup v1, the controllers). */
  superOptions: string;
}

export function parseMountinfo(text: string): MountEntry[] {
  const entries: MountEntry[] = [];
  for (const line of text.split("\n")) {
    // Optional fields make the count before " - " vary; the ones after it are fixed.
    const separator = line.indexOf(" - ");
    if (separator < 0) continue;
    const [, , device, root, mountPoint] = line.slice(0, separator).split(" ");
    const [fsType, , superOptions = ""] = line.slice(separator + 3).split(" ");
    if (mountPoint === undefined || !fsType) continue;
    entries.push({ device, root: unescapeMountinfo(root), mountPoint: unescapeMountinfo(mountPoint), fsType, superOptions });
  }
  return entries;
}

/** Mount points of every filesystem of type `fsType` (e.g. "fuse.procview"). */
export function mountPointsOfType(text: string, fsType: string): string[] {
  return parseMountinfo(text)
    .filter((entry) => entry.fsType === fsType)
    .map((entry) => entry.mountPoint);
}

/** mountinfo escapes space, tab, newline and backslash as octal. */
export function unescapeMountinfo(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
}
