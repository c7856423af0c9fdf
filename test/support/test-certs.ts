import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const DAY = 86_400_000;

export interface Pem {
  cert: string;
  key: string;
}

export interface LeafOptions {
  /** DNS names (subjectAltName); the first is the CN. */
  names: string[];
  /** Days from now the certificate starts and ends; negative for the past. Default -1 … 30. */
  fromDays?: number;
  toDays?: number;
}

async function keyPem(keys: CryptoKeyPair): Promise<string> {
  const der = await webcrypto.subtle.exportKey('pkcs8', keys.privateKey);
  return x509.PemConverter.encode(der, 'PRIVATE KEY') + '\n';
}

const generate = (): Promise<CryptoKeyPair> => webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify']) as Promise<CryptoKeyPair>;

/**
 * Test certificates: a CA and the leaves it signs, valid, expired or not yet valid, made with
 * WebCrypto and @peculiar/x509 (openssl 3.0's x509 cannot set arbitrary dates). P-256 keys.
 */
export class TestCa {
  private serial = 1;
  private constructor(
    private readonly keys: CryptoKeyPair,
    private readonly certificate: x509.X509Certificate,
    readonly ca: Pem,
  ) {}

  static async create(name = 'rack test CA'): Promise<TestCa> {
    const keys = await generate();
    const cert = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: '01',
      name: `CN=${name}`,
      notBefore: new Date(Date.now() - DAY),
      notAfter: new Date(Date.now() + 30 * DAY),
      keys,
      signingAlgorithm: ALG,
      extensions: [
        new x509.BasicConstraintsExtension(true, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      ],
    });
    return new TestCa(keys, cert, { cert: cert.toString('pem') + '\n', key: await keyPem(keys) });
  }

  /** A fresh P-256 private key in PEM (PKCS#8), matching nothing. */
  async key(): Promise<string> {
    return keyPem(await generate());
  }

  async leaf(opts: LeafOptions): Promise<Pem> {
    const keys = await generate();
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber: (1000 + this.serial++).toString(16).padStart(4, '0'),
      subject: `CN=${opts.names[0]}`,
      issuer: this.certificate.subject,
      notBefore: new Date(Date.now() + (opts.fromDays ?? -1) * DAY),
      notAfter: new Date(Date.now() + (opts.toDays ?? 30) * DAY),
      publicKey: keys.publicKey,
      signingKey: this.keys.privateKey,
      signingAlgorithm: ALG,
      extensions: [
        new x509.SubjectAlternativeNameExtension(opts.names.map((value) => ({ type: 'dns' as const, value }))),
        new x509.BasicConstraintsExtension(false),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      ],
    });
    return { cert: cert.toString('pem') + '\n', key: await keyPem(keys) };
  }
}
