import { silentLogger } from '../../src/logger.js';
import { Simulator, type SimulatorOptions } from '../../src/sandbox/simulator.js';
import { Server, type ServerEvents, type ServerOptions } from '../../src/server.js';
import type { SttEngine } from '../../src/stt/stt-engine.js';
import { OfflineTtsEngine } from '../../src/tts/offline-tts-engine.js';
import type { SynthesizeOptions, TtsEngine } from '../../src/tts/tts-engine.js';
import { testPortRange } from './test-ports.js';

/** An offline TTS engine that also records what it was asked to say. */
export class RecordingTts implements TtsEngine {
  readonly name = 'recording-offline';
  readonly said: string[] = [];
  calls = 0;
  private readonly inner: OfflineTtsEngine;

  constructor(msPerChar = 1) {
    this.inner = new OfflineTtsEngine({ msPerChar });
  }

  async synthesize(text: string, options?: SynthesizeOptions): Promise<Int16Array> {
    this.calls++;
    this.said.push(text);
    return this.inner.synthesize(text, options);
  }
}

/** A simulator plus a Server connected to it, with fast offline speech. */
export interface VoiceHarness {
  sim: Simulator;
  server: Server;
  tts: RecordingTts;
  close(): Promise<void>;
}

export async function startVoiceHarness(
  options: {
    sim?: SimulatorOptions;
    server?: Partial<ServerOptions>;
    stt?: SttEngine;
    msPerChar?: number;
  } = {},
): Promise<VoiceHarness> {
  const sim = await Simulator.start({ timeScale: 0.02, ...options.sim });
  const tts = new RecordingTts(options.msPerChar ?? 1);
  // Each harness gets its own RTP range so parallel test files never compete for ports.
  const { min: rtpPortMin } = testPortRange(100);
  const server = await Server.create({
    ...sim.connectionOptions(),
    appName: `test-${Math.random().toString(36).slice(2, 8)}`,
    logger: silentLogger,
    tts,
    ...(options.stt ? { stt: options.stt } : { stt: false }),
    ttsCacheDirectory: false,
    rtpPortMin,
    rtpPortMax: rtpPortMin + 99,
    ...options.server,
  });
  return {
    sim,
    server,
    tts,
    async close() {
      await server.close();
      await sim.close();
    },
  };
}

/** A promise and its resolve function, for handing results out of a call handler. */
export function deferred<T>(): {
  promise: Promise<T>;
  resolve: (v: T) => void;
  reject: (e: unknown) => void;
} {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** Resolves with the arguments of the next `event` the server emits. */
export function nextServerEvent<K extends keyof ServerEvents>(
  server: Server,
  event: K,
): Promise<ServerEvents[K]> {
  return new Promise((resolve) => {
    server.once(event, ((...args: ServerEvents[K]) => resolve(args)) as never);
  });
}
