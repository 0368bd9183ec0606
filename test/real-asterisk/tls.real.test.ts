import { randomInt } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AmiClient } from '../../src/asterisk/ami-client.js';
import type { AmiEvent } from '../../src/asterisk/ami-types.js';
import { AriClient } from '../../src/asterisk/ari-client.js';
import { AsteriskConnectionError, AuthenticationError, TlsError } from '../../src/errors.js';
import { Server } from '../../src/server.js';
import { textLogger } from '../support/capturing-logger.js';
import { realAsteriskAvailable } from '../support/real-asterisk.js';
import { generateLocalhostTls } from '../support/tls-cert.js';
import { RecordingTts } from '../support/voice-harness.js';
import { catchError, within } from '../support/within.js';

/**
 * ARI over https/wss and AMI over TLS against a real Asterisk 22, certificates verified. Runs only
 * when ASTERISK_HOST and ASTERISK_TLS_CA_FILE (the PEM of the CA that signed Asterisk's
 * certificate) are set; the certificate must name ASTERISK_HOST. The TLS listeners are expected on
 * 8089 (http.conf `tlsbindaddr`) and 5039 (manager.conf `tlsbindaddr`), or on
 * ASTERISK_ARI_TLS_PORT / ASTERISK_AMI_TLS_PORT (test-only names: ASTERISK_ARI_PORT and
 * ASTERISK_AMI_PORT stay the plain ports the other real tests use). Needs nothing but ARI and AMI.
 */
const host = process.env.ASTERISK_HOST;
const caFile = process.env.ASTERISK_TLS_CA_FILE;
const runs = realAsteriskAvailable('tls.real.test.ts', {
  ok: Boolean(caFile),
  needs:
    'ASTERISK_TLS_CA_FILE (the CA of Asterisk’s TLS certificate) and TLS enabled in http.conf and manager.conf',
});
const ariPort = Number(process.env.ASTERISK_ARI_TLS_PORT ?? 8089);
const amiPort = Number(process.env.ASTERISK_AMI_TLS_PORT ?? 5039);
const ariUser = process.env.ASTERISK_ARI_USER ?? 'asteramisk';
const ariPass = process.env.ASTERISK_ARI_PASS ?? 'asteramisk';
const amiUser = process.env.ASTERISK_AMI_USER ?? 'asteramisk';
const amiPass = process.env.ASTERISK_AMI_PASS ?? 'asteramisk';

/** Whether `number` has a step in `asteramisk-call`, asked over `ami` (waits up to 5 s for `expected`). */
async function dialplanHas(ami: AmiClient, number: string, expected = true): Promise<boolean> {
  const deadline = Date.now() + 5000;
  for (;;) {
    const res = await ami
      .action({ Action: 'ShowDialPlan', Context: 'asteramisk-call', Extension: number })
      .catch(() => undefined);
    const found = (res?.events ?? []).some((e) => e.name === 'ListDialplan' && e.fields.Extension === number);
    if (found === expected || Date.now() > deadline) return found;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe.skipIf(!runs)('TLS against a real Asterisk 22 (ASTERISK_HOST, ASTERISK_TLS_CA_FILE)', () => {
  let ca: string;
  let dir: string;
  let wrongCaFile: string;
  let wrongCa: string;
  // A password that is also a user or app name (the example's `asteramisk`) cannot be grepped for;
  // the Basic credentials and `Secret:` line can.
  const secrets = [
    ...[ariPass, amiPass].filter((s) => s.length >= 6 && !`${ariUser} ${amiUser} asteramisk-`.includes(s)),
    Buffer.from(`${ariUser}:${ariPass}`).toString('base64'),
    `Secret: ${amiPass}`,
  ];

  beforeAll(async () => {
    ca = readFileSync(caFile!, 'utf8');
    dir = await mkdtemp(join(tmpdir(), 'asteramisk-tls-real-'));
    wrongCa = (await generateLocalhostTls()).ca;
    wrongCaFile = join(dir, 'wrong-ca.pem');
    await writeFile(wrongCaFile, wrongCa);
  });

  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('ARI over https and wss: opens the events websocket, answers REST, delivers an event', async () => {
    const app = `tls-real-${randomInt(1e6)}`;
    const ari = new AriClient({
      url: `https://${host}:${ariPort}`,
      username: ariUser,
      password: ariPass,
      app,
      tls: { ca },
    });
    try {
      await ari.connect();
      expect(ari.baseUrl).toMatch(/^https:/);
      expect((await ari.asterisk.ping()).ping).toBe('pong');
      const event = within(
        new Promise((resolve) => ari.once('ChannelUserevent', resolve)),
        5000,
        'ChannelUserevent over wss',
      );
      await ari.events.userEvent('asteramisk-tls', { variables: { over: 'wss' } });
      expect(await event).toMatchObject({ eventname: 'asteramisk-tls', userevent: { over: 'wss' } });
    } finally {
      await ari.close();
    }
  });

  it('AMI over TLS: logs in, runs an action, receives an event', async () => {
    const ami = new AmiClient({
      host: host!,
      port: amiPort,
      username: amiUser,
      password: amiPass,
      tls: { ca },
    });
    try {
      await ami.connect();
      expect(ami.greeting).toMatch(/^Asterisk Call Manager\/\d+/);
      expect((await ami.action({ Action: 'Ping' })).fields.Ping).toBe('Pong');
      // Setting a global variable raises VarSet (class dialplan) with the example manager.conf's rights.
      const variable = `ASTERAMISK_TLS_${randomInt(1e9)}`;
      const event = within(
        new Promise<AmiEvent>((resolve) => {
          const onEvent = (e: AmiEvent): void => {
            if (e.fields.Variable !== variable) return;
            ami.off('VarSet', onEvent);
            resolve(e);
          };
          ami.on('VarSet', onEvent);
        }),
        5000,
        'VarSet over AMI/TLS',
      );
      await ami.action({ Action: 'Setvar', Variable: variable, Value: 'over-tls' });
      expect((await event).fields.Value).toBe('over-tls');
      await ami.action({ Action: 'Setvar', Variable: variable, Value: '' });
    } finally {
      await ami.close();
    }
  });

  it('a Server over TLS (ASTERISK_TLS_CA_FILE) registers a number over AMI/TLS and removes it on close', async () => {
    const { logger, lines } = textLogger();
    const number = `79${randomInt(10_000, 99_999)}`;
    const server = await Server.create({
      asteriskHost: host!,
      ariTls: true,
      amiTls: true,
      ariPort,
      amiPort,
      tlsCaFile: caFile!,
      ariUser,
      ariPassword: ariPass,
      amiUser,
      amiPassword: amiPass,
      appName: `tls-real-${randomInt(1e6)}`,
      logger,
      tts: new RecordingTts(),
      stt: false,
      ttsCacheDirectory: false,
    });
    const check = new AmiClient({
      host: host!,
      port: amiPort,
      username: amiUser,
      password: amiPass,
      tls: { ca },
    });
    try {
      await server.registerExtension(number, { voice: async (ui) => ui.answer() });
      await check.connect();
      expect(await dialplanHas(check, number)).toBe(true);
    } finally {
      await server.close();
    }
    try {
      expect(await dialplanHas(check, number, false)).toBe(false);
    } finally {
      await check.close();
    }
    const text = lines.join('\n');
    expect(text).toContain('asteramisk connected');
    for (const secret of secrets) expect(text).not.toContain(secret);
  });

  it('refuses Asterisk’s certificate with a CA it does not trust, and a name the certificate does not carry', async () => {
    const ami = new AmiClient({
      host: host!,
      port: amiPort,
      username: amiUser,
      password: amiPass,
      tls: { ca: wrongCa },
    });
    const amiError = await catchError(ami.connect());
    await ami.close();
    const ari = new AriClient({
      url: `https://${host}:${ariPort}`,
      username: ariUser,
      password: ariPass,
      app: `tls-real-wrong-${randomInt(1e6)}`,
      tls: { ca: wrongCa },
    });
    const wsError = await catchError(ari.connect());
    const restError = await catchError(ari.asterisk.ping());
    await ari.close();
    const { logger, lines } = textLogger();
    const serverError = await catchError(
      Server.create({
        asteriskHost: host!,
        ariTls: true,
        amiTls: true,
        ariPort,
        amiPort,
        tlsCaFile: wrongCaFile,
        ariUser,
        ariPassword: ariPass,
        amiUser,
        amiPassword: amiPass,
        logger,
        tts: new RecordingTts(),
        stt: false,
        ttsCacheDirectory: false,
      }),
    );
    for (const error of [amiError, wsError, restError, serverError]) {
      expect(error).toBeInstanceOf(TlsError);
      expect(error).toBeInstanceOf(AsteriskConnectionError);
      expect(error).not.toBeInstanceOf(AuthenticationError);
      expect((error as TlsError).reason).toBe('unknown-ca');
      expect((error as Error).message).toMatch(/certificate is not signed by a trusted CA/);
      for (const secret of secrets) {
        expect((error as Error).message).not.toContain(secret);
        expect(inspect(error, { depth: 8 })).not.toContain(secret);
      }
    }
    for (const secret of secrets) expect(lines.join('\n')).not.toContain(secret);

    // The right CA, but a name the certificate does not list.
    const mismatch = new AmiClient({
      host: host!,
      port: amiPort,
      username: amiUser,
      password: amiPass,
      tls: { ca, servername: 'not-this-pbx.example.test' },
    });
    const mismatchError = await catchError(mismatch.connect());
    await mismatch.close();
    expect((mismatchError as TlsError).reason).toBe('hostname-mismatch');
    const ariMismatch = new AriClient({
      url: `https://${host}:${ariPort}`,
      username: ariUser,
      password: ariPass,
      app: `tls-real-name-${randomInt(1e6)}`,
      tls: { ca, servername: 'not-this-pbx.example.test' },
    });
    expect(((await catchError(ariMismatch.connect())) as TlsError).reason).toBe('hostname-mismatch');
    expect(((await catchError(ariMismatch.asterisk.ping())) as TlsError).reason).toBe('hostname-mismatch');
    await ariMismatch.close();
  });
});
