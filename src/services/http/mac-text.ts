/**
 * MAC address notations accepted in `/boot/<mac>.ipxe` URLs: colon (52:54:00:12:34:56), dash
 * (52-54-00-12-34-56, what our DHCP server hands out), bare (525400123456) and Cisco dotted
 * (5254.0012.3456), any letter case.
 */
const MAC_FORMS = [
  /^([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})$/i,
  /^([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i,
  /^([0-9a-f]{2})([0-9a-f]{2})\.([0-9a-f]{2})([0-9a-f]{2})\.([0-9a-f]{2})([0-9a-f]{2})$/i,
];

/** Parses a MAC in any accepted notation to lower-case colon form; null when it is none of them. Pure. */
export function parseMacText(text: string): string | null {
  for (const form of MAC_FORMS) {
    const m = form.exec(text);
    if (m) {
      // Colon/dash form must use one separator throughout: 52:54-00:... is a typo, not a MAC.
      if (form === MAC_FORMS[0] && new Set(text.replace(/[0-9a-f]/gi, '')).size !== 1) return null;
      return m.slice(1, 7).join(':').toLowerCase();
    }
  }
  return null;
}
