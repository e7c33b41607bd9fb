/**
 * Finds the Debian mirror a machine already uses, so the harness can fetch packages of
 * another suite (trixie) from the same host without hard-coding one or editing the
 * system's apt configuration.
 */

export interface AptSourceFile {
  path: string;
  text: string;
}

export interface DebianMirror {
  uri: string;
  /** Keyring that signs the archive, when the system's entry names one. */
  signedBy?: string;
}

/**
 * The first `deb` entry whose suites include the system's own codename exactly
 * (so `bookworm`, not `bookworm-security` or a third-party `nodistro`).
 * Reads one-line `.list` files and deb822 `.sources` files.
 */
export function findDebianMirror(files: AptSourceFile[], codename: string): DebianMirror {
  for (const file of files) {
    const entries = file.path.endsWith(".sources") ? parseDeb822(file.text) : parseOneLine(file.text);
    const match = entries.find((entry) => entry.types.includes("deb") && entry.suites.includes(codename));
    if (match && match.uris.length > 0) {
      return match.signedBy === undefined ? { uri: match.uris[0] } : { uri: match.uris[0], signedBy: match.signedBy };
    }
  }
  const paths = files.map((file) => file.path).join(", ") || "none";
  throw new Error(`no apt source for Debian suite ${JSON.stringify(codename)} found in: ${paths}`);
}

interface SourceEntry {
  types: string[];
  uris: string[];
  suites: string[];
  signedBy?: string;
}

function parseDeb822(text: string): SourceEntry[] {
  const entries: SourceEntry[] = [];
  for (const stanza of text.split(/\n\s*\n/)) {
    const fields = new Map<string, string>();
    let lastKey: string | undefined;
    for (const line of stanza.split("\n")) {
      if (line.startsWith("#") || line.trim() === "") continue;
      // A line starting with whitespace continues the previous field (e.g. an inline key).
      if (/^\s/.test(line) && lastKey !== undefined) {
        fields.set(lastKey, `${fields.get(lastKey)}\n${line.trim()}`);
        continue;
      }
      const colon = line.indexOf(":");
      if (colon < 0) continue;
      lastKey = line.slice(0, colon).trim().toLowerCase();
      fields.set(lastKey, line.slice(colon + 1).trim());
    }
    if (fields.get("enabled")?.toLowerCase() === "no") continue;
    const words = (key: string): string[] => (fields.get(key) ?? "").split(/\s+/).filter((word) => word !== "");
    const signedBy = fields.get("signed-by");
    entries.push({
      types: words("types"),
      uris: words("uris"),
      suites: words("suites"),
      // An inline armored key cannot be passed on as a path; only a keyring file can.
      ...(signedBy !== undefined && signedBy.startsWith("/") && !signedBy.includes("\n") ? { signedBy } : {}),
    });
  }
  return entries;
}

function parseOneLine(text: string): SourceEntry[] {
  const entries: SourceEntry[] = [];
  for (const rawLine of text.split("\n")) {
    const line = rawLine.replace(/#.*$/, "").trim();
    const match = /^(deb|deb-src)\s+(?:\[([^\]]*)\]\s+)?(\S+)\s+(\S+)/.exec(line);
    if (!match) continue;
    const [, type, options = "", uri, suite] = match;
    const signedBy = /(?:^|\s)signed-by=(\S+)/.exec(options)?.[1];
    entries.push({ types: [type], uris: [uri], suites: [suite], ...(signedBy !== undefined ? { signedBy } : {}) });
  }
  return entries;
}
