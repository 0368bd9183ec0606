import { describe, expect, it } from 'vitest';
import { realAsteriskAvailable } from '../support/real-asterisk.js';
import { lineOf, runCli } from '../support/run-cli.js';

/**
 * `asteramisk doctor` against a real Asterisk 22 configured from example-configs/. Runs only when
 * ASTERISK_HOST is set (with ASTERISK_ARI_USER/PASS, ASTERISK_AMI_USER/PASS). Read-only on the
 * shared PBX: the probe's externalMedia channels and bridge are its own and are removed; nothing is
 * unloaded or reconfigured.
 */
const run = realAsteriskAvailable('doctor.real.test.ts');

const env: Record<string, string> = {};
for (const [k, v] of Object.entries(process.env)) {
  if (v !== undefined && /^(ASTERISK_|ASTERAMISK_|RTP_)/.test(k)) env[k] = v;
}

describe.runIf(run)('asteramisk doctor on a real Asterisk', () => {
  it('passes every check', async () => {
    const r = await runCli(['doctor'], env);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    for (const what of [
      'ARI:',
      'AMI:',
      'Asterisk version: 22',
      'modules:',
      'call context:',
      'text context:',
      'endpoints:',
    ]) {
      expect(lineOf(r, '✔', what), `${what}\n${r.stdout}`).toBeDefined();
    }
    expect(lineOf(r, '✔', 'RTP round trip'), r.stdout).toMatch(/carried both ways/);
    expect(r.lines.at(-1)).toBe('doctor: all checks passed');
  }, 40_000);

  it('fails on a wrong ARI password with the ARI line and its fix', async () => {
    const r = await runCli(['doctor'], { ...env, ASTERISK_ARI_PASS: 'not-the-password' });
    expect(r.code).toBe(1);
    expect(lineOf(r, '✘', 'ARI:')).toMatch(
      /refused user .*401.*fix: set ASTERISK_ARI_USER\/ASTERISK_ARI_PASS/,
    );
    expect(r.lines.at(-1)).toMatch(/^doctor: FAILED: ARI: /);
  }, 40_000);

  it('fails when Asterisk cannot send RTP to ASTERAMISK_HOST', async () => {
    const r = await runCli(['doctor', '--timeout', '2000'], { ...env, ASTERAMISK_HOST: '192.0.2.1' });
    expect(r.code).toBe(1);
    expect(lineOf(r, '✘', 'RTP round trip')).toMatch(
      /no RTP came back from Asterisk to 192\.0\.2\.1.*fix: set ASTERAMISK_HOST/,
    );
    expect(r.lines.at(-1)).toMatch(/^doctor: FAILED: RTP round trip/);
  }, 40_000);

  it('fails on a missing call context', async () => {
    const r = await runCli(['doctor'], {
      ...env,
      ASTERISK_INCOMING_CALL_CONTEXT: 'asteramisk-no-such-context',
    });
    expect(r.code).toBe(1);
    expect(lineOf(r, '✘', 'call context: asteramisk-no-such-context does not exist')).toBeDefined();
  }, 40_000);
});
