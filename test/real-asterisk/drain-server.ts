/**
 * A Server in a process of its own, for recovery.real.test.ts: serves one number until SIGTERM,
 * then drains (serveForever). Each call is answered, hears a prompt over its RTP leg and waits
 * `GATHER_SECONDS` for a key, then the handler returns (so it finishes by itself within the drain).
 * Reports on stdout, one JSON object per line: `registered`, `call` (channel id), `handlerDone`,
 * `draining`, `drained`, `closed`.
 *
 *   npx tsx test/real-asterisk/drain-server.ts <number> <appName> <drainSeconds> <gatherSeconds>
 *
 * Reads ASTERISK_* from the environment like any Server.
 */
import { silentLogger } from '../../src/logger.js';
import { Server } from '../../src/server.js';
import { RecordingTts } from '../support/voice-harness.js';

const [number = '4701', appName = `asteramisk-drain-${process.pid}`, drain = '30', gather = '6'] =
  process.argv.slice(2);

function report(event: string, fields: Record<string, unknown> = {}): void {
  process.stdout.write(`${JSON.stringify({ event, t: Date.now(), ...fields })}\n`);
}

const server = await Server.create({
  appName,
  logger: silentLogger,
  tts: new RecordingTts(10),
  stt: false,
  ttsCacheDirectory: false,
  rtpPortMin: 32000,
  rtpPortMax: 32999,
});
server.on('draining', (info) => report('draining', info));
server.on('drained', (info) => report('drained', { ...info }));
await server.registerExtension(number, {
  voice: async (ui) => {
    report('call', { channelId: ui.channelId });
    await ui.answer();
    await ui.gather('Please press a key.', { numDigits: 1, timeout: Number(gather) });
    report('handlerDone', { channelId: ui.channelId });
  },
});
report('registered', { number, appName });
await server.serveForever({ drainSeconds: Number(drain) });
report('closed');
