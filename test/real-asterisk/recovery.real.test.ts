import { type ChildProcess, exec, spawn } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AmiClient } from '../../src/asterisk/ami-client.js';
import { AriClient } from '../../src/asterisk/ari-client.js';
import { HangupError } from '../../src/errors.js';
import { Server, type ServerHealth } from '../../src/server.js';
import type { VoiceUI } from '../../src/ui/voice-ui.js';
import { capturingLogger, type LogLine } from '../support/capturing-logger.js';
import { realAsteriskAvailable } from '../support/real-asterisk.js';
import { RecordingTts } from '../support/voice-harness.js';
import { within } from '../support/within.js';
import { amiPass, amiPort, amiUser, ariPass, ariPort, ariUser, host, sipProxy } from './real-env.js';
import { freeUdpPort, sippAvailable } from './sipp/sipp-phone.js';

/**
 * Recovery and drain against a real Asterisk 22 with sipp callers (issue 8). Runs only with
 * ASTERISK_HOST, ASTERISK_ARI_USER/PASS, ASTERISK_AMI_USER/PASS, ASTERISK_RESTART_COMMAND (e.g.
 * `asterisk -rx 'core restart now'`: it ends every call on that PBX, so run this file alone) and
 * `sipp` on the PATH (run as root). Callers are alice (From user, no auth) calling numbers 4700
 * and 4701 of `asteramisk-call`, as in example-configs. Prints what it measures.
 *
 * - 100 live calls (answer, prompt over the RTP leg, gather), a restart, then 50 new calls all
 *   succeed with no app restart; the number is back within 2 s of Asterisk's FullyBooted.
 * - Restarts in a row (RESTARTS, default 5), each with live calls before and new calls after.
 * - SIGTERM to a Server process (test/real-asterisk/drain-server.ts) during 50 live calls: every
 *   handler finishes, then nothing of them is left on the PBX (channel, bridge, dialplan step).
 */
const restartCommand = process.env.ASTERISK_RESTART_COMMAND;
const RESTARTS = Number(process.env.RESTARTS ?? 5);
const haveSipp = sippAvailable();
realAsteriskAvailable('recovery.real.test.ts', {
  ok: haveSipp && restartCommand !== undefined,
  needs: 'ASTERISK_RESTART_COMMAND (it restarts the PBX) and sipp on the PATH',
});

const HERE = dirname(fileURLToPath(import.meta.url));
const NUMBER = '4700';
const DRAIN_NUMBER = '4701';
const CONTEXT = 'asteramisk-call';

/** A sipp run placing `calls` calls to `number` at `rate` per second, all allowed up at once. */
interface SippRun {
  done: Promise<{ code: number | null; successful: number; failed: number; screen: string }>;
  kill(): void;
}

async function callMany(number: string, calls: number, rate: number): Promise<SippRun> {
  const dir = mkdtempSync(join(tmpdir(), 'asteramisk-recovery-'));
  copyFileSync(join(HERE, 'sipp', 'recovery-caller.xml'), join(dir, 'recovery-caller.xml'));
  const sipPort = await freeUdpPort('127.0.0.1');
  const mediaPort = 46000 + 2 * Math.floor(Math.random() * 2000);
  const args = [
    ...['-sf', 'recovery-caller.xml', '-s', number, '-i', '127.0.0.1', '-p', String(sipPort)],
    ...['-mi', '127.0.0.1', '-mp', String(mediaPort)],
    ...['-m', String(calls), '-r', String(rate), '-l', String(calls), '-nostdin', '-timeout', '150s'],
    ...['-trace_screen', '-screen_file', 'screen.log', '-trace_err', '-error_file', 'errors.log'],
    sipProxy,
  ];
  const child: ChildProcess = spawn('sipp', args, { cwd: dir, stdio: ['ignore', 'ignore', 'ignore'] });
  const done = new Promise<{ code: number | null; successful: number; failed: number; screen: string }>(
    (resolve) => {
      child.once('exit', (code) => {
        let screen = '';
        try {
          screen = readFileSync(join(dir, 'screen.log'), 'utf8');
        } catch {
          // No screen: sipp failed to start; the counts stay 0.
        }
        rmSync(dir, { recursive: true, force: true });
        const count = (label: string) =>
          Number(new RegExp(`${label}\\s*\\|[^|]*\\|\\s*(\\d+)`).exec(screen)?.[1] ?? 0);
        resolve({ code, successful: count('Successful call'), failed: count('Failed call'), screen });
      });
    },
  );
  return { done, kill: () => child.kill('SIGKILL') };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Resolves at the next FullyBooted seen by `ami` (its own login's, or the end-of-boot broadcast). */
function nextFullyBooted(ami: AmiClient): Promise<number> {
  return new Promise((resolve) => ami.once('FullyBooted', () => resolve(performance.now())));
}

function nextServerEvent<K extends 'ready' | 'degraded' | 'reregistered'>(
  server: Server,
  event: K,
  ms: number,
): Promise<number> {
  return within(
    new Promise<number>((resolve) => {
      const listener = () => resolve(performance.now());
      (server.once as (e: string, l: () => void) => Server)(event, listener);
    }),
    ms,
    `the server's '${event}'`,
  );
}

/** Steps of `exten` in the call context, as Asterisk lists them. */
async function dialplanSteps(ami: AmiClient, exten: string): Promise<string[]> {
  try {
    const res = await ami.action({ Action: 'ShowDialPlan', Context: CONTEXT, Extension: exten });
    return res.events
      .filter((e) => e.name === 'ListDialplan' && e.fields.Extension === exten)
      .map((e) => `${e.fields.Priority}:${e.fields.Application}(${e.fields.AppData})`);
  } catch {
    return [];
  }
}

describe.skipIf(!host || !restartCommand || !haveSipp)(
  'recovery against a real Asterisk 22: restarts under load and a drain (requires ASTERISK_HOST, ASTERISK_RESTART_COMMAND, sipp)',
  () => {
    const appName = `asteramisk-recovery-${process.pid}-${Math.random().toString(36).slice(2, 6)}`;
    const lines: LogLine[] = [];
    let server: Server;
    let monitor: AmiClient;
    let ari: AriClient;
    /** What the handler does: `hold` gathers for a long time (live calls), `quick` gathers 1 s and returns. */
    let mode: 'hold' | 'quick' = 'hold';
    const outcomes: { mode: string; error?: unknown }[] = [];
    let inGather = 0;

    const handler = async (ui: VoiceUI) => {
      const callMode = mode;
      try {
        await ui.answer();
        const gathering = ui.gather('Please enter your PIN.', {
          numDigits: 4,
          timeout: callMode === 'hold' ? 120 : 1,
        });
        inGather++;
        await gathering;
        outcomes.push({ mode: callMode });
      } catch (error) {
        outcomes.push({ mode: callMode, error });
        throw error;
      }
    };

    async function untilInGather(count: number, ms: number): Promise<void> {
      const deadline = performance.now() + ms;
      // Polled: handlers count themselves; the wait ends as soon as the count is reached.
      while (inGather < count) {
        if (performance.now() > deadline)
          throw new Error(`only ${inGather} of ${count} calls reached their gather within ${ms} ms`);
        await sleep(50);
      }
    }

    /** Restarts Asterisk and measures: FullyBooted, the number registered again, ready. */
    async function restartAndMeasure(): Promise<{
      fullyBootedMs: number;
      reregisteredAfterBootMs: number;
      readyMs: number;
      readyAfterBootMs: number;
    }> {
      const degraded = nextServerEvent(server, 'degraded', 30_000);
      const reregistered = nextServerEvent(server, 'reregistered', 90_000);
      const ready = nextServerEvent(server, 'ready', 90_000);
      const t0 = performance.now();
      // The monitor logs in again after the restart; its FullyBooted comes at the end of boot (or
      // right after its login, if that was later).
      const booted = (async () => {
        await within(
          new Promise((resolve) => monitor.once('disconnected', resolve)),
          30_000,
          'the monitor to see the restart',
        );
        return nextFullyBooted(monitor);
      })();
      await promisify(exec)(restartCommand ?? '');
      await degraded;
      const tBoot = await within(booted, 90_000, 'FullyBooted after the restart');
      const tRereg = await reregistered;
      const tReady = await ready;
      return {
        fullyBootedMs: Math.round(tBoot - t0),
        reregisteredAfterBootMs: Math.round(tRereg - tBoot),
        readyMs: Math.round(tReady - t0),
        readyAfterBootMs: Math.round(tReady - tBoot),
      };
    }

    beforeAll(async () => {
      monitor = new AmiClient({
        host: host ?? '127.0.0.1',
        port: amiPort,
        username: amiUser,
        password: amiPass,
        reconnectBackoff: { initialMs: 50, maxMs: 200 },
        events: ['system'],
      });
      await monitor.connect();
      ari = new AriClient({
        url: `http://${host}:${ariPort}`,
        username: ariUser,
        password: ariPass,
        app: `${appName}-spy`,
        reconnect: { initialMs: 50, maxMs: 500 },
      });
      await ari.connect();
      server = await Server.create({
        appName,
        logger: capturingLogger(lines, (l) => l.level !== 'debug'),
        tts: new RecordingTts(10),
        stt: false,
        ttsCacheDirectory: false,
        rtpPortMin: 33000,
        rtpPortMax: 33999,
      });
      await server.registerExtension(NUMBER, { voice: handler });
    }, 30_000);

    afterAll(async () => {
      await server?.close();
      await ari?.close();
      await monitor?.close();
    });

    it('100 live calls, a restart, then 50 new calls succeed; the number is back within 2 s of FullyBooted', async () => {
      mode = 'hold';
      inGather = 0;
      outcomes.length = 0;
      const live = await callMany(NUMBER, 100, 25);
      await untilInGather(100, 60_000);
      expect(server.activeCalls).toBe(100);

      const timing = await restartAndMeasure();
      console.info(`[recovery] restart under 100 calls: ${JSON.stringify(timing)}`);
      expect(timing.reregisteredAfterBootMs).toBeLessThan(2000);
      const health: ServerHealth = server.health();
      expect(health).toMatchObject({ ready: true, ari: 'up', ami: 'up', registered: [NUMBER], pending: [] });

      // Every live call ended with HangupError (the restart hung them up).
      const ended = performance.now();
      // Polled: each handler records its outcome; the wait ends as soon as all 100 have.
      while (outcomes.length < 100 && performance.now() - ended < 20_000) await sleep(50);
      const held = outcomes.filter((o) => o.mode === 'hold');
      expect(held).toHaveLength(100);
      expect(held.filter((o) => !(o.error instanceof HangupError)).map((o) => String(o.error))).toEqual([]);
      const firstRun = await within(live.done, 120_000, 'the first sipp run to end');
      console.info(
        `[recovery] first sipp run: ${firstRun.successful} calls ended by a BYE, ${firstRun.failed} failed`,
      );

      mode = 'quick';
      const after = await callMany(NUMBER, 50, 25);
      const second = await within(after.done, 120_000, 'the second sipp run to end');
      expect({ code: second.code, successful: second.successful, failed: second.failed }).toEqual({
        code: 0,
        successful: 50,
        failed: 0,
      });
      const quick = outcomes.filter((o) => o.mode === 'quick');
      expect(quick).toHaveLength(50);
      expect(quick.filter((o) => o.error !== undefined)).toEqual([]);
      const releaseWarnings = lines.filter((l) => l.msg === 'Releasing a media resource failed');
      const counts: Record<string, number> = {};
      for (const l of lines)
        if (l.level !== 'info') counts[`${l.level}: ${l.msg}`] = (counts[`${l.level}: ${l.msg}`] ?? 0) + 1;
      console.info(`[recovery] warnings and errors logged: ${JSON.stringify(counts)}`);
      expect(releaseWarnings.map((l) => String(l.fields.err))).toEqual([]);
    }, 300_000);

    it(`${RESTARTS} restarts in a row, each with live calls before and new calls after`, async () => {
      const timings = [];
      for (let round = 1; round <= RESTARTS; round++) {
        mode = 'hold';
        inGather = 0;
        outcomes.length = 0;
        const live = await callMany(NUMBER, 10, 20);
        await untilInGather(10, 30_000);
        const timing = await restartAndMeasure();
        timings.push(timing);
        console.info(`[recovery] restart ${round}/${RESTARTS}: ${JSON.stringify(timing)}`);
        expect(timing.reregisteredAfterBootMs).toBeLessThan(2000);
        await within(live.done, 120_000, 'the live sipp run to end');
        mode = 'quick';
        const after = await callMany(NUMBER, 5, 10);
        const result = await within(after.done, 60_000, 'the new calls');
        expect({ code: result.code, successful: result.successful }).toEqual({ code: 0, successful: 5 });
        expect(outcomes.filter((o) => o.mode === 'hold' && !(o.error instanceof HangupError))).toEqual([]);
      }
      const worst = Math.max(...timings.map((t) => t.reregisteredAfterBootMs));
      const readyWorst = Math.max(...timings.map((t) => t.readyMs));
      console.info(
        `[recovery] ${RESTARTS} restarts: number back after FullyBooted at worst ${worst} ms; ready after the restart command at worst ${readyWorst} ms`,
      );
      expect(server.health()).toMatchObject({ ready: true, registered: [NUMBER] });
    }, 600_000);

    it('SIGTERM during 50 live calls: every handler finishes, nothing is left on the PBX', async () => {
      const drainApp = `${appName}-drain`;
      const child = spawn(
        join(HERE, '..', '..', 'node_modules', '.bin', 'tsx'),
        [join(HERE, 'drain-server.ts'), DRAIN_NUMBER, drainApp, '30', '6'],
        { env: { ...process.env, ASTERAMISK_LOG_LEVEL: 'silent' }, stdio: ['ignore', 'pipe', 'pipe'] },
      );
      const events: { event: string; t: number; [k: string]: unknown }[] = [];
      let buffer = '';
      let stderr = '';
      child.stderr?.on('data', (c: Buffer) => {
        stderr += c.toString();
      });
      child.stdout?.on('data', (chunk: Buffer) => {
        buffer += chunk.toString();
        for (let nl = buffer.indexOf('\n'); nl >= 0; nl = buffer.indexOf('\n')) {
          events.push(JSON.parse(buffer.slice(0, nl)));
          buffer = buffer.slice(nl + 1);
        }
      });
      const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
      const until = async (pred: () => boolean, ms: number, what: string) => {
        const deadline = performance.now() + ms;
        // Polled: the child reports on stdout; the wait ends as soon as the line is there.
        while (!pred()) {
          if (performance.now() > deadline) throw new Error(`${what} within ${ms} ms; stderr: ${stderr}`);
          await sleep(50);
        }
      };
      try {
        await until(
          () => events.some((e) => e.event === 'registered'),
          30_000,
          'the drain server did not start',
        );
        expect(await dialplanSteps(monitor, DRAIN_NUMBER)).toContain(`1:Stasis(${drainApp},call)`);
        const calls = await callMany(DRAIN_NUMBER, 50, 25);
        await until(() => events.filter((e) => e.event === 'call').length >= 50, 30_000, 'not 50 calls');
        const channelIds = events.filter((e) => e.event === 'call').map((e) => String(e.channelId));
        const sigterm = Date.now();
        child.kill('SIGTERM');
        await until(() => events.some((e) => e.event === 'draining'), 10_000, 'no draining');
        // The dialplan step goes first, while the calls are still up (polled over AMI).
        const stepGone = performance.now();
        while ((await dialplanSteps(monitor, DRAIN_NUMBER)).some((s) => s.includes(drainApp))) {
          if (performance.now() - stepGone > 10_000) throw new Error('the dialplan step stayed');
          await sleep(20);
        }
        expect(events.filter((e) => e.event === 'handlerDone').length).toBeLessThan(50);
        await until(() => events.some((e) => e.event === 'drained'), 60_000, 'no drained');
        const drained = events.find((e) => e.event === 'drained');
        expect(drained).toMatchObject({ callsFinished: 50, callsHungUp: 0 });
        expect(events.filter((e) => e.event === 'handlerDone')).toHaveLength(50);
        expect(await within(exited, 30_000, 'the drain server to exit')).toBe(0);
        expect(events.some((e) => e.event === 'closed')).toBe(true);
        const result = await within(calls.done, 60_000, 'the sipp run to end');
        expect({ code: result.code, successful: result.successful }).toEqual({ code: 0, successful: 50 });
        console.info(
          `[recovery] drain of 50 calls: drained ${Number(drained?.t) - sigterm} ms after SIGTERM (${JSON.stringify(drained)})`,
        );

        // Nothing left: no channel of those calls, no bridge of theirs, no dialplan step.
        const channels = await ari.channels.list();
        expect(channels.filter((c) => channelIds.includes(c.id))).toEqual([]);
        const bridges = await ari.bridges.list();
        expect(bridges.filter((b) => channelIds.some((id) => b.name === `asteramisk-${id}`))).toEqual([]);
        expect(bridges.filter((b) => b.channels.some((id) => channelIds.includes(id)))).toEqual([]);
        expect((await dialplanSteps(monitor, DRAIN_NUMBER)).filter((s) => s.includes(drainApp))).toEqual([]);
      } finally {
        if (child.exitCode === null) child.kill('SIGKILL');
      }
    }, 180_000);
  },
);
