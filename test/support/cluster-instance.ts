/**
 * One app instance of a fleet, in its own process, for the several-instance tests: a Server on
 * the simulator(s) whose connection options come in ASTERAMISK_TEST_SIM (JSON; an array: several
 * Asterisk nodes), in fleet `fleet`
 * (calls shared), sharing texts through ASTERAMISK_REDIS_URL, serving 1000 with a text handler that
 * says which instance answers and a voice handler that answers and holds the call until the caller
 * hangs up. It prints `ready <instance id>` once serving. The tests SIGKILL it to see a fleet
 * survive.
 *
 *   ASTERAMISK_TEST_SIM='{…}' ASTERAMISK_REDIS_URL=redis://… node --import tsx test/support/cluster-instance.ts ID
 */
import { createDefaultLogger, silentLogger } from '../../src/logger.js';
import { Server } from '../../src/server.js';
import type { TextUI } from '../../src/ui/text-ui.js';

const id = process.argv[2] ?? `instance-${process.pid}`;
// One node's connection options, or several (then one Server on every node).
const given = JSON.parse(process.env.ASTERAMISK_TEST_SIM ?? '{}') as
  | Record<string, unknown>
  | Record<string, unknown>[];
const sim = Array.isArray(given)
  ? {
      ...given[0],
      asterisks: given.map((o) => ({ asteriskHost: o.asteriskHost, ariPort: o.ariPort, amiPort: o.amiPort })),
    }
  : given;

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
  fleet: {
    name: process.env.ASTERAMISK_TEST_FLEET_NAME ?? 'fleet',
    instanceId: id,
    refreshMs: Number(process.env.ASTERAMISK_TEST_FLEET_REFRESH_MS ?? 1000),
  },
  tts: false,
  stt: false,
  // ASTERAMISK_TEST_LOG=1 shows the instance's log (JSON) on its stderr, for debugging a test.
  logger: process.env.ASTERAMISK_TEST_LOG
    ? createDefaultLogger({ stream: process.stderr, format: 'json', level: 'debug' })
    : silentLogger,
  ...(process.env.ASTERAMISK_REDIS_URL
    ? {
        cluster: {
          redis: process.env.ASTERAMISK_REDIS_URL,
          leaseMs: Number(process.env.ASTERAMISK_TEST_LEASE_MS ?? 3000),
          ackWaitMs: Number(process.env.ASTERAMISK_TEST_ACK_MS ?? 1000),
        },
      }
    : {}),
});
await server.registerExtension(process.env.ASTERAMISK_TEST_NUMBER ?? '1000', {
  text,
  voice: async (ui) => {
    await ui.answer();
    await ui.sleep(3600);
  },
});
console.log(`ready ${id}`);
process.on('SIGTERM', () => {
  void server.close().then(() => process.exit(0));
});
