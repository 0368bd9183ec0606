/**
 * One app instance of a fleet, in its own process, for the several-instance tests: a Server on
 * the simulator whose connection options come in ASTERAMISK_TEST_SIM (JSON), sharing texts through
 * ASTERAMISK_REDIS_URL, serving 1000 with a text handler that says which instance answers. It
 * prints `ready <instance id>` once serving. The tests SIGKILL it to see a fleet survive.
 *
 *   ASTERAMISK_TEST_SIM='{…}' ASTERAMISK_REDIS_URL=redis://… node --import tsx test/support/cluster-instance.ts ID
 */
import { silentLogger } from '../../src/logger.js';
import { Server } from '../../src/server.js';
import type { TextUI } from '../../src/ui/text-ui.js';

const id = process.argv[2] ?? `instance-${process.pid}`;
const sim = JSON.parse(process.env.ASTERAMISK_TEST_SIM ?? '{}') as Record<string, unknown>;

async function text(ui: TextUI): Promise<void> {
  await ui.say(
    ui.resumed
      ? `[${id}] resumed: ${ui.history.map((h) => `${h.from}:${h.body}`).join(' | ')}`
      : `[${id}] hi ${ui.firstMessage}`,
  );
  for (;;) {
    const reply = await ui.prompt('');
    if (!reply || reply === 'bye') return;
    await ui.say(`[${id}] got ${reply}`);
  }
}

const server = await Server.create({
  ...sim,
  appName: `fleet-${id}`,
  tts: false,
  stt: false,
  logger: silentLogger,
  cluster: {
    redis: process.env.ASTERAMISK_REDIS_URL ?? '',
    instanceId: id,
    leaseMs: Number(process.env.ASTERAMISK_TEST_LEASE_MS ?? 3000),
    ackWaitMs: Number(process.env.ASTERAMISK_TEST_ACK_MS ?? 1000),
  },
});
await server.registerExtension('1000', { text });
console.log(`ready ${id}`);
process.on('SIGTERM', () => {
  void server.close().then(() => process.exit(0));
});
