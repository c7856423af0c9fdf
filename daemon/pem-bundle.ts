/**
 * A PEM bundle as rack keeps and accepts certificates: the chain (leaf first) and its private key,
 * in one text. One file per host keeps the pair together, so a reader never sees a new chain with
 * an old key (the file is replaced whole).
 */
export interface PemBundle {
  /** Each certificate block, leaf first, as PEM text. */
  certificates: string[];
  /** The private key block (PKCS#8, PKCS#1 or SEC1), as PEM text. */
  key: string | undefined;
}

const BLOCK = /-----BEGIN ([A-Z0-9 ]{1,40})-----\r?\n([A-Za-z0-9+/=\r\n]{0,65536}?)-----END \1-----/g;
const KEY_LABELS = new Set(['PRIVATE KEY', 'RSA PRIVATE KEY', 'EC PRIVATE KEY']);

/** The certificate and key blocks of a text; anything else (comments, other blocks) is left out. */
export function splitPem(text: string): PemBundle & { otherKeys: number } {
  const certificates: string[] = [];
  let key: string | undefined;
  let otherKeys = 0;
  for (const m of text.matchAll(BLOCK)) {
    const label = m[1]!;
    const block = `-----BEGIN ${label}-----\n${m[2]!.replace(/\r/g, '')}-----END ${label}-----\n`;
    if (label === 'CERTIFICATE') certificates.push(block);
    else if (KEY_LABELS.has(label)) {
      if (key === undefined) key = block;
      else otherKeys += 1;
    }
  }
  return { certificates, key, otherKeys };
}

export function joinPem(bundle: { certificates: readonly string[]; key: string }): string {
  return [...bundle.certificates, bundle.key].join('');
}
