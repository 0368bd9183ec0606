/**
 * TLS to Asterisk, shared by the AMI client (node:tls), the ARI REST half (undici) and the ARI
 * events websocket (ws): which CAs are trusted, which name the certificate must carry, and what a
 * failed handshake means in words. Certificate verification is always on; there is no switch.
 */

import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { rootCertificates } from 'node:tls';
import { ConfigError, TlsError, type TlsFailureReason } from '../errors.js';

/** TLS settings of a client connection to Asterisk. Verification of the server's certificate is always on. */
export interface AsteriskTlsOptions {
  /**
   * CA certificates (PEM) trusted **in addition to** Node's bundled root CAs (and the file of
   * `NODE_EXTRA_CA_CERTS`): a private CA, or Asterisk's self-signed certificate itself.
   */
  ca?: string | readonly string[];
  /**
   * The name the server certificate must be issued for, when it differs from the host connected
   * to (e.g. connecting by IP to a certificate for `pbx.example.com`). Also sent as SNI.
   */
  servername?: string;
}

/** Options for `tls.connect` (and undici's `connect`, ws's client options) built from {@link AsteriskTlsOptions}. */
export interface TlsConnectOptions {
  ca?: string[];
  servername?: string;
  /** Always true: a process-wide `NODE_TLS_REJECT_UNAUTHORIZED=0` does not turn our checks off. */
  rejectUnauthorized: true;
}

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** The PEM certificates in `text`, in order. */
export function pemCertificates(text: string): string[] {
  return text.match(PEM_CERTIFICATE) ?? [];
}

/**
 * Reads a PEM file of CA certificates (`tlsCaFile`). Every certificate must parse.
 *
 * @throws {ConfigError} (field `tlsCaFile`) naming the file when it cannot be read, holds no PEM
 *   certificate, or holds one that does not parse.
 */
export function readCaFile(path: string): string[] {
  const fix = 'set ASTERISK_TLS_CA_FILE (or pass tlsCaFile) to a readable PEM file of CA certificates';
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'does not exist' : `cannot be read (${code ?? String(error)})`;
    throw new ConfigError(
      'tlsCaFile',
      `Config tlsCaFile (ASTERISK_TLS_CA_FILE) ${JSON.stringify(path)} ${why}; ${fix}.`,
      {
        cause: error,
      },
    );
  }
  const certificates = pemCertificates(text);
  if (certificates.length === 0) {
    throw new ConfigError(
      'tlsCaFile',
      `Config tlsCaFile (ASTERISK_TLS_CA_FILE) ${JSON.stringify(path)} holds no PEM certificate ` +
        `("-----BEGIN CERTIFICATE-----"); ${fix}.`,
    );
  }
  certificates.forEach((pem, i) => {
    try {
      new X509Certificate(pem);
    } catch (error) {
      throw new ConfigError(
        'tlsCaFile',
        `Config tlsCaFile (ASTERISK_TLS_CA_FILE) ${JSON.stringify(path)}: certificate ${i + 1} does not parse ` +
          `(${error instanceof Error ? error.message : String(error)}); ${fix}.`,
        { cause: error },
      );
    }
  });
  return certificates;
}

let extraCaCache: { path: string; certificates: string[] } | undefined;

/** Certificates of `NODE_EXTRA_CA_CERTS`: Node drops them when `ca` is given, so they are added back. */
function nodeExtraCaCertificates(): string[] {
  const path = process.env.NODE_EXTRA_CA_CERTS;
  if (!path) return [];
  if (extraCaCache?.path !== path) {
    let certificates: string[] = [];
    try {
      certificates = pemCertificates(readFileSync(path, 'utf8'));
    } catch {
      // Node itself only warns about an unreadable NODE_EXTRA_CA_CERTS; so do we (by ignoring it).
    }
    extraCaCache = { path, certificates };
  }
  return extraCaCache.certificates;
}

/**
 * What to hand to `tls.connect` for a connection to `host`. Without a custom CA, `ca` is left out
 * so Node's default trust store applies unchanged; with one, it is Node's roots plus
 * `NODE_EXTRA_CA_CERTS` plus the custom CAs (Node's `ca` option replaces the defaults otherwise).
 * `servername` is the given one, or the host when it is a name (never an IP: that is not valid SNI).
 * `rejectUnauthorized` is set explicitly, so `NODE_TLS_REJECT_UNAUTHORIZED=0` cannot disable it.
 */
export function tlsConnectOptions(host: string, options: AsteriskTlsOptions = {}): TlsConnectOptions {
  const result: TlsConnectOptions = { rejectUnauthorized: true };
  const custom =
    options.ca === undefined ? [] : typeof options.ca === 'string' ? [options.ca] : [...options.ca];
  if (custom.length > 0) result.ca = [...rootCertificates, ...nodeExtraCaCertificates(), ...custom];
  const bare = host.replace(/^\[|\]$/g, '');
  const servername = options.servername ?? (isIP(bare) ? undefined : bare);
  if (servername) result.servername = servername;
  return result;
}

const UNKNOWN_CA = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_UNTRUSTED',
  'CERT_SIGNATURE_FAILURE',
  'UNABLE_TO_DECRYPT_CERT_SIGNATURE',
]);

const NOT_TLS = new Set([
  'ERR_SSL_WRONG_VERSION_NUMBER',
  'ERR_SSL_PACKET_LENGTH_TOO_LONG',
  'ERR_SSL_HTTP_REQUEST',
]);

/** The first TLS or certificate `code` in an error's cause chain. */
function codeOf(error: unknown): string | undefined {
  let current: unknown = error;
  for (let depth = 0; depth < 5 && current; depth++) {
    if (typeof current === 'object' && current !== null && 'code' in current) {
      const code = (current as { code: unknown }).code;
      if (typeof code === 'string' && isTlsCode(code)) return code;
    }
    current = current instanceof Error ? current.cause : undefined;
  }
  return undefined;
}

function isTlsCode(code: string): boolean {
  return (
    UNKNOWN_CA.has(code) ||
    NOT_TLS.has(code) ||
    code.startsWith('ERR_SSL_') ||
    code.startsWith('ERR_TLS_') ||
    code.startsWith('CERT_') ||
    code === 'HOSTNAME_MISMATCH' ||
    code === 'EPROTO'
  );
}

/**
 * Asterisk's TLS listener closes a plain HTTP (websocket) connection without a word (an empty reply): say
 * that the port may be a TLS one instead of only "socket closed".
 */
export function plainAtTlsPortHint(code: string | undefined): string {
  return code === 'UND_ERR_SOCKET' || code === 'ECONNRESET'
    ? '; if that port serves TLS (http.conf tlsbindaddr, usually 8089), set ASTERISK_ARI_TLS=true'
    : '';
}

/** OpenSSL's words when the peer answered something that is not TLS (ws reports them as EPROTO). */
const NOT_TLS_TEXT = /wrong version number|packet length too long|http request/i;

function reasonOf(code: string, message: string): TlsFailureReason {
  if (UNKNOWN_CA.has(code)) return 'unknown-ca';
  if (NOT_TLS_TEXT.test(message)) return 'not-tls';
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID' || code === 'HOSTNAME_MISMATCH') return 'hostname-mismatch';
  if (code === 'CERT_HAS_EXPIRED') return 'expired';
  if (code === 'CERT_NOT_YET_VALID') return 'not-yet-valid';
  if (NOT_TLS.has(code)) return 'not-tls';
  return 'handshake';
}

/** What each reason means, and what to do about it. */
function explain(reason: TlsFailureReason, expectedName: string | undefined): string {
  switch (reason) {
    case 'unknown-ca':
      return (
        'its certificate is not signed by a trusted CA (self-signed or a private CA): put that CA ' +
        '(or the self-signed certificate) in the file of ASTERISK_TLS_CA_FILE (tlsCaFile)'
      );
    case 'hostname-mismatch':
      return (
        `its certificate is not issued for ${expectedName ? JSON.stringify(expectedName) : 'the host connected to'}: ` +
        'connect by a name the certificate lists (subjectAltName), or set ASTERISK_TLS_SERVER_NAME (tlsServerName) to one'
      );
    case 'expired':
      return 'its certificate has expired: renew it on Asterisk (tlscertfile), or check this machine’s clock';
    case 'not-yet-valid':
      return 'its certificate is not valid yet: check the clocks of both machines';
    case 'not-tls':
      return 'the port does not speak TLS (a plain port?): check the port and the TLS settings of http.conf/manager.conf';
    default:
      return 'the TLS handshake failed';
  }
}

/**
 * A {@link TlsError} for a failure whose cause chain carries a TLS/certificate code, else undefined.
 * `what` names the connection (`ARI at 10.0.0.5:8089`, `AMI at …`), `expectedName` the name the
 * certificate had to carry (the servername, else the host). No credential is ever part of it.
 */
export function tlsErrorOf(error: unknown, what: string, expectedName?: string): TlsError | undefined {
  const code = codeOf(error);
  if (code === undefined) return undefined;
  const root = error instanceof Error ? rootMessage(error) : '';
  const reason = reasonOf(code, root);
  const detail = reason === 'handshake' && root ? `: ${root}` : '';
  return new TlsError(
    `TLS connection to ${what} refused: ${explain(reason, expectedName)} (${code}${detail})`,
    reason,
    { cause: error, tlsCode: code },
  );
}

/** The innermost error's message, first line only (OpenSSL appends its source location). */
function rootMessage(error: Error): string {
  let current: Error = error;
  for (let depth = 0; depth < 5 && current.cause instanceof Error; depth++) current = current.cause;
  return current.message.split('\n')[0]!.trim();
}
