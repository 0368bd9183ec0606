/**
 * Throwaway TLS material for loopback test servers, generated at test time with `selfsigned`.
 *
 * We mint a tiny CA and a leaf signed by it (rather than one self-signed leaf) because that is the shape
 * clients meet in production: a trust anchor passed as `ca`, and a server certificate that names the host.
 * The leaf covers `localhost` and `127.0.0.1` (SAN), so hostname verification stays on in tests.
 * EC P-256 keys keep generation around tens of milliseconds.
 */
import { randomBytes } from 'node:crypto';
import { generate } from 'selfsigned';

/** PEM strings for a loopback TLS server and the CA its clients should trust. */
export interface TlsMaterial {
  /** CA certificate (PEM): what a client passes as `ca` to trust the server. */
  readonly ca: string;
  /** Server certificate (PEM), signed by {@link TlsMaterial.ca}, for `localhost` and `127.0.0.1`. */
  readonly cert: string;
  /** Server private key (PEM, PKCS#8). */
  readonly key: string;
}

/** Variations of the server certificate, for negative tests. */
export interface TlsCertOptions {
  /** DNS names of the server certificate. Default `['localhost']`. */
  dnsNames?: readonly string[];
  /** IP addresses of the server certificate. Default `['127.0.0.1']`. */
  ipAddresses?: readonly string[];
  /** Validity of the server certificate (the CA's stays one day from a minute ago), e.g. an expired one. */
  leafValidity?: { notBeforeDate: Date; notAfterDate: Date };
}

/**
 * Generates a fresh CA and a server certificate for `localhost`/`127.0.0.1`, valid from one minute ago
 * (tolerates small clock skew) for one day. Every call yields an unrelated CA, so a second call is a handy
 * "wrong CA" for negative tests.
 */
export async function generateLocalhostTls(options: TlsCertOptions = {}): Promise<TlsMaterial> {
  const notBeforeDate = new Date(Date.now() - 60_000);
  const notAfterDate = new Date(notBeforeDate.getTime() + 24 * 3600_000);
  const common = { keyType: 'ec', curve: 'P-256', algorithm: 'sha256', notBeforeDate, notAfterDate } as const;
  const dnsNames = options.dnsNames ?? ['localhost'];
  const ipAddresses = options.ipAddresses ?? ['127.0.0.1'];
  // A unique CA name: two CAs sharing a subject would make a mismatch look like a bad signature rather
  // than the ordinary "unknown issuer" a client meets with an untrusted server.
  const caName = `asteramisk test CA ${randomBytes(6).toString('hex')}`;
  const ca = await generate([{ name: 'commonName', value: caName }], {
    ...common,
    extensions: [
      { name: 'basicConstraints', cA: true, critical: true },
      { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    ],
  });
  const leaf = await generate([{ name: 'commonName', value: dnsNames[0] ?? ipAddresses[0] ?? 'localhost' }], {
    ...common,
    ...options.leafValidity,
    ca: { key: ca.private, cert: ca.cert },
    extensions: [
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true, critical: true },
      { name: 'extKeyUsage', serverAuth: true },
      {
        name: 'subjectAltName',
        altNames: [
          ...dnsNames.map((value) => ({ type: 2 as const, value })),
          ...ipAddresses.map((ip) => ({ type: 7 as const, ip })),
        ],
      },
    ],
  });
  return { ca: ca.cert, cert: leaf.cert, key: leaf.private };
}

let shared: Promise<TlsMaterial> | undefined;

/** One {@link generateLocalhostTls} result per test process, so many fakes do not each pay for key generation. */
export function sharedLocalhostTls(): Promise<TlsMaterial> {
  shared ??= generateLocalhostTls();
  return shared;
}
