import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { type AddressInfo, createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IVR_NUMBER } from '../../examples/ivr.js';
import { AmiClient } from '../../src/asterisk/ami-client.js';
import { AriClient } from '../../src/asterisk/ari-client.js';
import type { Channel } from '../../src/asterisk/ari-types.js';
import { AmiActionError } from '../../src/errors.js';
import { decodeWav } from '../../src/media/wav.js';
import { realAsteriskAvailable } from '../support/real-asterisk.js';
import { loudest, toneShare } from '../support/tone-analysis.js';
import { amiPass, amiPort, amiUser, ariPass, ariPort, ariUser, host, sipProxy } from './real-env.js';
import { SippPhone, sippAvailable } from './sipp/sipp-phone.js';

/**
 * The newcomer's path, end to end: a real Asterisk 22 configured from example-configs/, the
 * example IVR started the way the README says (`npx tsx examples/ivr.ts`, a child process with only
 * the ASTERISK_* environment: no cloud credentials, so the local espeak-ng engine speaks), and a
 * SIP phone (sipp, `ivr-caller.xml`) calling 2000. The phone sends back what it hears (sipp's RTP
 * echo); a snoop on its channel records that echo on the PBX, which must be real speech: seconds of
 * non-silent audio whose loudness rises and falls like syllables and words, not a tone, not
 * silence. (No word check: pocketsphinx, installed here, does not recognise espeak-ng's voice over
 * G.711 reliably: with keyword spotting it "heard" `press` in sentences without it and none of the
 * prompts' phrases; its open vocabulary and one-phrase grammars gave nothing usable either.)
 *
 * Runs with ASTERISK_HOST (and ASTERISK_ARI_USER/PASS, ASTERISK_AMI_USER/PASS), sipp on the PATH
 * (as root) and espeak-ng. The IVR serves 2000 as voice.real.test.ts's Server does: the test waits
 * until no other app has a step for 2000 in the call context before it starts the example.
 */
const haveSipp = sippAvailable();
const haveEspeak = spawnSync('espeak-ng', ['--version'], { stdio: 'ignore' }).error === undefined;
const run = realAsteriskAvailable('newcomer.real.test.ts', {
  ok: haveSipp && haveEspeak,
  needs: 'sipp and espeak-ng on the PATH (the example speaks with espeak-ng when no cloud key is set)',
});
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const CALL_CONTEXT = 'asteramisk-call';
/** How long the caller's echo is recorded: the greeting and most of the main menu. */
const RECORD_SECONDS = 9;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The example's environment: what example-configs/README.md tells a newcomer to export, nothing else. */
function newcomerEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v === undefined) continue;
    if (/^(ASTERISK_|ASTERAMISK_|RTP_|SYSTEM_|OPENAI_|AZURE_OPENAI_|GOOGLE_APPLICATION_)/.test(k)) continue;
    env[k] = v;
  }
  return {
    ...env,
    ASTERISK_HOST: host ?? '127.0.0.1',
    ASTERISK_ARI_USER: ariUser,
    ASTERISK_ARI_PASS: ariPass,
    ASTERISK_AMI_USER: amiUser,
    ASTERISK_AMI_PASS: amiPass,
    ASTERISK_INCOMING_CALL_CONTEXT: CALL_CONTEXT,
    ASTERISK_INCOMING_TEXT_CONTEXT: 'asteramisk-text',
  };
}

/** A TCP port free on 127.0.0.1 now. */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Loudness of each 20 ms frame (RMS). */
function frameRms(pcm: Int16Array): number[] {
  const out: number[] = [];
  for (let start = 0; start + 160 <= pcm.length; start += 160) {
    let e = 0;
    for (let i = start; i < start + 160; i++) e += pcm[i]! * pcm[i]!;
    out.push(Math.sqrt(e / 160));
  }
  return out;
}

/**
 * What makes audio speech rather than silence, a tone or noise: enough voiced frames, loudness that
 * swings (syllables: many rises from quiet to loud), and no single frequency holding the energy.
 */
function speechFeatures(pcm: Int16Array): {
  seconds: number;
  activeSeconds: number;
  /** Rises from below a quarter of the loud level to above half of it: about one per syllable. */
  syllables: number;
  /** Coefficient of variation of the active frames' loudness (a steady tone: about 0). */
  loudnessVariation: number;
  /** The largest share of energy at one frequency (100 Hz to 3.4 kHz) in the loudest 200 ms: a pure tone about 1. */
  maxToneShare: number;
} {
  const rms = frameRms(pcm);
  const sorted = [...rms].sort((a, b) => a - b);
  const loud = sorted[Math.floor(sorted.length * 0.9)] ?? 0;
  const active = rms.filter((r) => r > 300);
  const mean = active.reduce((s, r) => s + r, 0) / Math.max(1, active.length);
  const sd = Math.sqrt(active.reduce((s, r) => s + (r - mean) ** 2, 0) / Math.max(1, active.length));
  let syllables = 0;
  let low = true;
  for (const r of rms) {
    if (low && r > loud / 2 && r > 300) {
      syllables++;
      low = false;
    } else if (!low && r < loud / 4) low = true;
  }
  // 200 ms windows have 5 Hz bins: 2.5 Hz steps keep any tone within half a bin of a probe.
  const window = loudest(pcm, 200);
  let maxToneShare = 0;
  for (let hz = 100; hz <= 3400; hz += 2.5) maxToneShare = Math.max(maxToneShare, toneShare(window, hz));
  return {
    seconds: pcm.length / 8000,
    activeSeconds: active.length * 0.02,
    syllables,
    loudnessVariation: sd / Math.max(1, mean),
    maxToneShare,
  };
}

describe('the speech detector of this file', () => {
  it('rejects silence, a tone and a beeping tone', () => {
    const silence = new Int16Array(8000 * 9);
    const tone = Int16Array.from(
      { length: 8000 * 9 },
      (_, i) => 8000 * Math.sin((2 * Math.PI * 441.3 * i) / 8000),
    );
    // A tone switched on and off 3 times a second: loudness swings, one frequency.
    const beeps = tone.map((x, i) => (Math.floor(i / 1333) % 2 === 0 ? x : 0));
    const s = speechFeatures(silence);
    expect(s.activeSeconds).toBe(0);
    const t = speechFeatures(tone);
    expect(t.loudnessVariation).toBeLessThan(0.3);
    expect(t.maxToneShare).toBeGreaterThan(0.5);
    expect(speechFeatures(beeps).maxToneShare).toBeGreaterThan(0.5);
  });
});

describe.runIf(run)('the newcomer path: examples/ivr.ts with espeak-ng, called from sipp', () => {
  const spyApp = `asteramisk-newcomer-spy-${process.pid}`;
  let ari: AriClient;
  let ami: AmiClient;
  let example: ChildProcess | undefined;
  let exampleOutput = '';
  let phone: SippPhone | undefined;
  let consolePort = 0;

  /** Resolves once the channel is in the spy app (its StasisStart seen). */
  function enteredSpyApp(id: string): Promise<void> {
    if (ari.stasisChannelIds.has(id)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const listener = (event: { channel: { id: string } }): void => {
        if (event.channel.id !== id) return;
        clearTimeout(timer);
        ari.off('StasisStart', listener);
        resolve();
      };
      const timer = setTimeout(() => {
        ari.off('StasisStart', listener);
        reject(new Error(`snoop channel ${id} never entered ${spyApp}`));
      }, 10_000);
      ari.on('StasisStart', listener);
    });
  }

  /** The Stasis steps of 2000 in the call context (`app,call`), [] when the extension is absent. */
  async function stepsOf2000(): Promise<string[]> {
    try {
      const r = await ami.action({ Action: 'ShowDialPlan', Context: CALL_CONTEXT, Extension: IVR_NUMBER });
      return r.events
        .filter((e) => String(e.fields.Application ?? '').toLowerCase() === 'stasis')
        .map((e) => String(e.fields.AppData));
    } catch (error) {
      if (error instanceof AmiActionError) return [];
      throw error;
    }
  }

  beforeAll(async () => {
    ari = new AriClient({
      url: `http://${host}:${ariPort}`,
      username: ariUser,
      password: ariPass,
      app: spyApp,
    });
    await ari.connect();
    ami = new AmiClient({ host: host!, port: amiPort, username: amiUser, password: amiPass });
    await ami.connect();
  });

  afterAll(async () => {
    await phone?.dispose();
    if (example && example.exitCode === null && example.signalCode === null) {
      const exited = new Promise((r) => example!.once('exit', r));
      example.kill('SIGTERM');
      const timer = setTimeout(() => example?.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    }
    await ari?.close();
    await ami?.close();
  });

  it('the caller hears real speech from the espeak-ng engine', async () => {
    // Another Server serving 2000 (voice.real.test.ts) would get this call: wait for it to finish.
    const freeBy = Date.now() + 180_000;
    while ((await stepsOf2000()).length > 0) {
      if (Date.now() > freeBy) throw new Error(`2000 is still served by ${await stepsOf2000()}`);
      await sleep(1000);
    }

    // `npx tsx examples/ivr.ts`, as the README says (node --import tsx is what npx tsx runs).
    // With the web console on (through the environment, as `asteramisk console` does), to check
    // that it shows a real call's transcript.
    consolePort = await freePort();
    example = spawn(process.execPath, ['--import', 'tsx', 'examples/ivr.ts'], {
      cwd: ROOT,
      env: { ...newcomerEnv(), ASTERAMISK_CONSOLE_PORT: String(consolePort) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const serving = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`the example did not start:\n${exampleOutput}`)),
        30_000,
      );
      const onData = (chunk: Buffer) => {
        exampleOutput += chunk.toString();
        if (exampleOutput.includes(`Serving the IVR on extension ${IVR_NUMBER}`)) {
          clearTimeout(timer);
          resolve();
        }
      };
      example!.stdout!.on('data', onData);
      example!.stderr!.on('data', onData);
      example!.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`the example exited (${code}):\n${exampleOutput}`));
      });
    });
    await serving;
    const steps = await stepsOf2000();
    expect(steps, 'only the example serves 2000').toHaveLength(1);
    // The example chose espeak-ng: no warning that there is no TTS engine.
    expect(exampleOutput).not.toMatch(/No text-to-speech engine/);

    const before = new Set((await ari.channels.list()).map((c) => c.id));
    phone = await SippPhone.call({ to: IVR_NUMBER, proxy: sipProxy, localAddress: '127.0.0.1' });
    // The caller's channel: alice's new channel, answered, in 2000.
    let caller: Channel | undefined;
    const foundBy = Date.now() + 15_000;
    while (!caller) {
      if (Date.now() > foundBy) throw new Error(`no answered call from alice to 2000:\n${exampleOutput}`);
      caller = (await ari.channels.list()).find(
        (c) =>
          !before.has(c.id) &&
          c.name.startsWith('PJSIP/alice-') &&
          c.state === 'Up' &&
          c.dialplan?.exten === IVR_NUMBER,
      );
      if (!caller) await sleep(100);
    }
    phone.channelName = caller.name;
    // sipp sends back every packet it receives from now on; the snoop records that echo (audio
    // *from* the caller), so what is recorded went to the phone and came back.
    await phone.command(ami, 'echo on');
    const snoop = await ari.channels.snoop(caller.id, { app: spyApp, spy: 'in' });
    // Asterisk puts a snoop channel into the app from a thread of its own, after answering the
    // request: a record sent before its StasisStart is refused with 409 "Channel not in Stasis
    // application" (seen once on 22.10.1, 2026-12-07).
    await enteredSpyApp(snoop.id);
    const name = `asteramisk-newcomer-${process.pid}-${Date.now()}`;
    await ari.channels.record(snoop.id, {
      name,
      format: 'wav',
      maxDurationSeconds: RECORD_SECONDS + 5,
      ifExists: 'overwrite',
    });
    await sleep(RECORD_SECONDS * 1000);
    await ari.recordings.stopLive(name).catch(() => {});
    await sleep(300);
    const wav = await ari.recordings.getStoredFile(name);
    await ari.recordings.deleteStored(name).catch(() => {});
    await ari.channels.hangup(snoop.id).catch(() => {});
    await ari.channels.hangup(caller.id).catch(() => {});
    const sipp = await phone.finished(15_000);

    const pcm = decodeWav(wav);
    const f = speechFeatures(pcm);
    console.info(
      `newcomer: recorded ${f.seconds.toFixed(1)} s of the caller's echo: ${f.activeSeconds.toFixed(1)} s voiced, ` +
        `${f.syllables} syllable rises, loudness variation ${f.loudnessVariation.toFixed(2)}, ` +
        `max tone share ${f.maxToneShare.toFixed(2)}`,
    );
    expect(sipp.code, sipp.stderr).toBe(0);
    expect(sipp.log).toMatch(/command: echo on/);
    expect(f.seconds).toBeGreaterThan(RECORD_SECONDS - 2);
    // Speech, not silence: most of the time something is said.
    expect(f.activeSeconds).toBeGreaterThan(3);
    // Not a tone or a hum: the loudness rises and falls, syllable after syllable...
    expect(f.syllables).toBeGreaterThan(15);
    expect(f.loudnessVariation).toBeGreaterThan(0.3);
    // ...and no single frequency carries the energy.
    expect(f.maxToneShare).toBeLessThan(0.3);

    // The web console listed the call with what the app said and how it ended.
    type Line = { kind: string; text: string };
    type Session = { kind: string; peer: string; number: string; state: string; transcript: Line[] };
    let call: Session | undefined;
    const listedBy = Date.now() + 15_000;
    while (!call) {
      if (Date.now() > listedBy)
        throw new Error(`the console did not list the ended call: ${JSON.stringify(call)}`);
      const state = (await (await fetch(`http://127.0.0.1:${consolePort}/api/state`)).json()) as {
        ended: Session[];
      };
      call = state.ended.find((s) => s.kind === 'call' && s.number === IVR_NUMBER);
      if (!call) await sleep(200);
    }
    expect(call.state).toBe('ended');
    expect(call.peer).toBe('alice');
    expect(call.transcript).toContainEqual(
      expect.objectContaining({ kind: 'said', text: 'Thank you for calling Example Company.' }),
    );
  }, 240_000);
});
