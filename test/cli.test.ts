import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Simulator } from '../src/sandbox/simulator.js';
import { lineOf, runCli } from './support/run-cli.js';

/**
 * The `asteramisk` CLI run as a child process (tsx, from src/cli/main.ts), against a simulator
 * of this process.
 */
let sim: Simulator;
let env: Record<string, string>;

beforeAll(async () => {
  sim = await Simulator.start({ amiLoginFailureDelayMs: 10 });
  const o = sim.connectionOptions();
  env = {
    ASTERISK_HOST: o.asteriskHost,
    ASTERISK_ARI_PORT: String(o.ariPort),
    ASTERISK_AMI_PORT: String(o.amiPort),
    ASTERISK_ARI_USER: o.ariUser,
    ASTERISK_ARI_PASS: o.ariPassword,
    ASTERISK_AMI_USER: o.amiUser,
    ASTERISK_AMI_PASS: o.amiPassword,
    ASTERAMISK_LOG_LEVEL: 'silent',
  };
});

afterAll(async () => {
  await sim?.close();
});

describe('asteramisk doctor (simulator)', () => {
  it('passes every check against a healthy PBX, one line each', async () => {
    const run = await runCli(['doctor'], env);
    expect(run.code, run.stdout + run.stderr).toBe(0);
    for (const what of [
      'ARI:',
      'AMI:',
      'Asterisk version: 22.10.1',
      'modules:',
      'call context: asteramisk-call exists',
      'text context: asteramisk-text exists',
      'endpoints:',
      'RTP round trip',
    ]) {
      expect(lineOf(run, '✔', what), `${what}\n${run.stdout}`).toBeDefined();
    }
    expect(run.lines.at(-1)).toBe('doctor: all checks passed');
    // The secrets are never printed.
    expect(run.stdout).not.toContain(env.ASTERISK_ARI_PASS);
    expect(run.stdout).not.toContain(env.ASTERISK_AMI_PASS);
    // The probe's channels and bridge are gone.
    expect(sim.pbx.channels.size).toBe(0);
    expect(sim.pbx.bridges.size).toBe(0);
  });

  it('fails on a wrong ARI password, naming ARI and the fix', async () => {
    const run = await runCli(['doctor'], { ...env, ASTERISK_ARI_PASS: 'wrong-password' });
    expect(run.code).toBe(1);
    expect(lineOf(run, '✘', 'ARI:')).toMatch(
      /refused user asteramisk.*fix: set ASTERISK_ARI_USER\/ASTERISK_ARI_PASS/,
    );
    expect(lineOf(run, '-', 'RTP round trip: not checked')).toBeDefined();
    expect(run.lines.at(-1)).toMatch(/^doctor: FAILED: ARI: .*refused/);
    expect(run.stdout).not.toContain('wrong-password');
  });

  it('fails on a missing call context', async () => {
    const run = await runCli(['doctor'], { ...env, ASTERISK_INCOMING_CALL_CONTEXT: 'no-such-context' });
    expect(run.code).toBe(1);
    expect(lineOf(run, '✘', 'call context: no-such-context does not exist')).toMatch(
      /fix: add an empty \[no-such-context\] to extensions\.conf/,
    );
    expect(run.lines.at(-1)).toMatch(/^doctor: FAILED: call context: no-such-context/);
  });

  it('fails when Asterisk cannot reach ASTERAMISK_HOST over RTP', async () => {
    // 192.0.2.1 is TEST-NET-1: routable nowhere, like a wrong address or a firewall dropping RTP.
    const run = await runCli(['doctor', '--timeout', '1500'], { ...env, ASTERAMISK_HOST: '192.0.2.1' });
    expect(run.code).toBe(1);
    expect(lineOf(run, '✘', 'RTP round trip')).toMatch(/no RTP came back .*fix: set ASTERAMISK_HOST/);
    expect(run.lines.at(-1)).toMatch(/^doctor: FAILED: RTP round trip/);
    expect(sim.pbx.channels.size).toBe(0);
  });

  it('checks the speech engines named, failing on one without its credential', async () => {
    const good = await runCli(['doctor', '--tts', 'offline', '--stt', 'none'], env);
    expect(good.code, good.stdout).toBe(0);
    expect(lineOf(good, '✔', 'TTS: offline synthesized')).toBeDefined();
    expect(lineOf(good, '-', 'STT: not checked (--stt none)')).toBeDefined();
    const bad = await runCli(['doctor', '--tts', 'openai', '--stt', 'none'], env);
    expect(bad.code).toBe(1);
    expect(lineOf(bad, '✘', 'TTS: openai failed')).toMatch(/OPENAI_API_KEY.*fix: /);
    expect(bad.lines.at(-1)).toMatch(/^doctor: FAILED: TTS: openai/);
  });

  it('fails naming a module that is not loaded', async () => {
    sim.unloadModule('chan_rtp');
    try {
      const run = await runCli(['doctor'], env);
      expect(run.code).toBe(1);
      expect(lineOf(run, '✘', 'modules: not loaded: chan_rtp')).toContain('module load chan_rtp.so');
      // As on Asterisk 22.10.1: without chan_rtp, externalMedia answers 500, so the probe fails too.
      expect(lineOf(run, '✘', 'RTP round trip')).toBeDefined();
    } finally {
      sim.loadModule('chan_rtp');
    }
  });
});

describe('asteramisk init-configs', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'asteramisk-init-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('writes the configs with generated secrets, backs up what it replaces, prints the exports', async () => {
    await writeFile(join(dir, 'ari.conf'), '; my old ari.conf\n');
    const run = await runCli(['init-configs', '--dir', dir]);
    expect(run.code, run.stderr).toBe(0);
    const files = await readdir(dir);
    for (const f of ['ari.conf', 'manager.conf', 'pjsip.conf', 'extensions.conf', 'http.conf', 'rtp.conf']) {
      expect(files).toContain(f);
    }
    const backup = files.find((f) => /^ari\.conf\.bak-\d{8}T\d{6}Z$/.test(f));
    expect(backup, files.join(' ')).toBeDefined();
    expect(await readFile(join(dir, backup!), 'utf8')).toBe('; my old ari.conf\n');
    expect(files.filter((f) => f.includes('.bak-'))).toHaveLength(1);
    expect(run.stdout).toContain(`backed up ${join(dir, 'ari.conf')}`);

    const ari = await readFile(join(dir, 'ari.conf'), 'utf8');
    const manager = await readFile(join(dir, 'manager.conf'), 'utf8');
    const ariPass = /^password = (\S+)$/m.exec(ari)?.[1];
    const amiPass = /^secret = (\S+)$/m.exec(manager)?.[1];
    expect(ariPass).toMatch(/^[A-Za-z0-9_-]{32}$/);
    expect(amiPass).toMatch(/^[A-Za-z0-9_-]{32}$/);
    expect(ariPass).not.toBe(amiPass);
    expect(ari).not.toMatch(/^password = CHANGE_ME/m);
    expect(run.lines).toContain(`export ASTERISK_ARI_PASS=${ariPass}`);
    expect(run.lines).toContain(`export ASTERISK_AMI_PASS=${amiPass}`);
    expect(run.lines).toContain('export ASTERISK_ARI_USER=asteramisk');
    expect(run.stdout).toContain("asterisk -rx 'core reload'");
    // The secrets appear only in the export block.
    expect(run.stdout.split(ariPass!)).toHaveLength(2);
    expect(run.stdout.split(amiPass!)).toHaveLength(2);
  });
});

describe('asteramisk call / text', () => {
  it('call NUMBER rings a simulated phone, says a line, hangs up', async () => {
    const incoming = sim.nextIncomingCall('bob');
    const run = runCli(['call', 'bob', '--tts', 'offline', '--say', 'This is a test.'], env);
    const phone = await incoming;
    const { cause } = await phone.ended();
    const result = await run;
    expect(result.code, result.stdout + result.stderr).toBe(0);
    expect(result.lines).toEqual(['calling bob…', 'bob answered', 'said: This is a test.', 'hung up']);
    expect(phone.heard().audio.length).toBeGreaterThan(0);
    expect(cause).toBe(16);
  });

  it('text NUMBER BODY delivers a SIP MESSAGE', async () => {
    const sent = sim.nextSentText((t) => t.endpoint === 'alice');
    const run = await runCli(['text', 'alice', 'Hello from the CLI', '--from', '4000'], env);
    expect(run.code, run.stdout + run.stderr).toBe(0);
    const text = await sent;
    expect(text.body).toBe('Hello from the CLI');
    expect(text.from).toContain('4000');
    expect(run.lines).toEqual(['sent to alice: Hello from the CLI']);
  });
});

describe('asteramisk demo', () => {
  it('plays the hello handler to a scripted caller on the simulator', async () => {
    const run = await runCli(['demo']);
    expect(run.code, run.stdout + run.stderr).toBe(0);
    expect(run.stdout).toContain('alice dials 1000');
    expect(run.lines.at(-1)).toMatch(
      /call ended \(Q\.850 cause 16\); alice heard [\d.]+ s of speech over RTP/,
    );
  });
});
