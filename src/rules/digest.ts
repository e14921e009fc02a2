/**
 * A short, stable, non-cryptographic digest (32-bit FNV-1a twice, with different seeds: 16 hex
 * digits). Pure, so workflow code can use it: for names that must fit a pattern, and fingerprints.
 */
export function shortDigest(text: string): string {
  let a = 0x811c9dc5;
  let b = 0x01000193 ^ 0x5bd1e995;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193) >>> 0;
    b = Math.imul(b ^ c, 0x01000193 ^ 0x2f) >>> 0;
  }
  return a.toString(16).padStart(8, '0') + b.toString(16).padStart(8, '0');
}
