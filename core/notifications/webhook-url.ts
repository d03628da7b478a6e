/**
 * Where a webhook may point. The notifier POSTs from inside the platform's network, so a
 * URL naming a loopback, private, link-local (cloud metadata) or otherwise internal
 * address would let a tenant make Fulcrum call its internals (SSRF). WebhookService
 * refuses such URLs when they are created; the notifier checks the addresses a host
 * resolves to again before every attempt (a public name may point inward later).
 * Local stacks and tests allow them explicitly (FULCRUM_ALLOW_PRIVATE_WEBHOOKS /
 * NOTIFIER_ALLOW_PRIVATE_WEBHOOKS = true): their receivers run on 127.0.0.1.
 */

/** Why `raw` cannot be a webhook URL, or undefined when it can. */
export function webhookUrlProblem(raw: string, allowPrivate: boolean): string | undefined {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return "url is not a valid URL";
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") {
    return `url must be http:// or https://, not ${url.protocol}//`;
  }
  if (url.username || url.password) return "url must not carry credentials";
  if (allowPrivate) return undefined;
  const host = url.hostname.replace(/^\[|\]$/g, "").toLowerCase();
  if (isInternalHostname(host) || isPrivateAddress(host)) {
    return `url host ${host} is a loopback, private or internal address, which webhooks may not call`;
  }
  return undefined;
}

/** Names that always mean this machine or its private network. */
export function isInternalHostname(host: string): boolean {
  return (
    (host === "localhost" ||
      host.endsWith(".localhost") ||
      host.endsWith(".local") ||
      host.endsWith(".internal") ||
      !host.includes(".")) && // a bare name resolves through the platform's search domains
    !isIpLiteral(host)
  );
}

function isIpLiteral(host: string): boolean {
  return /^[0-9.]+$/.test(host) || host.includes(":");
}

/**
 * Whether an IP address (v4 dotted, or v6) is not publicly routable: loopback,
 * RFC 1918, carrier-grade NAT, link-local, unspecified, multicast, reserved, IPv6
 * unique-local and link-local, and IPv4-mapped forms of all of those. A hostname that is
 * not an address gives false.
 */
export function isPrivateAddress(address: string): boolean {
  const v4 = parseIpv4(address);
  if (v4) return isPrivateIpv4(v4);
  if (!address.includes(":")) return false;
  const lower = address.toLowerCase();
  const mapped = /^(?:0{0,4}:){0,5}:?ffff:([0-9.]+)$/.exec(lower);
  if (mapped?.[1]) {
    const inner = parseIpv4(mapped[1]);
    return inner ? isPrivateIpv4(inner) : true;
  }
  if (lower === "::" || lower === "::1" || /^(0{1,4}:){7}0{0,3}1$/.test(lower)) return true;
  const first = Number.parseInt(lower.split(":")[0] || "0", 16);
  return (
    (first & 0xfe00) === 0xfc00 || // fc00::/7 unique local
    (first & 0xffc0) === 0xfe80 || // fe80::/10 link local
    (first & 0xff00) === 0xff00 || // multicast
    lower.startsWith("::") // other compatible/unspecified forms
  );
}

function parseIpv4(address: string): number[] | undefined {
  const parts = address.split(".");
  if (parts.length !== 4 || !parts.every((p) => /^[0-9]{1,3}$/.test(p))) return undefined;
  const bytes = parts.map(Number);
  return bytes.every((b) => b <= 255) ? bytes : undefined;
}

function isPrivateIpv4([a = 0, b = 0]: number[]): boolean {
  return (
    a === 0 ||
    a === 10 ||
    a === 127 ||
    (a === 100 && b >= 64 && b <= 127) ||
    (a === 169 && b === 254) ||
    (a === 172 && b >= 16 && b <= 31) ||
    (a === 192 && b === 168) ||
    (a === 198 && (b === 18 || b === 19)) ||
    a >= 224
  );
}
