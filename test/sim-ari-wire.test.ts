import { createSocket } from 'node:dgram';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { encodeMulaw } from '../src/media/g711.js';
import { decodeRtp, encodeRtp } from '../src/media/rtp-packet.js';
import { Simulator } from '../src/sandbox/simulator.js';
import {
  BRIDGE_KEYS,
  CHANNEL_ID_PATTERN,
  CHANNEL_KEYS,
  COMMON_HEADERS,
  ERRORS,
  EXTERNAL_MEDIA_RTP,
  ORIGINATE_ANSWERED_SEQUENCE,
  ORIGINATE_FAILURES,
  TIMESTAMP_PATTERN,
} from './fixtures/asterisk22-facts.js';
import { type RawAri, type RawEvent, rawAri } from './support/raw-ari.js';

let sim: Simulator;
let ari: RawAri;
let appSeq = 0;

async function freshApp(opts: { subscribeAll?: boolean } = {}): Promise<{ app: string; ari: RawAri }> {
  const app = `wire${appSeq++}`;
  sim.addExtension('asteramisk-call', `7${appSeq}`, 1, 'NoOp', 'simulated');
  sim.addExtension('asteramisk-call', `7${appSeq}`, 2, 'Stasis', `${app},7${appSeq}`);
  const { ariUser, ariPassword } = sim.credentials;
  return { app, ari: await rawAri(sim.ariUrl, ariUser, ariPassword, app, opts) };
}

function sine(hz: number, ms: number): Int16Array {
  const n = (ms * 8000) / 1000;
  return Int16Array.from({ length: n }, (_, i) => Math.round(8000 * Math.sin((2 * Math.PI * hz * i) / 8000)));
}

beforeAll(async () => {
  sim = await Simulator.start({ timeScale: 0.05 });
  sim.addExtension('asteramisk-call', '1000', 1, 'NoOp', 'inbound');
  sim.addExtension('asteramisk-call', '1000', 2, 'Stasis', 'wire,1000');
  ari = await rawAri(sim.ariUrl, sim.credentials.ariUser, sim.credentials.ariPassword, 'wire');
});

afterAll(async () => {
  ari?.close();
  await sim?.close();
});

describe('simulator ARI: REST basics', () => {
  it('answers with Asterisk headers and its error bodies', async () => {
    const info = await ari.rest('GET', '/asterisk/info');
    expect(info.status).toBe(200);
    for (const [k, v] of Object.entries(COMMON_HEADERS)) expect(info.headers.get(k)).toBe(v);
    expect((info.json as { system: { version: string } }).system.version).toMatch(/^22\./);

    const unauth = await fetch(`${sim.ariUrl}/ari/channels`);
    expect(unauth.status).toBe(ERRORS.unauthenticated.status);
    expect(await unauth.json()).toEqual(ERRORS.unauthenticated.body);
    expect(unauth.headers.get('www-authenticate')).toBe('Basic realm="Asterisk REST Interface"');

    const apiKey = await fetch(
      `${sim.ariUrl}/ari/channels?api_key=${sim.credentials.ariUser}:${sim.credentials.ariPassword}`,
    );
    expect(apiKey.status).toBe(200);

    for (const [res, fact] of [
      [await ari.rest('GET', '/nosuchthing'), ERRORS.unknownResource],
      [await ari.rest('GET', '/channels/'), ERRORS.trailingSlash],
      [await ari.rest('PUT', '/channels'), ERRORS.wrongMethod],
    ] as const) {
      expect(res.status).toBe(fact.status);
      expect(res.json).toEqual(fact.body);
    }
    const badJson = await fetch(`${sim.ariUrl}/ari/asterisk/variable`, {
      method: 'POST',
      headers: {
        Authorization: `Basic ${Buffer.from(`${sim.credentials.ariUser}:${sim.credentials.ariPassword}`).toString('base64')}`,
        'Content-Type': 'application/json',
      },
      body: '{not json',
    });
    expect(badJson.status).toBe(ERRORS.badJsonBody.status);
    expect(await badJson.json()).toEqual(ERRORS.badJsonBody.body);
  });

  it('refuses websocket upgrades without app or credentials', async () => {
    const statusOf = (url: string, headers: Record<string, string> = {}) =>
      new Promise<number>((resolve) => {
        const ws = new WebSocket(url, { headers });
        ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
        ws.on('open', () => {
          ws.close();
          resolve(101);
        });
        ws.on('error', () => {});
      });
    const base = sim.ariUrl.replace('http', 'ws');
    const auth = {
      Authorization: `Basic ${Buffer.from(`${sim.credentials.ariUser}:${sim.credentials.ariPassword}`).toString('base64')}`,
    };
    expect(await statusOf(`${base}/ari/events`, auth)).toBe(400);
    expect(await statusOf(`${base}/ari/events?app=x`)).toBe(401);
    expect(await statusOf(`${base}/ari/nothing?app=x`, auth)).toBe(404);
    expect(await statusOf(`${base}/ari/events?app=x`, auth)).toBe(101);
  });
});

describe('simulator ARI: an inbound call (scenario a/b)', () => {
  it('delivers StasisStart, answer, playback, DTMF and caller hangup like Asterisk', async () => {
    const phone = await sim.call({ from: 'alice', to: '1000' });
    const start = await ari.next('StasisStart');
    expect(start.args).toEqual(['1000']);
    expect(start.timestamp).toMatch(TIMESTAMP_PATTERN);
    expect(start.application).toBe('wire');
    const channel = start.channel as Record<string, unknown>;
    expect(Object.keys(channel)).toEqual(CHANNEL_KEYS);
    expect(channel.id).toMatch(CHANNEL_ID_PATTERN);
    expect(channel.name).toMatch(/^PJSIP\/alice-[0-9a-f]{8}$/);
    expect(channel.state).toBe('Ring');
    expect(channel.caller).toEqual({ name: 'Alice', number: 'alice' });
    expect(channel.dialplan).toEqual({
      context: 'asteramisk-call',
      exten: '1000',
      priority: 2,
      app_name: 'Stasis',
      app_data: 'wire,1000',
    });
    const id = channel.id as string;

    expect((await ari.rest('POST', `/channels/${id}/answer`)).status).toBe(204);
    expect(((await ari.next('ChannelStateChange')).channel as { state: string }).state).toBe('Up');

    const play = await ari.rest('POST', `/channels/${id}/play`, { media: 'sound:hello-world' });
    expect(play.status).toBe(201);
    const pb = play.json as { id: string; state: string; target_uri: string };
    expect(pb.state).toBe('queued');
    expect(pb.target_uri).toBe(`channel:${id}`);
    expect(play.headers.get('location')).toBe(`/ari/playbacks/${pb.id}`);
    expect(((await ari.next('PlaybackStarted')).playback as { state: string }).state).toBe('playing');
    expect(((await ari.next('PlaybackFinished')).playback as { state: string }).state).toBe('done');
    expect(phone.heard().media).toEqual(['sound:hello-world']);

    await phone.press('12#');
    const digits = [
      await ari.next('ChannelDtmfReceived'),
      await ari.next('ChannelDtmfReceived'),
      await ari.next('ChannelDtmfReceived'),
    ];
    expect(digits.map((d) => d.digit)).toEqual(['1', '2', '#']);

    await phone.hangup();
    const hangupRequest = await ari.next('ChannelHangupRequest');
    expect(hangupRequest).not.toHaveProperty('cause');
    expect(hangupRequest).not.toHaveProperty('soft');
    await ari.next('StasisEnd');
    expect(
      ari.events.some((e) => e.type === 'ChannelDestroyed' && (e.channel as { id: string }).id === id),
    ).toBe(false);
    expect((await ari.rest('GET', `/channels/${id}`)).json).toEqual(ERRORS.channelGone.body);
  });

  it('an app hangup is a soft hangup (cause 32) that fails the running playback', async () => {
    const { ari: a } = await freshApp();
    const phone = await sim.call({ from: 'alice', to: `7${appSeq}` });
    const id = ((await a.next('StasisStart')).channel as { id: string }).id;
    await a.rest('POST', `/channels/${id}/answer`);
    await a.rest('POST', `/channels/${id}/play`, { media: 'sound:demo-congrats' });
    await a.next('PlaybackStarted');
    expect((await a.rest('DELETE', `/channels/${id}`, { reason: 'notareason' })).json).toEqual(
      ERRORS.badHangupReason.body,
    );
    expect((await a.rest('DELETE', `/channels/${id}`)).status).toBe(204);
    const req = await a.next('ChannelHangupRequest');
    expect([req.cause, req.soft]).toEqual([32, true]);
    expect(((await a.next('PlaybackFinished')).playback as { state: string }).state).toBe('failed');
    await a.next('StasisEnd');
    expect((await phone.ended()).cause).toBe(16);
    for (const [method, path] of [
      ['POST', `/channels/${id}/play?media=sound:beep`],
      ['GET', `/channels/${id}`],
      ['DELETE', `/channels/${id}`],
      ['POST', `/channels/${id}/answer`],
    ] as const) {
      const res = await a.rest(method, path);
      expect([res.status, res.json]).toEqual([ERRORS.channelGone.status, ERRORS.channelGone.body]);
    }
    a.close();
  });
});

describe('simulator ARI: playbacks (scenario c)', () => {
  it('fails a missing sound at once, chains a list, stops, pauses and rejects bad operations', async () => {
    const { ari: a } = await freshApp();
    await sim.call({ from: 'bob', to: `7${appSeq}` });
    const id = ((await a.next('StasisStart')).channel as { id: string }).id;

    await a.rest('POST', `/channels/${id}/play`, { media: 'sound:doesnotexist' });
    await a.next('PlaybackStarted');
    expect(((await a.next('PlaybackFinished')).playback as { state: string }).state).toBe('failed');

    const list = await a.rest('POST', `/channels/${id}/play`, { media: 'sound:beep,digits:12' });
    expect(list.json).toMatchObject({ media_uri: 'sound:beep', next_media_uri: 'digits:12' });
    await a.next('PlaybackStarted', (e) => (e.playback as { media_uri: string }).media_uri === 'sound:beep');
    const continuing = await a.next('PlaybackContinuing');
    expect(continuing.playback).toMatchObject({
      media_uri: 'sound:beep',
      state: 'continuing',
      next_media_uri: 'digits:12',
    });
    const last = await a.next('PlaybackStarted');
    expect(last.playback).toMatchObject({ media_uri: 'digits:12' });
    expect(last.playback).not.toHaveProperty('next_media_uri');
    await a.next('PlaybackFinished');

    const tone = (await a.rest('POST', `/channels/${id}/play`, { media: 'tone:ring;tonezone=us' })).json as {
      id: string;
    };
    await a.next('PlaybackStarted');
    expect((await a.rest('POST', `/playbacks/${tone.id}/control`, { operation: 'pause' })).status).toBe(204);
    expect(((await a.rest('GET', `/playbacks/${tone.id}`)).json as { state: string }).state).toBe('paused');
    const bogus = await a.rest('POST', `/playbacks/${tone.id}/control`, { operation: 'bogus' });
    expect([bogus.status, bogus.json]).toEqual([
      ERRORS.badPlaybackOperation.status,
      ERRORS.badPlaybackOperation.body,
    ]);
    expect((await a.rest('DELETE', `/playbacks/${tone.id}`)).status).toBe(204);
    expect(((await a.next('PlaybackFinished')).playback as { state: string }).state).toBe('done');
    expect((await a.rest('GET', `/playbacks/${tone.id}`)).json).toEqual(ERRORS.playbackGone.body);
    a.close();
  });
});

describe('simulator ARI: externalMedia and RTP (scenario d)', () => {
  it('creates a UnicastRTP channel, carries caller audio out as RTP and RTP back to the caller', async () => {
    const { app, ari: a } = await freshApp();
    const phone = await sim.call({ from: 'alice', to: `7${appSeq}` });
    const callId = ((await a.next('StasisStart')).channel as { id: string }).id;
    await a.rest('POST', `/channels/${callId}/answer`);

    const udp = createSocket('udp4');
    const packets: Buffer[] = [];
    const firstPacket = new Promise<{ address: string; port: number }>((resolve) =>
      udp.on('message', (msg, rinfo) => {
        packets.push(msg);
        if (packets.length === 1) resolve(rinfo);
      }),
    );
    await new Promise<void>((resolve) => udp.bind(0, '127.0.0.1', () => resolve()));
    const port = udp.address().port;

    for (const [query, fact] of [
      [{ app, format: 'ulaw' }, ERRORS.extMediaNoHost],
      [{ app, external_host: '127.0.0.1', format: 'ulaw' }, ERRORS.extMediaNoPort],
      [{ external_host: `127.0.0.1:${port}`, format: 'ulaw' }, ERRORS.extMediaNoApp],
      [{ app, external_host: `127.0.0.1:${port}` }, ERRORS.extMediaNoFormat],
      [
        { app, external_host: `127.0.0.1:${port}`, format: 'ulaw', encapsulation: 'bogus' },
        ERRORS.extMediaBadEncapsulation,
      ],
      [
        { app, external_host: `127.0.0.1:${port}`, format: 'ulaw', transport: 'tcp' },
        ERRORS.extMediaRtpOverTcp,
      ],
      [
        { app, external_host: `127.0.0.1:${port}`, format: 'ulaw', direction: 'sideways' },
        ERRORS.extMediaBadDirection,
      ],
    ] as const) {
      const res = await a.rest('POST', '/channels/externalMedia', query);
      expect([res.status, res.json]).toEqual([fact.status, fact.body]);
    }

    const created = await a.rest('POST', '/channels/externalMedia', {
      app,
      external_host: `127.0.0.1:${port}`,
      format: 'ulaw',
      encapsulation: 'rtp',
      transport: 'udp',
      direction: 'both',
    });
    expect(created.status).toBe(200);
    const ext = created.json as {
      id: string;
      name: string;
      state: string;
      channelvars: Record<string, string>;
    };
    expect(ext.state).toBe('Down');
    expect(ext.name).toMatch(new RegExp(`^UnicastRTP/127\\.0\\.0\\.1:${port}-0x[0-9a-f]+$`));
    const localPort = Number(ext.channelvars.UNICASTRTP_LOCAL_PORT);
    expect(ext.channelvars.UNICASTRTP_LOCAL_ADDRESS).toBe('127.0.0.1');
    const extStart = await a.next('StasisStart', (e) => (e.channel as { id: string }).id === ext.id);
    expect(extStart.args).toEqual([]);

    const bridge = (await a.rest('POST', '/bridges', { type: 'mixing' })).json as Record<string, unknown>;
    expect(Object.keys(bridge)).toEqual(BRIDGE_KEYS);
    expect(bridge.technology).toBe('simple_bridge');
    expect((await a.rest('POST', `/bridges/${bridge.id}/addChannel`, { channel: callId })).status).toBe(204);
    expect((await a.rest('POST', `/bridges/${bridge.id}/addChannel`, { channel: ext.id })).status).toBe(204);

    // Caller → external host: RTP from UNICASTRTP_LOCAL_ADDRESS:PORT, PT 0, 160-byte payloads.
    await phone.speak(sine(440, 200));
    const from = await firstPacket;
    expect(from).toMatchObject({ address: '127.0.0.1', port: localPort });
    const decoded = packets.map((p) => decodeRtp(p)!);
    expect(decoded.length).toBe(10);
    for (const p of decoded) {
      expect(p.payloadType).toBe(EXTERNAL_MEDIA_RTP.payloadType);
      expect(p.payload.length).toBe(EXTERNAL_MEDIA_RTP.payloadBytes);
      expect(p.csrc.length).toBe(EXTERNAL_MEDIA_RTP.csrcCount);
    }
    expect(decoded[0]!.marker).toBe(false);
    expect(decoded[0]!.timestamp).toBe(0);
    for (let i = 1; i < decoded.length; i++) {
      expect(decoded[i]!.sequenceNumber).toBe((decoded[i - 1]!.sequenceNumber + 1) & 0xffff);
      expect(decoded[i]!.timestamp).toBe(decoded[i - 1]!.timestamp + 160);
      expect(decoded[i]!.ssrc).toBe(decoded[0]!.ssrc);
    }

    // External host → caller.
    const tone = encodeMulaw(sine(1000, 100));
    for (let i = 0; i < 5; i++) {
      const packet = encodeRtp({
        payloadType: 0,
        marker: i === 0,
        sequenceNumber: 100 + i,
        timestamp: i * 160,
        ssrc: 42,
        csrc: [],
        payload: tone.subarray(i * 160, (i + 1) * 160),
      });
      udp.send(packet, localPort, '127.0.0.1');
    }
    await phone.waitForAudio(100);
    expect(phone.heard().audio.length).toBe(800);

    const notMember = await a.rest('POST', `/bridges/${bridge.id}/removeChannel`, { channel: 'nosuch' });
    expect([notMember.status, notMember.json]).toEqual([
      ERRORS.bridgeAddUnknownChannel.status,
      ERRORS.bridgeAddUnknownChannel.body,
    ]);
    expect((await a.rest('POST', `/bridges/${bridge.id}/removeChannel`, { channel: ext.id })).status).toBe(
      204,
    );
    const twice = await a.rest('POST', `/bridges/${bridge.id}/removeChannel`, { channel: ext.id });
    expect([twice.status, twice.json]).toEqual([
      ERRORS.bridgeRemoveNotMember.status,
      ERRORS.bridgeRemoveNotMember.body,
    ]);
    expect((await a.rest('DELETE', `/bridges/${bridge.id}`)).status).toBe(204);
    expect((await a.rest('DELETE', `/bridges/${bridge.id}`)).status).toBe(404);
    udp.close();
    await phone.hangup();
    a.close();
  });
});

describe('simulator ARI: originate (scenario g)', () => {
  it('answered, busy and unanswered originates produce Asterisk’s event sequences', async () => {
    const app = 'orig';
    const a = await rawAri(sim.ariUrl, sim.credentials.ariUser, sim.credentials.ariPassword, app);
    const about = (e: RawEvent, id: string) =>
      ((e.channel ?? e.peer) as { id: string } | undefined)?.id === id;
    const seq = async (id: string, last: string) => {
      await a.waitFor((e) => e.type === last && about(e, id));
      return a.events.filter((e) => about(e, id));
    };

    const res = await a.rest(
      'POST',
      '/channels',
      { endpoint: 'PJSIP/bob', app, appArgs: 'outbound,second arg', callerId: 'ARI Test <5551234>' },
      {
        variables: { MY_VAR: 'hello', 'CALLERID(name)': 'From Body' },
      },
    );
    expect(res.status).toBe(200);
    const ch = res.json as Record<string, unknown>;
    expect(ch.state).toBe('Down');
    expect(ch.caller).toEqual({ name: 'From Body', number: '5551234' });
    expect(ch.connected).toEqual({ name: 'ARI Test', number: '5551234' });
    expect(ch.dialplan).toMatchObject({
      exten: 's',
      priority: 1,
      app_name: 'AppDial2',
      app_data: '(Outgoing Line)',
    });
    const answered = await seq(ch.id as string, 'StasisStart');
    expect(
      answered.map((e) => [
        e.type,
        e.type === 'Dial'
          ? e.dialstatus
          : e.type === 'ChannelStateChange'
            ? (e.channel as { state: string }).state
            : e.type === 'ChannelVarset'
              ? e.variable
              : '',
      ]),
    ).toEqual(ORIGINATE_ANSWERED_SEQUENCE.map(([t, v]) => [t, v]));
    expect(answered.at(-1)!.args).toEqual(['outbound', 'second arg']);
    expect(
      ((await a.rest('GET', `/channels/${ch.id}/variable`, { variable: 'MY_VAR' })).json as { value: string })
        .value,
    ).toBe('hello');
    const bobPhone = await sim.nextIncomingCall('bob');
    expect(bobPhone.channelId).toBe(ch.id);
    await a.rest('DELETE', `/channels/${ch.id}`);
    const destroyed = (await seq(ch.id as string, 'ChannelDestroyed')).at(-1)!;
    expect([destroyed.cause, destroyed.cause_txt]).toEqual([16, 'Normal Clearing']);

    sim.setEndpointBehaviour('1001', { onCall: 'busy' });
    const busy = (await a.rest('POST', '/channels', { endpoint: 'PJSIP/1001', app })).json as { id: string };
    const busyEvents = await seq(busy.id, 'ChannelDestroyed');
    expect(busyEvents.some((e) => e.type === 'StasisStart')).toBe(false);
    expect(busyEvents.at(-1)).toMatchObject(ORIGINATE_FAILURES.busy);

    sim.setEndpointBehaviour('1001', { onCall: 'no-answer' });
    const ringing = (await a.rest('POST', '/channels', { endpoint: 'PJSIP/1001', app, timeout: '1' }))
      .json as { id: string };
    const noAnswerEvents = await seq(ringing.id, 'ChannelDestroyed');
    expect(noAnswerEvents.at(-1)).toMatchObject(ORIGINATE_FAILURES.noAnswer);

    for (const [query, fact] of [
      [{ endpoint: 'PJSIP/nobody', app }, ERRORS.allocationFailed],
      [{ endpoint: 'Foo/bar', app }, ERRORS.allocationFailed],
      [{ app }, ERRORS.noEndpoint],
      [{ endpoint: 'PJSIP/bob' }, ERRORS.noAppNoExtension],
    ] as const) {
      const r = await a.rest('POST', '/channels', query);
      expect([r.status, r.json]).toEqual([fact.status, fact.body]);
    }
    sim.setEndpointBehaviour('1001', { onCall: 'no-answer', online: false });
    const offline = await a.rest('POST', '/channels', { endpoint: 'PJSIP/1001', app });
    expect([offline.status, offline.json]).toEqual([
      ERRORS.allocationFailed.status,
      ERRORS.allocationFailed.body,
    ]);
    sim.setEndpointBehaviour('1001', { onCall: 'answer', online: true });

    await a.rest('POST', '/channels', { endpoint: 'PJSIP/bob', app, channelId: 'dup-1' });
    const dup = await a.rest('POST', '/channels/dup-1', { endpoint: 'PJSIP/bob', app });
    expect([dup.status, dup.json]).toEqual([
      ERRORS.duplicateChannelId.status,
      ERRORS.duplicateChannelId.body,
    ]);
    a.close();
  });
});

describe('simulator ARI: recordings (scenario e)', () => {
  it('records until the terminating key, stores a WAV and refuses bad requests', async () => {
    const { ari: a } = await freshApp();
    const phone = await sim.call({ from: 'alice', to: `7${appSeq}` });
    const id = ((await a.next('StasisStart')).channel as { id: string }).id;
    await a.rest('POST', `/channels/${id}/answer`);
    const rec = await a.rest('POST', `/channels/${id}/record`, {
      name: 'rec-dtmf',
      format: 'wav',
      beep: 'true',
      terminateOn: '#',
    });
    expect(rec.status).toBe(201);
    expect(rec.headers.get('location')).toBe('/ari/recordings/live/rec-dtmf');
    expect(rec.json).toEqual({
      name: 'rec-dtmf',
      format: 'wav',
      state: 'queued',
      target_uri: `channel:${id}`,
    });
    expect(((await a.next('RecordingStarted')).recording as { state: string }).state).toBe('recording');
    expect(phone.heard().media).toContain('sound:beep');
    await phone.speak(sine(300, 100));
    await phone.press('#');
    const finished = (await a.next('RecordingFinished')).recording as Record<string, unknown>;
    expect(finished).toMatchObject({ name: 'rec-dtmf', state: 'done', duration: 0 });
    expect(finished).not.toHaveProperty('talking_duration');

    const file = await a.rest('GET', '/recordings/stored/rec-dtmf/file');
    expect(file.headers.get('content-type')).toBe('audio/wav');
    const again = await a.rest('POST', `/channels/${id}/record`, { name: 'rec-dtmf', format: 'wav' });
    expect([again.status, again.json]).toEqual([
      ERRORS.recordingExists('rec-dtmf').status,
      ERRORS.recordingExists('rec-dtmf').body,
    ]);
    const badFormat = await a.rest('POST', `/channels/${id}/record`, { name: 'x', format: 'nosuchformat' });
    expect([badFormat.status, badFormat.json]).toEqual([
      ERRORS.recordingBadFormat.status,
      ERRORS.recordingBadFormat.body,
    ]);
    const badTerm = await a.rest('POST', `/channels/${id}/record`, {
      name: 'y',
      format: 'wav',
      terminateOn: 'x',
    });
    expect([badTerm.status, badTerm.json]).toEqual([
      ERRORS.recordingBadTerminateOn.status,
      ERRORS.recordingBadTerminateOn.body,
    ]);
    expect((await a.rest('GET', '/recordings/stored')).json).toEqual([{ name: 'rec-dtmf', format: 'wav' }]);
    expect((await a.rest('DELETE', '/recordings/stored/rec-dtmf')).status).toBe(204);
    expect((await a.rest('DELETE', '/recordings/stored/rec-dtmf')).json).toEqual(ERRORS.recordingGone.body);
    await phone.hangup();
    a.close();
  });
});

describe('simulator ARI: measured with a SIP phone (test/real-asterisk/voice.real.test.ts)', () => {
  it('sends each channel event twice to an app subscribed to the channel’s endpoint while in Stasis', async () => {
    // Asterisk 22.10.1, app with `endpoint:PJSIP` and the caller in its Stasis: ChannelStateChange,
    // ChannelDtmfReceived, ChannelVarset, ChannelHangupRequest came twice, byte for byte; events
    // before StasisStart and after StasisEnd (only the endpoint covers them) and StasisStart/End
    // themselves came once. (Asterisk also sent a soft ChannelHangupRequest after StasisEnd, as to
    // subscribeAll apps; the simulator leaves that one out.)
    const { app, ari: a } = await freshApp();
    await a.rest('POST', `/applications/${app}/subscription`, { eventSource: 'endpoint:PJSIP' });
    const phone = await sim.call({ from: 'alice', to: `7${appSeq}` });
    const id = ((await a.next('StasisStart')).channel as { id: string }).id;
    await a.rest('POST', `/channels/${id}/answer`);
    await phone.press('1');
    await a.waitFor((e) => e.type === 'ChannelDtmfReceived');
    await phone.hangup();
    await a.waitFor((e) => e.type === 'ChannelDestroyed');
    const ofCall = a.events.filter((e) => (e.channel as { id?: string } | undefined)?.id === id);
    const count = (type: string) => ofCall.filter((e) => e.type === type).length;
    expect(count('ChannelCreated')).toBe(1);
    expect(count('StasisStart')).toBe(1);
    expect(count('ChannelStateChange')).toBe(2);
    expect(count('ChannelDtmfReceived')).toBe(2);
    const [first, second] = ofCall.filter((e) => e.type === 'ChannelDtmfReceived');
    expect(JSON.stringify(second)).toBe(JSON.stringify(first));
    expect(count('ChannelHangupRequest')).toBe(2);
    expect(count('StasisEnd')).toBe(1);
    expect(count('ChannelDestroyed')).toBe(1);
    // Not left to the websocket close: the next test needs nobody subscribed to alice's endpoint.
    await a.rest('DELETE', `/applications/${app}/subscription`, { eventSource: 'endpoint:PJSIP' });
    a.close();
  });

  it('accepts recording a bridged channel (201), then fails it: RecordingFailed, nothing stored', async () => {
    // Asterisk 22.10.1: not a 409. The app must take the caller out of its bridge to record it.
    const { ari: a } = await freshApp();
    const phone = await sim.call({ from: 'alice', to: `7${appSeq}` });
    const id = ((await a.next('StasisStart')).channel as { id: string }).id;
    await a.rest('POST', `/channels/${id}/answer`);
    await a.rest('POST', '/bridges/rec-bridge', { type: 'mixing' });
    await a.rest('POST', '/bridges/rec-bridge/addChannel', { channel: id });
    const rec = await a.rest('POST', `/channels/${id}/record`, { name: 'rec-bridged', format: 'wav' });
    expect([rec.status, rec.json]).toEqual([
      201,
      { name: 'rec-bridged', format: 'wav', state: 'queued', target_uri: `channel:${id}` },
    ]);
    expect((await a.next('RecordingFailed')).recording).toEqual({
      name: 'rec-bridged',
      format: 'wav',
      state: 'failed',
      target_uri: `channel:${id}`,
      cause: 'Cannot record channel while in bridge',
    });
    expect(a.events.some((e) => e.type === 'RecordingStarted')).toBe(false);
    expect((await a.rest('GET', '/recordings/stored/rec-bridged')).status).toBe(404);
    // Out of the bridge, the same name records.
    await a.rest('POST', '/bridges/rec-bridge/removeChannel', { channel: id });
    const again = await a.rest('POST', `/channels/${id}/record`, { name: 'rec-bridged', format: 'wav' });
    expect(again.status).toBe(201);
    expect(((await a.next('RecordingStarted')).recording as { name: string }).name).toBe('rec-bridged');
    await a.rest('DELETE', '/recordings/live/rec-bridged');
    await a.rest('DELETE', '/bridges/rec-bridge');
    await phone.hangup();
    a.close();
  });
});

describe('simulator ARI: SIP MESSAGE and subscriptions (scenario h)', () => {
  it('delivers TextMessageReceived only to apps subscribed to the sender endpoint', async () => {
    const a = await rawAri(sim.ariUrl, sim.credentials.ariUser, sim.credentials.ariPassword, 'msgapp');
    // Nobody listens to alice's endpoint and no dialplan handles the text: the phone gets 404.
    expect(await sim.sendText({ from: 'alice', to: '1000', body: 'unheard' })).toBe(404);
    const sub = await a.rest('POST', '/applications/msgapp/subscription', {
      eventSource: 'endpoint:PJSIP/alice',
    });
    expect((sub.json as { endpoint_ids: string[] }).endpoint_ids).toEqual(['PJSIP/alice']);
    expect(await sim.sendText({ from: 'alice', to: '1000', body: 'héllo 👋\nline two' })).toBe(202);
    const msg = await a.next('TextMessageReceived');
    expect(a.events.filter((e) => e.type === 'TextMessageReceived')).toHaveLength(1);
    expect(msg.endpoint).toEqual({
      technology: 'PJSIP',
      resource: 'alice',
      state: 'online',
      channel_ids: [],
    });
    expect(msg.message).toMatchObject({
      from: '"Alice" <sip:alice@127.0.0.1>',
      to: 'pjsip:1000@127.0.0.1',
      body: 'héllo 👋\nline two',
    });

    const unsub = () =>
      a.rest('DELETE', '/applications/msgapp/subscription', { eventSource: 'endpoint:PJSIP/alice' });
    expect((await unsub()).status).toBe(200);
    expect((await unsub()).json).toEqual(ERRORS.notSubscribed.body);
    const unknown = await a.rest('POST', '/applications/msgapp/subscription', {
      eventSource: 'endpoint:PJSIP/nobody',
    });
    expect([unknown.status, unknown.json]).toEqual([ERRORS.noEventSource.status, ERRORS.noEventSource.body]);
    const scheme = await a.rest('POST', '/applications/msgapp/subscription', { eventSource: 'bogus:x' });
    expect([scheme.status, scheme.json]).toEqual([
      ERRORS.badEventSourceScheme.status,
      ERRORS.badEventSourceScheme.body,
    ]);

    const sent = await a.rest('PUT', '/endpoints/sendMessage', {
      to: 'pjsip:bob',
      from: 'sip:1000@127.0.0.1',
      body: 'hi bob',
    });
    expect([sent.status, sent.text]).toEqual([202, '']);
    expect(sim.sentTexts().at(-1)).toMatchObject({
      endpoint: 'bob',
      body: 'hi bob',
      from: 'sip:1000@127.0.0.1',
    });
    const noTo = await a.rest('PUT', '/endpoints/sendMessage', { body: 'x' });
    expect([noTo.status, noTo.json]).toEqual([ERRORS.sendMessageNoTo.status, ERRORS.sendMessageNoTo.body]);
    const nobody = await a.rest('PUT', '/endpoints/PJSIP/nobody/sendMessage', { from: 'x', body: 'x' });
    expect([nobody.status, nobody.json]).toEqual([
      ERRORS.endpointNotFound.status,
      ERRORS.endpointNotFound.body,
    ]);
    a.close();
  });

  it('tells the first websocket of an app that a second one replaced it', async () => {
    const first = await rawAri(sim.ariUrl, sim.credentials.ariUser, sim.credentials.ariPassword, 'dup');
    const second = await rawAri(sim.ariUrl, sim.credentials.ariUser, sim.credentials.ariPassword, 'dup');
    expect((await first.next('ApplicationReplaced')).application).toBe('dup');
    first.close();
    second.close();
  });
});
