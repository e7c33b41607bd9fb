/** The host's /proc/uptime: seconds since boot (CLOCK_BOOTTIME) and idle seconds summed over CPUs. */

export interface HostUptime {
  uptime: number;
  idle: number;
}

export function parseHostUptime(text: string): HostUptime {
  const match = /^(\d+(?:\.\d+)?) (\d+(?:\.\d+)?)\s*$/.exec(text);
  if (!match) throw new Error(`malformed /proc/uptime: ${JSON.stringify(text.slice(0, 80))}`);
  return { uptime: Number(match[1]), idle: Number(match[2]) };
}
