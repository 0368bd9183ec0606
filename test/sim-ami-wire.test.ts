import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Simulator } from '../src/sandbox/simulator.js';
import { isEvent, RawAmi, type RawAmiMessage, value } from './support/raw-ami.js';
import { rawAri } from './support/raw-ari.js';

let sim: Simulator;
let ami: RawAmi;
let n = 0;
const id = () => `a${n++}`;

beforeAll(async () => {
  sim = await Simulator.start({ timeScale: 0.05, amiLoginFailureDelayMs: 10 });
  ami = await RawAmi.connect(sim.amiPort);
  const login = await ami.send([
    ['Action', 'Login'],
    ['ActionID', 'login'],
    ['Username', sim.credentials.amiUser],
    ['Secret', sim.credentials.amiPassword],
  ]);
  expect(value(login, 'Message')).toBe('Authentication accepted');
});

afterAll(async () => {
  ami?.close();
  await sim?.close();
});

const headers = (m: RawAmiMessage) => m.map(([k]) => k);

describe('simulator AMI: PBX actions as Asterisk 22 answers them', () => {
  it('greets like Asterisk 22 and sends FullyBooted without a Timestamp', async () => {
    expect(ami.greeting).toBe('Asterisk Call Manager/11.0.0');
    const booted = await ami.waitFor(isEvent('FullyBooted'));
    expect(headers(booted)).not.toContain('Timestamp');
    expect(value(booted, 'Status')).toBe('Fully Booted');
  });

  it('adds, refuses duplicates of, lists and removes dialplan extensions', async () => {
    const add = (ext: string, prio: string, extra: [string, string][] = []) =>
      ami.send([
        ['Action', 'DialplanExtensionAdd'],
        ['ActionID', id()],
        ['Context', 'wire-ctx'],
        ['Extension', ext],
        ['Priority', prio],
        ['Application', 'Stasis'],
        ['ApplicationData', 'wire,call'],
        ...extra,
      ]);
    expect(value(await add('7777', '1'), 'Message')).toBe('Added requested extension');
    const dup = await add('7777', '1');
    expect([value(dup, 'Response'), value(dup, 'Message')]).toEqual([
      'Error',
      'That extension and priority already exist at that context',
    ]);
    expect(value(await add('7777', '1', [['Replace', 'yes']]), 'Response')).toBe('Success');
    expect(value(await add('7778', 'abc'), 'Message')).toBe('The priority specified was invalid.');
    const missing = await ami.send([
      ['Action', 'DialplanExtensionAdd'],
      ['ActionID', id()],
      ['Context', 'wire-ctx'],
    ]);
    expect(value(missing, 'Message')).toBe(
      'Context, Extension, Priority, and Application must be defined for DialplanExtensionAdd.',
    );

    const listId = id();
    const list = await ami.send([
      ['Action', 'ShowDialPlan'],
      ['ActionID', listId],
      ['Context', 'wire-ctx'],
    ]);
    expect(value(list, 'EventList')).toBe('start');
    const complete = await ami.waitFor(
      (m) => isEvent('ShowDialPlanComplete')(m) && value(m, 'ActionID') === listId,
    );
    expect(value(complete, 'ListItems')).toBe('1');
    const item = ami.messages.find((m) => isEvent('ListDialplan')(m) && value(m, 'ActionID') === listId)!;
    expect([value(item, 'Extension'), value(item, 'Priority'), value(item, 'AppData')]).toEqual([
      '7777',
      '1',
      'wire,call',
    ]);

    const remove = (prio?: string) =>
      ami.send([
        ['Action', 'DialplanExtensionRemove'],
        ['ActionID', id()],
        ['Context', 'wire-ctx'],
        ['Extension', '7777'],
        ...(prio ? ([['Priority', prio]] as [string, string][]) : []),
      ]);
    expect(value(await remove('1'), 'Message')).toBe('Removed the requested priority from the extension');
    expect(value(await remove('1'), 'Message')).toBe('Failed to remove requested extension');
  });

  it('routes a call through an AMI-added extension into Stasis', async () => {
    await ami.send([
      ['Action', 'DialplanExtensionAdd'],
      ['ActionID', id()],
      ['Context', 'asteramisk-call'],
      ['Extension', '4242'],
      ['Priority', '1'],
      ['Application', 'Stasis'],
      ['ApplicationData', 'amiwire,call'],
    ]);
    const ari = await rawAri(sim.ariUrl, sim.credentials.ariUser, sim.credentials.ariPassword, 'amiwire');
    const phone = await sim.call({ from: 'alice', to: '4242' });
    const start = await ari.next('StasisStart');
    expect(start.args).toEqual(['call']);
    const newchannel = await ami.waitFor(
      (m) => isEvent('Newchannel')(m) && value(m, 'Uniqueid') === phone.channelId,
    );
    expect(headers(newchannel).slice(0, 4)).toEqual(['Event', 'Privilege', 'Timestamp', 'Channel']);
    await phone.press('5');
    const dtmf = await ami.waitFor((m) => isEvent('DTMFEnd')(m) && value(m, 'Uniqueid') === phone.channelId);
    expect([value(dtmf, 'Digit'), value(dtmf, 'Direction')]).toEqual(['5', 'Received']);

    const hangup = await ami.send([
      ['Action', 'Hangup'],
      ['ActionID', id()],
      ['Channel', phone.channelName],
    ]);
    expect(value(hangup, 'Message')).toBe('Channel Hungup');
    const event = await ami.waitFor((m) => isEvent('Hangup')(m) && value(m, 'Uniqueid') === phone.channelId);
    expect(value(event, 'Cause-txt')).toBe('Normal Clearing');
    expect(
      value(
        await ami.send([
          ['Action', 'Hangup'],
          ['ActionID', id()],
          ['Channel', 'PJSIP/none'],
        ]),
        'Message',
      ),
    ).toBe('No such channel');
    ari.close();
  });

  it('originates asynchronously and reports OriginateResponse with the ActionID and reason', async () => {
    const ari = await rawAri(sim.ariUrl, sim.credentials.ariUser, sim.credentials.ariPassword, 'orig-ami');
    const originate = (endpoint: string) => {
      const actionId = id();
      return {
        actionId,
        sent: ami.send([
          ['Action', 'Originate'],
          ['ActionID', actionId],
          ['Channel', endpoint],
          ['Application', 'Stasis'],
          ['Data', 'orig-ami,outbound'],
          ['CallerID', '"AMI Test" <7000>'],
          ['Async', 'true'],
        ]),
      };
    };
    const ok = originate('PJSIP/bob');
    expect(value(await ok.sent, 'Message')).toBe('Originate successfully queued');
    const res = await ami.waitFor(
      (m) => isEvent('OriginateResponse')(m) && value(m, 'ActionID') === ok.actionId,
    );
    expect([
      value(res, 'Response'),
      value(res, 'Reason'),
      value(res, 'Application'),
      value(res, 'Data'),
    ]).toEqual(['Success', '4', 'Stasis', 'orig-ami,outbound']);
    expect(headers(res).slice(0, 4)).toEqual(['Event', 'Privilege', 'Timestamp', 'ActionID']);
    expect((await ari.next('StasisStart')).args).toEqual(['outbound']);

    sim.setEndpointBehaviour('1001', { onCall: 'busy' });
    const busy = originate('PJSIP/1001');
    await busy.sent;
    const failed = await ami.waitFor(
      (m) => isEvent('OriginateResponse')(m) && value(m, 'ActionID') === busy.actionId,
    );
    expect([value(failed, 'Response'), value(failed, 'Reason'), value(failed, 'Channel')]).toEqual([
      'Failure',
      '0',
      'PJSIP/1001',
    ]);
    sim.setEndpointBehaviour('1001', { onCall: 'answer' });
    ari.close();
  });

  it('sends MESSAGEs with Body or Base64Body and reports failures', async () => {
    const body = 'line one\r\nAction: Originate\r\n; emoji 🎉';
    const sent = await ami.send([
      ['Action', 'MessageSend'],
      ['ActionID', id()],
      ['To', 'pjsip:bob'],
      ['From', 'sip:1000@127.0.0.1'],
      ['Base64Body', Buffer.from(body).toString('base64')],
    ]);
    expect(value(sent, 'Message')).toBe('Message successfully sent');
    expect(sim.sentTexts().at(-1)).toMatchObject({ endpoint: 'bob', body });
    const unknown = await ami.send([
      ['Action', 'MessageSend'],
      ['ActionID', id()],
      ['To', 'pjsip:nobody'],
      ['Body', 'x'],
    ]);
    expect(value(unknown, 'Message')).toBe('Message failed to send.');
    const tech = await ami.send([
      ['Action', 'MessageSend'],
      ['ActionID', id()],
      ['To', 'bogus:bob'],
      ['Body', 'x'],
    ]);
    expect(value(tech, 'Message')).toBe('Message technology not found.');
    const noTo = await ami.send([
      ['Action', 'MessageSend'],
      ['ActionID', id()],
      ['Body', 'x'],
    ]);
    expect(value(noTo, 'Message')).toBe("No 'To' address specified.");
  });

  it('restarts like core restart now: Shutdown event, then the socket closes', async () => {
    const other = await RawAmi.connect(sim.amiPort);
    await other.send([
      ['Action', 'Login'],
      ['ActionID', 'l2'],
      ['Username', sim.credentials.amiUser],
      ['Secret', sim.credentials.amiPassword],
    ]);
    await sim.restart();
    const shutdown = await other.waitFor(isEvent('Shutdown'));
    expect([value(shutdown, 'Shutdown'), value(shutdown, 'Restart')]).toEqual(['Cleanly', 'True']);
    await other.closed;
    const again = await RawAmi.connect(sim.amiPort);
    const login = await again.send([
      ['Action', 'Login'],
      ['ActionID', 'l3'],
      ['Username', sim.credentials.amiUser],
      ['Secret', sim.credentials.amiPassword],
    ]);
    expect(value(login, 'Response')).toBe('Success');
    const list = await again.send([
      ['Action', 'ShowDialPlan'],
      ['ActionID', 'after'],
      ['Context', 'wire-ctx'],
    ]);
    expect(value(list, 'Response')).toBe('Error');
    again.close();
  });
});

describe('simulator AMI: a session with an event mask (as the Server logs in: Events: system)', () => {
  it('gets FullyBooted and Shutdown, list items and action answers, but no call or dtmf events', async () => {
    // Asterisk 22 manager.c: FullyBooted after the login only when the mask has `system`; list
    // items (ListDialplan) are part of the action's answer, written whatever the mask.
    const masked = await Simulator.start({ timeScale: 0.05 });
    const full = await RawAmi.connect(masked.amiPort);
    const sys = await RawAmi.connect(masked.amiPort);
    try {
      const login = (raw: RawAmi, events: string) =>
        raw.send([
          ['Action', 'Login'],
          ['ActionID', `login-${events}`],
          ['Username', masked.credentials.amiUser],
          ['Secret', masked.credentials.amiPassword],
          ['Events', events],
        ]);
      expect(value(await login(full, 'on'), 'Response')).toBe('Success');
      expect(value(await login(sys, 'system'), 'Response')).toBe('Success');
      expect(value(await sys.waitFor(isEvent('FullyBooted')), 'Status')).toBe('Fully Booted');

      const add = await sys.send([
        ['Action', 'DialplanExtensionAdd'],
        ['ActionID', 'add'],
        ['Context', 'mask-ctx'],
        ['Extension', '4343'],
        ['Priority', '1'],
        ['Application', 'NoOp'],
        ['ApplicationData', 'masked'],
      ]);
      expect(value(add, 'Message')).toBe('Added requested extension');
      const list = await sys.send([
        ['Action', 'ShowDialPlan'],
        ['ActionID', 'list'],
        ['Context', 'mask-ctx'],
      ]);
      expect(value(list, 'EventList')).toBe('start');
      const item = await sys.waitFor((m) => isEvent('ListDialplan')(m) && value(m, 'ActionID') === 'list');
      expect(value(item, 'Extension')).toBe('4343');

      const ari = await rawAri(
        masked.ariUrl,
        masked.credentials.ariUser,
        masked.credentials.ariPassword,
        'mask',
      );
      masked.addExtension('asteramisk-call', '4444', 1, 'Stasis', 'mask,call');
      const phone = await masked.call({ from: 'alice', to: '4444' });
      await ari.next('StasisStart');
      await phone.press('7');
      // The unmasked session sees the call's events; by then the masked one would have them too.
      await full.waitFor((m) => isEvent('DTMFEnd')(m) && value(m, 'Uniqueid') === phone.channelId);
      await phone.hangup();
      await full.waitFor((m) => isEvent('Hangup')(m) && value(m, 'Uniqueid') === phone.channelId);
      const ping = await sys.send([
        ['Action', 'Ping'],
        ['ActionID', 'ping'],
      ]);
      expect(value(ping, 'Ping')).toBe('Pong');
      const sysEvents = sys.messages.filter(
        (m) => m[0]?.[0] === 'Event' && value(m, 'ActionID') === undefined,
      );
      expect(sysEvents.map((m) => value(m, 'Event'))).toEqual(['FullyBooted']);
      ari.close();

      await masked.restart();
      const shutdown = await sys.waitFor(isEvent('Shutdown'));
      expect(value(shutdown, 'Privilege')).toBe('system,all');
      await sys.closed;
    } finally {
      full.close();
      sys.close();
      await masked.close();
    }
  });
});
