/**
 * @module smtp/xtext
 * RFC 3461 §4 xtext, used by the ENVID and ORCPT parameters (and AUTH=, RFC 4954): printable
 * ASCII except `+` and `=` stands for itself, anything else is `+` and two upper-case hex digits.
 *
 * The decoded octets are read as UTF-8 (RFC 6533 addresses in ORCPT are UTF-8); octets that are
 * not valid UTF-8 make the value malformed, so a decoded string always re-encodes to the same octets.
 */

const HEX2 = /^[0-9A-F]{2}$/;

/** Decode xtext; null if malformed (a char outside `!`..`~`, a raw `=`, `+` not followed by 2 upper hex). */
export function xtextDecode(s: string): string | null {
  const bytes: number[] = [];
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x2b) {
      const hex = s.slice(i + 1, i + 3);
      if (!HEX2.test(hex)) return null;
      bytes.push(parseInt(hex, 16));
      i += 2;
      continue;
    }
    if (c < 0x21 || c > 0x7e || c === 0x3d) return null;
    bytes.push(c);
  }
  try {
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(new Uint8Array(bytes));
  } catch {
    return null;
  }
}

/** Encode a string's UTF-8 octets as xtext. */
export function xtextEncode(s: string): string {
  let out = '';
  for (const b of Buffer.from(s, 'utf8')) {
    out +=
      b >= 0x21 && b <= 0x7e && b !== 0x2b && b !== 0x3d
        ? String.fromCharCode(b)
        : '+' + b.toString(16).toUpperCase().padStart(2, '0');
  }
  return out;
}
