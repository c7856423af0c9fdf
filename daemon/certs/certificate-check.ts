import { createHash, createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { RackError } from '../rack-error.js';
import { splitPem } from '../pem-bundle.js';
import type { CertificateInfo } from '../store/records.js';

export type { CertificateInfo };

export interface CheckedBundle {
  /** Leaf first, each a PEM block. */
  certificates: string[];
  key: string;
  info: CertificateInfo;
}

/** A certificate chain is a few KB; this leaves room for long chains and RSA 4096 keys. */
export const MAX_BUNDLE_BYTES = 64 * 1024;
const MAX_CHAIN = 8;

const bad = (message: string): RackError => new RackError('bad_argument', message);

/** `DNS:a.example.com, DNS:*.example.com, IP Address:…` → the DNS names. */
function dnsNames(cert: X509Certificate): string[] {
  const san = cert.subjectAltName;
  if (san === undefined) return [];
  return san
    .split(/,\s*/)
    .filter((entry) => entry.startsWith('DNS:'))
    .map((entry) => entry.slice(4).toLowerCase());
}

/** RFC 6125 §6.4.3 as browsers apply it: a wildcard stands for exactly one leftmost label. */
export function nameCovers(pattern: string, host: string): boolean {
  if (pattern === host) return true;
  if (!pattern.startsWith('*.')) return false;
  const dot = host.indexOf('.');
  return dot > 0 && host.slice(dot + 1) === pattern.slice(2);
}

export function certificateInfo(leaf: X509Certificate): CertificateInfo {
  return {
    names: dnsNames(leaf),
    issuer: leaf.issuer.replace(/\n/g, ', '),
    notBefore: new Date(leaf.validFrom).toISOString(),
    notAfter: new Date(leaf.validTo).toISOString(),
    fingerprint: createHash('sha256').update(leaf.raw).digest('hex'),
  };
}

function parseCertificate(pem: string, position: number): X509Certificate {
  try {
    return new X509Certificate(pem);
  } catch {
    throw bad(`certificate ${position} of the chain is not a readable X.509 certificate`);
  }
}

function parseKey(pem: string): KeyObject {
  try {
    return createPrivateKey(pem);
  } catch {
    // An encrypted key lands here too: the router has no one to ask for its passphrase.
    throw bad('the private key is not readable (an unencrypted PEM key is needed: PKCS#8, RSA or EC)');
  }
}

/**
 * Checks a PEM bundle (the chain, leaf first, and the private key) before rack serves it for
 * `host`: it parses, the key is the leaf's, each certificate is signed by the next one, the leaf
 * covers the host, and every certificate is valid now. Trust in the root is not checked: a
 * private CA is the operator's choice, and browsers decide for themselves.
 */
export function checkBundle(text: string, host: string, now = new Date()): CheckedBundle {
  if (Buffer.byteLength(text) > MAX_BUNDLE_BYTES) throw bad(`the PEM input is larger than ${MAX_BUNDLE_BYTES / 1024} KB`);
  const { certificates, key, otherKeys } = splitPem(text);
  if (certificates.length === 0) throw bad('no certificate found: expected PEM blocks "-----BEGIN CERTIFICATE-----" (leaf first) and the key');
  if (key === undefined) throw bad('no private key found: append the key ("-----BEGIN PRIVATE KEY-----") after the chain');
  if (otherKeys > 0) throw bad('more than one private key in the input: give the leaf certificate\'s key only');
  if (certificates.length > MAX_CHAIN) throw bad(`a chain of ${certificates.length} certificates is too long (at most ${MAX_CHAIN})`);
  const chain = certificates.map((pem, i) => parseCertificate(pem, i + 1));
  const leaf = chain[0]!;
  if (!leaf.checkPrivateKey(parseKey(key))) throw bad('the private key does not match the certificate');
  for (let i = 0; i + 1 < chain.length; i++) {
    const child = chain[i]!;
    const parent = chain[i + 1]!;
    if (!child.checkIssued(parent) || !child.verify(parent.publicKey)) {
      throw bad(`the chain is broken: certificate ${i + 1} (${child.subject.replace(/\n/g, ', ')}) is not signed by certificate ${i + 2}`);
    }
  }
  for (const [i, cert] of chain.entries()) {
    const what = i === 0 ? 'the certificate' : `certificate ${i + 1} of the chain`;
    if (new Date(cert.validTo) <= now) throw bad(`${what} expired on ${new Date(cert.validTo).toISOString()}`);
    if (new Date(cert.validFrom) > now) throw bad(`${what} is not valid before ${new Date(cert.validFrom).toISOString()}`);
  }
  const info = certificateInfo(leaf);
  if (!info.names.some((name) => nameCovers(name, host))) {
    const names = info.names.length === 0 ? 'no DNS names' : info.names.join(', ');
    throw bad(`the certificate does not cover ${host} (it names ${names})`);
  }
  return { certificates, key, info };
}
