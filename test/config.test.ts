import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { redactConfig, resolveConfig } from '../src/config.js';
import { ConfigError } from '../src/errors.js';

const base = {
  ASTERISK_ARI_USER: 'ari',
  ASTERISK_ARI_PASS: 'ari-secret-1',
  ASTERISK_AMI_USER: 'ami',
  ASTERISK_AMI_PASS: 'ami-secret-2',
};

function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (e) {
    if (e instanceof ConfigError) return e;
    throw e;
  }
  throw new Error('expected a ConfigError');
}

describe('resolveConfig', () => {
  it('applies defaults, parses numbers and booleans from the environment', () => {
    const c = resolveConfig(
      {},
      { ...base, ASTERISK_ARI_PORT: '8089', GO_BACK_ON_STAR: 'no', MAX_CONCURRENT_CALLS: '7' },
    );
    expect(c.ariPort).toBe(8089);
    expect(c.amiPort).toBe(5038);
    expect(c.asteriskHost).toBe('127.0.0.1');
    expect(c.goBackOnStar).toBe(false);
    expect(c.maxConcurrentCalls).toBe(7);
    expect(c.appName).toMatch(/^asteramisk-[a-z0-9]+$/);
  });

  it('lets options in code win over the environment', () => {
    const c = resolveConfig({ ariPort: 9000, ariUser: 'code' }, { ...base, ASTERISK_ARI_PORT: '8089' });
    expect(c.ariPort).toBe(9000);
    expect(c.ariUser).toBe('code');
  });

  it('names a missing password and how to fix it', () => {
    const e = configError(() => resolveConfig({}, { ...base, ASTERISK_ARI_PASS: undefined }));
    expect(e.field).toBe('ariPassword');
    expect(e.message).toContain('ASTERISK_ARI_PASS');
    expect(e.message).toContain('is missing');
  });

  it('rejects a bad port and shows the value', () => {
    const e = configError(() => resolveConfig({}, { ...base, ASTERISK_AMI_PORT: '50x38' }));
    expect(e.field).toBe('amiPort');
    expect(e.message).toContain('"50x38"');
    const e2 = configError(() => resolveConfig({ ariPort: 70000 }, base));
    expect(e2.field).toBe('ariPort');
    expect(e2.message).toContain('70000');
  });

  it('rejects equal call and text contexts', () => {
    const e = configError(() =>
      resolveConfig({ incomingCallContext: 'inbound', incomingTextContext: 'inbound' }, base),
    );
    expect(e.field).toBe('incomingTextContext');
    expect(e.message).toContain('"inbound"');
  });

  it('rejects an inverted or out-of-range RTP range', () => {
    expect(configError(() => resolveConfig({ rtpPortMin: 40000, rtpPortMax: 30000 }, base)).field).toBe(
      'rtpPortMin',
    );
    expect(configError(() => resolveConfig({}, { ...base, RTP_PORT_MAX: '99999' })).field).toBe('rtpPortMax');
  });

  it('never shows a secret when printed, logged or put in an error', () => {
    const c = resolveConfig({ openaiApiKey: 'sk-very-secret' }, base);
    const shown = [JSON.stringify(c), inspect(c), String(c), JSON.stringify(redactConfig(c))].join('\n');
    for (const secret of ['ari-secret-1', 'ami-secret-2', 'sk-very-secret'])
      expect(shown).not.toContain(secret);
    expect(shown).toContain('[redacted]');
    expect(c.ariPassword).toBe('ari-secret-1');
    const e = configError(() => resolveConfig({ amiPort: -1 }, base));
    expect(e.message).not.toContain('ami-secret-2');
  });

  it('defaults the ports to the TLS listeners (8089, 5039) when TLS is on and no port is given', () => {
    const plain = resolveConfig({}, base);
    expect([plain.ariTls, plain.amiTls, plain.ariPort, plain.amiPort]).toEqual([false, false, 8088, 5038]);
    const tls = resolveConfig({}, { ...base, ASTERISK_ARI_TLS: 'yes', ASTERISK_AMI_TLS: 'true' });
    expect([tls.ariTls, tls.amiTls, tls.ariPort, tls.amiPort]).toEqual([true, true, 8089, 5039]);
    const given = resolveConfig(
      { amiTls: true },
      { ...base, ASTERISK_AMI_PORT: '6039', ASTERISK_ARI_TLS: '1' },
    );
    expect([given.amiPort, given.ariPort]).toEqual([6039, 8089]);
    expect(resolveConfig({ ariTls: true, ariPort: 443 }, base).ariPort).toBe(443);
    const e = configError(() => resolveConfig({}, { ...base, ASTERISK_AMI_TLS: 'maybe' }));
    expect([e.field, e.message]).toEqual(['amiTls', expect.stringContaining('"maybe"')]);
  });

  it('reads tlsCaFile when resolving: a missing, empty or broken file is a ConfigError naming it', () => {
    const dir = mkdtempSync(join(tmpdir(), 'asteramisk-config-'));
    try {
      const missing = join(dir, 'missing.pem');
      const e = configError(() => resolveConfig({}, { ...base, ASTERISK_TLS_CA_FILE: missing }));
      expect(e.field).toBe('tlsCaFile');
      expect(e.message).toContain(missing);
      expect(e.message).toContain('ASTERISK_TLS_CA_FILE');
      const notPem = join(dir, 'not.pem');
      writeFileSync(notPem, 'hello');
      expect(configError(() => resolveConfig({ tlsCaFile: notPem }, base)).message).toMatch(
        /not\.pem" holds no PEM/,
      );
      const broken = join(dir, 'broken.pem');
      writeFileSync(broken, '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n');
      expect(configError(() => resolveConfig({ tlsCaFile: broken }, base)).message).toMatch(
        /broken\.pem": certificate 1 does not parse/,
      );
      // An empty variable means "not set".
      expect(
        resolveConfig({}, { ...base, ASTERISK_TLS_CA_FILE: '', ASTERISK_TLS_SERVER_NAME: ' ' }).tlsCaFile,
      ).toBe(undefined);
      expect(configError(() => resolveConfig({ tlsServerName: 'bad name' }, base)).field).toBe(
        'tlsServerName',
      );
      expect(resolveConfig({}, { ...base, ASTERISK_TLS_SERVER_NAME: 'pbx.example.com' }).tlsServerName).toBe(
        'pbx.example.com',
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
