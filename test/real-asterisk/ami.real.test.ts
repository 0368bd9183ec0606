import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AmiClient } from '../../src/asterisk/ami-client.js';
import { DialplanRegistrar } from '../../src/asterisk/dialplan-registrar.js';
import { AmiActionError, AuthenticationError, InvalidInputError } from '../../src/errors.js';
import { realAsteriskAvailable } from '../support/real-asterisk.js';

/**
 * The AMI client checks against a real Asterisk 22. They run only when ASTERISK_HOST is set, with
 * ASTERISK_AMI_PORT (default 5038), ASTERISK_AMI_USER and ASTERISK_AMI_PASS. They add and remove
 * steps in a context of their own (`asteramisk-realtest`) and touch nothing else.
 */
const host = process.env.ASTERISK_HOST;
realAsteriskAvailable('ami.real.test.ts');
const port = Number(process.env.ASTERISK_AMI_PORT ?? 5038);
const username = process.env.ASTERISK_AMI_USER ?? 'asteramisk';
const password = process.env.ASTERISK_AMI_PASS ?? 'asteramisk';
const CONTEXT = 'asteramisk-realtest';

describe.skipIf(!host)(
  'AmiClient against a real Asterisk 22 (requires ASTERISK_HOST, ASTERISK_AMI_PORT/USER/PASS)',
  () => {
    let ami: AmiClient;

    beforeAll(async () => {
      ami = new AmiClient({ host: host!, port, username, password });
      await ami.connect();
    });

    afterAll(async () => {
      await ami?.close();
    });

    it('logs in, pings, and reads every line of a CLI command', async () => {
      expect(ami.greeting).toMatch(/^Asterisk Call Manager\/\d+/);
      const pong = await ami.action({ Action: 'Ping' });
      expect(pong.fields.Ping).toBe('Pong');
      const lines = await ami.command('core show version');
      expect(lines.join('\n')).toMatch(/Asterisk 22\./);
      const help = await ami.command('core show help core show');
      expect(help.length).toBeGreaterThan(3);
    });

    it('answers three concurrent actions each with its own response', async () => {
      const [a, b, c] = await Promise.all([
        ami.action({ Action: 'Ping' }),
        ami.action({ Action: 'CoreSettings' }),
        ami.action({ Action: 'Getvar', Variable: 'ASTERAMISK_UNSET_GLOBAL' }),
      ]);
      expect(a.fields.Ping).toBe('Pong');
      expect(String(b.fields.AsteriskVersion)).toMatch(/^22\./);
      expect(c.fields.Variable).toBe('ASTERAMISK_UNSET_GLOBAL');
      expect(new Set([a.actionId, b.actionId, c.actionId]).size).toBe(3);
    });

    it('collects a list action until its Complete event', async () => {
      const res = await ami.action({ Action: 'CoreShowChannels' });
      expect(res.complete?.name).toBe('CoreShowChannelsComplete');
      expect(Number(res.complete?.fields.ListItems)).toBe(res.events.length);
    });

    it('refuses CR/LF in a value before anything is sent', async () => {
      await expect(ami.action({ Action: 'Ping', Foo: 'x\r\nAction: Logoff' })).rejects.toBeInstanceOf(
        InvalidInputError,
      );
      expect((await ami.action({ Action: 'Ping' })).fields.Ping).toBe('Pong');
    });

    it('rejects an Error response with AmiActionError carrying Asterisk’s message', async () => {
      const error = await ami.action({ Action: 'BogusAction' }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(AmiActionError);
      expect((error as AmiActionError).message).toContain('Invalid/unknown command');
    });

    it('stacks a second registration of a number behind the first and removes only its own', async () => {
      const first = new DialplanRegistrar(ami);
      const second = new DialplanRegistrar(ami);
      const number = `9${Date.now() % 100000}`;
      const a = await first.add(CONTEXT, number, 'Stasis', 'first,call');
      const b = await second.add(CONTEXT, number, 'Stasis', 'second,call');
      expect([a.priority, b.priority]).toEqual([1, 2]);
      await first.remove(number);
      // Priority 1 stays, as a pass-through: without it Asterisk finds no extension at all
      // ("No such extension/context" for a Local channel, 404 for a SIP INVITE).
      const left = await ami.action({ Action: 'ShowDialPlan', Context: CONTEXT, Extension: number });
      expect(left.events.map((e) => [e.fields.Priority, e.fields.Application, e.fields.AppData])).toEqual([
        ['1', 'NoOp', 'asteramisk: an instance left; on to the next priority'],
        ['2', 'Stasis', 'second,call'],
      ]);
      // The last one to leave takes the placeholder with it.
      await second.remove(number);
      await expect(
        ami.action({ Action: 'ShowDialPlan', Context: CONTEXT, Extension: number }),
      ).rejects.toBeInstanceOf(AmiActionError);
    });

    it('reports a wrong secret as one AuthenticationError, and the process lives', async () => {
      const bad = new AmiClient({ host: host!, port, username, password: `${password}-wrong` });
      await expect(bad.connect()).rejects.toBeInstanceOf(AuthenticationError);
      await bad.close();
      expect((await ami.action({ Action: 'Ping' })).fields.Ping).toBe('Pong');
    });
  },
);
