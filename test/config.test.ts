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
});
