/**
 * `asteramisk demo` (and `npm run demo`): the hello handler (src/cli/hello.ts) answering a real
 * (simulated) phone call, with no PBX and no cloud account. It starts the built-in Asterisk 22
 * simulator, serves extension 1000 with a Server, and plays a scripted caller who listens, types
 * a code and picks from the menu. Every step travels over real sockets on 127.0.0.1: ARI, AMI,
 * and RTP audio for the speech.
 */
import { silentLogger } from '../logger.js';
import { Simulator } from '../sandbox/simulator.js';
import { Server } from '../server.js';
import { OfflineTtsEngine } from '../tts/offline-tts-engine.js';
import type { SynthesizeOptions, TtsEngine } from '../tts/tts-engine.js';
import { hello } from './hello.js';

/** The offline engine (no network), printing what the app says. */
class NarratedTts implements TtsEngine {
  constructor(private readonly log: (who: string, what: string) => void) {}

  readonly name = 'offline-narrated';
  private readonly inner = new OfflineTtsEngine({ msPerChar: 30 });
  private readonly listeners: ((text: string) => void)[] = [];

  async synthesize(text: string, options?: SynthesizeOptions): Promise<Int16Array> {
    this.log('app', `says "${text}"`);
    for (const l of this.listeners.splice(0)) l(text);
    return this.inner.synthesize(text, options);
  }

  /** Resolves when the app next says something containing `fragment`. */
  next(fragment: string): Promise<void> {
    return new Promise((resolve) => {
      const check = (text: string) => (text.includes(fragment) ? resolve() : this.listeners.push(check));
      this.listeners.push(check);
    });
  }
}

/** Runs the demo, printing a timed transcript of both sides; resolves when the call has ended. */
export async function runDemo(print: (line: string) => void = (l) => console.log(l)): Promise<void> {
  const t0 = performance.now();
  const log = (who: string, what: string) =>
    print(`${((performance.now() - t0) / 1000).toFixed(2).padStart(6)}s  ${who.padEnd(6)} ${what}`);
  const sim = await Simulator.start();
  log('sim', `Asterisk 22 simulator: ARI ${sim.ariUrl}, AMI 127.0.0.1:${sim.amiPort}`);
  const tts = new NarratedTts(log);
  const server = await Server.create({
    ...sim.connectionOptions(),
    appName: 'demo',
    tts,
    stt: false,
    // No cache, so that every prompt reaches the narrating engine and is printed.
    ttsCacheDirectory: false,
    ttsCacheBytes: 0,
    logger: silentLogger,
  });
  await server.registerExtension('1000', { voice: hello });
  log('app', 'serving extension 1000 (examples/hello.ts), registered over AMI');

  const heardCode = tts.next('four digit code');
  const heardMenu = tts.next('For sales');
  const phone = await sim.call({ from: 'alice', to: '1000' });
  log('phone', 'alice dials 1000');
  /** Lets alice listen to `ms` more of what the app is saying. */
  const listen = (ms: number) => phone.waitForAudio(phone.heardMs + ms);
  await heardCode;
  await listen(1000);
  log('phone', 'alice types 2468#');
  await phone.press('2468#', { gapMs: 150 });
  await heardMenu;
  await listen(800);
  log('phone', 'alice presses 9 (not a choice), then 2');
  await phone.press('9');
  await tts.next('For sales');
  await listen(800);
  await phone.press('2');
  const { cause } = await phone.ended();
  const heardSeconds = phone.heard().audio.length / 8000;
  log(
    'phone',
    `call ended (Q.850 cause ${cause}); alice heard ${heardSeconds.toFixed(1)} s of speech over RTP`,
  );
  await server.close();
  await sim.close();
}
