import { execSync } from 'node:child_process';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/logger.js';
import { Server, type ServerHealth } from '../../src/server.js';
import type { VoiceUI } from '../../src/ui/voice-ui.js';
import { realAsteriskAvailable } from '../support/real-asterisk.js';
import { nextServerEvent } from '../support/voice-harness.js';
import { within } from '../support/within.js';
import { realConnectionOptions, sipProxy } from './real-env.js';
import { SippPhone, sippAvailable } from './sipp/sipp-phone.js';

/**
 * One Server on two real Asterisk 22 processes. Needs ASTERISK_SECOND_NODE=host:ariPort:amiPort:sipPort
 * (a second Asterisk with the same example-configs on other ports) and
 * ASTERISK_SECOND_RESTART_COMMAND (e.g. `asterisk -C /path/asterisk.conf -rx 'core restart now'`):
 * sipp calls through each node; the second node restarts; the call on the first goes on, the
 * second's ends, and the number is served there again once it is back.
 */
const second = process.env.ASTERISK_SECOND_NODE?.split(':');
const restartSecond = process.env.ASTERISK_SECOND_RESTART_COMMAND;
const run = realAsteriskAvailable('nodes.real.test.ts', {
  ok: sippAvailable() && second?.length === 4 && restartSecond !== undefined,
  needs: 'sipp, ASTERISK_SECOND_NODE=host:ariPort:amiPort:sipPort and ASTERISK_SECOND_RESTART_COMMAND',
});
const NUMBER = '2190';

function healthWhere(
  server: Server,
  check: (h: ServerHealth) => boolean,
  what: string,
): Promise<ServerHealth> {
  if (check(server.health())) return Promise.resolve(server.health());
  return within(
    new Promise((resolve) => {
      const on = (h: ServerHealth) => {
        if (!check(h)) return;
        server.off('health', on);
        resolve(h);
      };
      server.on('health', on);
    }),
    60_000,
    what,
  );
}

describe.runIf(run)('one Server on two real Asterisk nodes', () => {
  let server: Server;
  const phones: SippPhone[] = [];
  const calls: VoiceUI[] = [];

  beforeAll(async () => {
    const [host, ariPort, amiPort] = second!;
    const first = realConnectionOptions();
    server = await Server.create({
      ...first,
      asterisks: [
        { asteriskHost: first.asteriskHost, ariPort: first.ariPort, amiPort: first.amiPort },
        { asteriskHost: host!, ariPort: Number(ariPort), amiPort: Number(amiPort) },
      ],
      appName: `asteramisk-nodes-real-${process.pid}`,
      tts: false,
      stt: false,
      logger: silentLogger,
      rtpPortMin: 41000,
      rtpPortMax: 41399,
    });
    await server.registerExtension(NUMBER, {
      voice: async (ui) => {
        calls.push(ui);
        await ui.answer();
        await ui.sleep(3600);
      },
    });
  }, 30_000);
  afterEach(async () => {
    for (const p of phones.splice(0)) await p.dispose();
  });
  afterAll(async () => {
    await server?.close();
  });

  it('serves both; a restart of one ends only its call, and it is served again', async () => {
    const secondSip = `${second![0]}:${second![3]}`;
    expect(server.health().nodes?.map((n) => n.registered)).toEqual([[NUMBER], [NUMBER]]);
    const firstStarted = nextServerEvent(server, 'callStarted');
    phones.push(await SippPhone.call({ to: NUMBER, proxy: sipProxy }));
    const [onFirst] = await within(firstStarted, 10_000, 'the call through the first node');
    const secondStarted = nextServerEvent(server, 'callStarted');
    phones.push(await SippPhone.call({ to: NUMBER, proxy: secondSip }));
    const [onSecond] = await within(secondStarted, 10_000, 'the call through the second node');

    const secondEnded = new Promise<void>((resolve) => onSecond.on('ended', () => resolve()));
    execSync(restartSecond!);
    await within(secondEnded, 20_000, "the second node's call to end");
    expect(onFirst.active).toBe(true);
    await healthWhere(
      server,
      (h) => h.ready && h.nodes?.[1]?.registered.includes(NUMBER) === true,
      'the second node back',
    );

    const again = nextServerEvent(server, 'callStarted');
    phones.push(await SippPhone.call({ to: NUMBER, proxy: secondSip }));
    await within(again, 10_000, 'a call through the second node after its restart');
    expect(onFirst.active).toBe(true);
  }, 90_000);
});
