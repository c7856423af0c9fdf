import { createHash } from 'node:crypto';
import ssh2 from 'ssh2';
import { RackError } from '../rack-error.js';

export interface PublicKey {
  /** `ssh-ed25519 AAAA...`, no comment */
  line: string;
  comment: string;
  fingerprint: string;
}

const { utils } = ssh2;

/** SHA256 fingerprint as OpenSSH prints it. */
export function fingerprint(blob: Buffer): string {
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

/** One public key in authorized_keys / `.pub` format; options before the key are not supported. */
export function parsePublicKey(text: string): PublicKey {
  const trimmed = text.trim();
  const parsed = utils.parseKey(trimmed);
  if (parsed instanceof Error || Array.isArray(parsed) || parsed.isPrivateKey()) {
    throw new RackError('bad_argument', 'not an SSH public key (expected a line like "ssh-ed25519 AAAA... comment")');
  }
  const blob = parsed.getPublicSSH();
  const fields = trimmed.split(/\s+/);
  return {
    line: `${parsed.type} ${blob.toString('base64')}`,
    comment: fields.slice(2).join(' '),
    fingerprint: fingerprint(blob),
  };
}

/** Every key in an authorized_keys file, skipping blank lines and comments. */
export function parseAuthorizedKeys(text: string): PublicKey[] {
  return text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map(parsePublicKey);
}
