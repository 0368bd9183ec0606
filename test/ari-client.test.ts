import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { AriClient } from '../src/asterisk/ari-client.js';
import type { AriEvent } from '../src/asterisk/ari-events.js';
import { isAriEvent, parseAriEvent } from '../src/asterisk/ari-events.js';
import { AriHttp, encodeQuery } from '../src/asterisk/ari-http.js';
import {
  AriConflictError,
  AriEventParseError,
  AriHttpError,
  AriListenerError,
  AriNotFoundError,
  AriStateError,
  AsteriskConnectionError,
  AuthenticationError,
  TimeoutError,
} from '../src/errors.js';
import { Simulator } from '../src/sandbox/simulator.js';
import {
  AriFixture,
  channel,
  connected,
  dtmf,
  envelope,
  nextClientEvent,
  stasisStart,
} from './support/ari-fixture.js';
import { catchError, within } from './support/within.js';

const fixtures: AriFixture[] = [];
const clients: AriClient[] = [];

async function fixture(): Promise<AriFixture> {
  const f = await AriFixture.start();
  fixtures.push(f);
  return f;
}

function client(url: string, extra: Partial<ConstructorParameters<typeof AriClient>[0]> = {}): AriClient {
  const c = new AriClient({ url, username: 'asterisk', password: 's3cret', app: 'test', ...extra });
  clients.push(c);
  return c;
}

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await Promise.all(fixtures.splice(0).map((f) => f.close()));
});

const next = nextClientEvent;

// ---------------------------------------------------------------------------------------------

describe('parseAriEvent', () => {
  it('parses a known event and narrows it by type', () => {
    const parsed = parseAriEvent(JSON.stringify(stasisStart('1.1', ['1000', 'x'])));
    expect(parsed.kind).toBe('known');
    if (parsed.kind !== 'known') return;
    expect(isAriEvent(parsed.event, 'StasisStart')).toBe(true);
    if (parsed.event.type === 'StasisStart') {
      expect(parsed.event.args).toEqual(['1000', 'x']);
      expect(parsed.event.channel.dialplan.app_data).toBe('test,1000');
    }
  });

  it('passes an unknown type through untouched', () => {
    const raw = { ...envelope('BridgeAttendedTransfer'), result: 'Success', extra: { a: 1 } };
    const parsed = parseAriEvent(JSON.stringify(raw));
    expect(parsed).toEqual({ kind: 'unknown', event: raw });
  });

  it('accepts optional fields absent, as Asterisk sends ChannelHangupRequest for a plain BYE', () => {
    const parsed = parseAriEvent(
      JSON.stringify({ ...envelope('ChannelHangupRequest'), channel: channel('1.1') }),
    );
    expect(parsed.kind).toBe('known');
  });

  it.each([
    ['not JSON', '{"type":"StasisStart",'],
    ['null', 'null'],
    ['an array', '[1,2]'],
    ['a string', '"StasisStart"'],
    ['no type', JSON.stringify({ timestamp: 'x', application: 'test' })],
    ['a numeric type', JSON.stringify({ ...envelope('x'), type: 5 })],
    ['no application', JSON.stringify({ type: 'StasisEnd', timestamp: 'x', channel: channel('1.1') })],
    ['a StasisStart without channel', JSON.stringify({ ...envelope('StasisStart'), args: [] })],
    ['a channel without id', JSON.stringify({ ...envelope('StasisEnd'), channel: { name: 'x' } })],
    ['a DTMF digit that is a number', JSON.stringify({ ...dtmf('1.1', '1'), digit: 1 })],
    ['a bad optional replace_channel', JSON.stringify({ ...stasisStart('1.1'), replace_channel: 'x' })],
  ])('reports %s as malformed without throwing', (_what, text) => {
    const parsed = parseAriEvent(text);
    expect(parsed.kind).toBe('malformed');
    if (parsed.kind === 'malformed') {
      expect(parsed.error).toBeInstanceOf(AriEventParseError);
      expect(parsed.error.code).toBe('ARI_EVENT_MALFORMED');
    }
  });
});

describe('AriHttp', () => {
  it('sends Basic credentials per instance, encodes ARI query conventions and JSON bodies', async () => {
    const f = await fixture();
    f.onRequest = () => ({ status: 200, body: '{"ok":true}' });
    const a = new AriHttp({ url: f.url, username: 'userA', password: 'passA' });
    const b = new AriHttp({ url: `${f.url}/ari/`, username: 'userB', password: 'p:w d' });
    await a.request('POST', '/channels/1.2/play', {
      query: { media: ['sound:a', 'sound:b'], lang: 'en', skip: undefined, n: 0, beep: true },
    });
    await b.request('POST', '/channels', {
      query: { callerId: 'Asteramisk <+15551234>', appArgs: 'outbound,second arg' },
      body: { variables: { 'CALLERID(name)': 'X' } },
    });
    const [r1, r2] = f.requests;
    expect(r1?.url).toBe('/ari/channels/1.2/play?media=sound%3Aa%2Csound%3Ab&lang=en&n=0&beep=true');
    expect(r1?.headers.authorization).toBe(`Basic ${Buffer.from('userA:passA').toString('base64')}`);
    expect(r1?.headers['content-type']).toBeUndefined();
    // %20 and %2B: Asterisk decodes '+' as a space, so a literal plus must be escaped.
    expect(r2?.url).toBe(
      '/ari/channels?callerId=Asteramisk%20%3C%2B15551234%3E&appArgs=outbound%2Csecond%20arg',
    );
    expect(r2?.headers.authorization).toBe(`Basic ${Buffer.from('userB:p:w d').toString('base64')}`);
    expect(r2?.headers['content-type']).toBe('application/json');
    expect(JSON.parse(r2?.body ?? '')).toEqual({ variables: { 'CALLERID(name)': 'X' } });
    expect(encodeQuery({})).toBe('');
  });

  it('returns undefined for 204, JSON for JSON and a Buffer for binary bodies', async () => {
    const f = await fixture();
    const wav = Buffer.from('52494646240000005741564566', 'hex');
    f.onRequest = (req) =>
      req.url.endsWith('/answer')
        ? { status: 204 }
        : req.url.endsWith('/file')
          ? { status: 200, body: wav, contentType: 'audio/wav' }
          : { status: 200, body: '{"value":"hello"}' };
    const http = new AriHttp({ url: f.url, username: 'u', password: 'p' });
    expect(await http.request('POST', '/channels/1.1/answer')).toBeUndefined();
    expect(await http.request('GET', '/channels/1.1/variable', { query: { variable: 'X' } })).toEqual({
      value: 'hello',
    });
    const file = await http.request<Buffer>('GET', '/recordings/stored/r/file');
    expect(Buffer.isBuffer(file)).toBe(true);
    expect(file.equals(wav)).toBe(true);
  });

  it.each([
    [404, '{"message":"Channel not found"}', 'application/json', AriNotFoundError, 'Channel not found'],
    [
      409,
      '{"message":"Channel with given unique ID already exists"}',
      'application/json',
      AriConflictError,
      'Channel with given unique ID already exists',
    ],
    [
      422,
      '{"message":"Channel not in Stasis application"}',
      'application/json',
      AriStateError,
      'Channel not in Stasis application',
    ],
    [500, '{"error":"Allocation failed"}', 'application/json', AriHttpError, 'Allocation failed'],
    [503, '{"message":"Asterisk not booted"}', 'application/json', AriHttpError, 'Asterisk not booted'],
    [
      404,
      '<!DOCTYPE HTML PUBLIC "-//IETF//DTD HTML 2.0//EN">\r\n<html><head>\r\n<title>404 Not Found</title>\r\n</head><body>\r\n<h1>Not Found</h1>\r\n<p>The requested URL was not found on this server.</p>\r\n<hr />\r\n<address>Asterisk</address>\r\n</body></html>\r\n',
      'text/html',
      AriNotFoundError,
      'The requested URL was not found on this server.',
    ],
    [400, '', 'application/json', AriHttpError, 'Bad Request'],
  ])('maps %i %s to the typed error', async (status, body, contentType, type, message) => {
    const f = await fixture();
    f.onRequest = () => ({ status, body, contentType });
    const http = new AriHttp({ url: f.url, username: 'u', password: 'p' });
    const error = await catchError(http.request('GET', '/channels/nosuch'));
    expect(error).toBeInstanceOf(type);
    const e = error as AriHttpError;
    expect(e.status).toBe(status);
    expect(e.asteriskMessage).toBe(message);
    expect(e.method).toBe('GET');
    expect(e.path).toBe('/channels/nosuch');
  });

  it('maps 401 to AuthenticationError without leaking the password', async () => {
    const f = await fixture();
    f.onRequest = () => ({ status: 401, body: '{"message":"Authentication required"}' });
    const http = new AriHttp({ url: f.url, username: 'u', password: 'hunter2' });
    const error = await catchError(http.request('GET', '/asterisk/info'));
    expect(error).toBeInstanceOf(AuthenticationError);
    expect((error as AuthenticationError).code).toBe('AUTHENTICATION');
    expect(String((error as Error).message)).not.toContain('hunter2');
    expect(JSON.stringify(http)).not.toContain('hunter2');
  });

  it('times out with TimeoutError', async () => {
    const f = await fixture();
    f.onRequest = () => ({ status: 200, body: '[]', delayMs: 2000 });
    const http = new AriHttp({ url: f.url, username: 'u', password: 'p', requestTimeoutMs: 100 });
    const started = Date.now();
    const error = await catchError(http.request('GET', '/channels'));
    expect(error).toBeInstanceOf(TimeoutError);
    expect(Date.now() - started).toBeLessThan(1500);
  });

  it('maps connection refused to AsteriskConnectionError', async () => {
    const f = await fixture();
    const url = f.url;
    await f.close();
    fixtures.splice(fixtures.indexOf(f), 1);
    const http = new AriHttp({ url, username: 'u', password: 'p' });
    const error = await catchError(http.request('GET', '/asterisk/ping'));
    expect(error).toBeInstanceOf(AsteriskConnectionError);
    expect(error).not.toBeInstanceOf(AuthenticationError);
    expect((error as Error).message).toContain('connection refused');
  });
});

describe('AriClient resources (wire format)', () => {
  it('builds the paths, queries and bodies ARI expects', async () => {
    const f = await fixture();
    f.onRequest = (req) => {
      if (req.url.startsWith('/ari/channels/c%2F1/variable') && req.method === 'GET') {
        return { status: 200, body: '{"value":"v1"}' };
      }
      if (req.url.startsWith('/ari/asterisk/variable') && req.method === 'GET') {
        return { status: 200, body: '{"value":""}' };
      }
      if (req.method === 'GET' && req.url.endsWith('/file')) {
        return { status: 200, body: Buffer.from([1, 2, 3]), contentType: 'audio/wav' };
      }
      return { status: req.method === 'POST' ? 200 : 204, body: req.method === 'POST' ? '{}' : undefined };
    };
    const c = client(f.url);
    await c.channels.play('c/1', ['sound:hello-world', 'digits:12'], { playbackId: 'pb1', lang: 'en' });
    await c.channels.hangup('c/1', { reasonCode: 17 });
    await c.channels.externalMedia({
      externalHost: '127.0.0.1:40000',
      format: 'ulaw',
      variables: { A: 'b' },
    });
    await c.channels.originate({ endpoint: 'PJSIP/bob', appArgs: ['outbound', 'x'], timeout: 10 });
    await c.channels.originate({ endpoint: 'PJSIP/bob', extension: '100', context: 'ctx' });
    await c.channels.record('c/1', { name: 'r1', format: 'wav', beep: true, terminateOn: '#' });
    expect(await c.channels.getVariable('c/1', 'CALLERID(num)')).toBe('v1');
    await c.channels.sendDtmf('c/1', '12#', { between: 100 });
    await c.channels.mute('c/1', 'in');
    await c.bridges.create({ bridgeId: 'my-bridge-1', type: ['mixing', 'dtmf_events'], name: 'n' });
    await c.bridges.create();
    await c.bridges.addChannel('my-bridge-1', ['1.1', '1.2'], { inhibitConnectedLineUpdates: true });
    await c.applications.subscribe('test', ['endpoint:PJSIP/alice', 'endpoint:PJSIP/bob']);
    await c.endpoints.sendMessageToEndpoint('PJSIP', 'bob', { from: 'sip:svc@h', body: 'héllo\nx' });
    await c.events.userEvent('MyEvent', { source: 'channel:1.1', variables: { key1: 'value1' } });
    expect(await c.asterisk.getGlobalVariable('NOPE')).toBe('');
    expect((await c.recordings.getStoredFile('rec 1')).equals(Buffer.from([1, 2, 3]))).toBe(true);
    await c.playbacks.control('pb1', 'pause');

    const lines = f.requests.map((r) => `${r.method} ${r.url}${r.body ? ` ${r.body}` : ''}`);
    expect(lines).toEqual([
      'POST /ari/channels/c%2F1/play?media=sound%3Ahello-world%2Cdigits%3A12&lang=en&playbackId=pb1',
      'DELETE /ari/channels/c%2F1?reason_code=17',
      'POST /ari/channels/externalMedia?app=test&external_host=127.0.0.1%3A40000&format=ulaw {"variables":{"A":"b"}}',
      'POST /ari/channels?endpoint=PJSIP%2Fbob&app=test&appArgs=outbound%2Cx&timeout=10',
      'POST /ari/channels?endpoint=PJSIP%2Fbob&extension=100&context=ctx',
      'POST /ari/channels/c%2F1/record?name=r1&format=wav&beep=true&terminateOn=%23',
      'GET /ari/channels/c%2F1/variable?variable=CALLERID(num)',
      'POST /ari/channels/c%2F1/dtmf?dtmf=12%23&between=100',
      'POST /ari/channels/c%2F1/mute?direction=in',
      'POST /ari/bridges/my-bridge-1?type=mixing%2Cdtmf_events&name=n',
      'POST /ari/bridges',
      'POST /ari/bridges/my-bridge-1/addChannel?channel=1.1%2C1.2&inhibitConnectedLineUpdates=true',
      'POST /ari/applications/test/subscription?eventSource=endpoint%3APJSIP%2Falice%2Cendpoint%3APJSIP%2Fbob',
      'PUT /ari/endpoints/PJSIP/bob/sendMessage?from=sip%3Asvc%40h&body=h%C3%A9llo%0Ax',
      'POST /ari/events/user/MyEvent?application=test&source=channel%3A1.1 {"variables":{"key1":"value1"}}',
      'GET /ari/asterisk/variable?variable=NOPE',
      'GET /ari/recordings/stored/rec%201/file',
      'POST /ari/playbacks/pb1/control?operation=pause',
    ]);
  });
});

describe('AriClient events websocket (fixture)', () => {
  it('connects with a Basic header (no credentials in the URL) and delivers typed events', async () => {
    const f = await fixture();
    const c = client(f.url, { subscribeAll: true });
    await connected(f, c);
    expect(c.connected).toBe(true);
    const upgrade = f.upgrades[0];
    expect(upgrade?.url).toBe('/ari/events?app=test&subscribeAll=true');
    expect(upgrade?.headers.authorization).toBe(`Basic ${Buffer.from('asterisk:s3cret').toString('base64')}`);

    const all: string[] = [];
    c.on('event', (e) => {
      all.push(e.type);
    });
    const started = next(c, 'StasisStart');
    const digit = next(c, 'ChannelDtmfReceived');
    f.send(stasisStart('1.1', ['1000', 'extra']));
    f.send(dtmf('1.1', '#'));
    const [s] = await started;
    expect(s.args).toEqual(['1000', 'extra']);
    expect(s.channel.id).toBe('1.1');
    const [d] = await digit;
    expect(d.digit).toBe('#');
    expect(d.duration_ms).toBe(280);
    expect(all).toEqual(['StasisStart', 'ChannelDtmfReceived']);
    expect([...c.stasisChannelIds]).toEqual(['1.1']);

    const ended = next(c, 'StasisEnd');
    f.send({ ...envelope('StasisEnd'), channel: channel('1.1') });
    await ended;
    expect(c.stasisChannelIds.size).toBe(0);
  });

  it('delivers a frame Asterisk sends twice once (one copy per subscription), a new event again', async () => {
    const f = await fixture();
    const c = client(f.url);
    await connected(f, c);
    const digits: string[] = [];
    c.on('ChannelDtmfReceived', (e) => {
      digits.push(`${e.digit}@${e.timestamp}`);
    });
    const last = new Promise<void>((resolve) =>
      c.on('ChannelDtmfReceived', (e) => e.digit === '#' && resolve()),
    );
    // Asterisk 22: a Stasis channel whose endpoint the app is also subscribed to (endpoint:PJSIP).
    f.send(dtmf('1.1', '1'));
    f.send(dtmf('1.1', '1'));
    f.send({ ...dtmf('1.1', '1'), timestamp: '2026-11-23T09:23:42.351+0000' });
    f.send(dtmf('1.1', '#'));
    await within(last);
    expect(digits).toEqual([
      '1@2026-11-23T09:23:41.951+0000',
      '1@2026-11-23T09:23:42.351+0000',
      '#@2026-11-23T09:23:41.951+0000',
    ]);
    expect(c.duplicateEventsDropped).toBe(1);
  });

  it('reports a malformed frame as an error, drops it and keeps delivering', async () => {
    const f = await fixture();
    const c = client(f.url);
    await connected(f, c);
    const error = next(c, 'error');
    const unknown = next(c, 'unknownEvent');
    const digit = next(c, 'ChannelDtmfReceived');
    f.send('{"type":"StasisStart", oops');
    f.send({ ...envelope('ChannelFutureThing'), x: 1 });
    f.send(dtmf('1.1', '5'));
    const [e] = await error;
    expect(e).toBeInstanceOf(AriEventParseError);
    expect((await unknown)[0].type).toBe('ChannelFutureThing');
    expect((await digit)[0].digit).toBe('5');
  });

  it('survives throwing and rejecting listeners and reports them as errors', async () => {
    const f = await fixture();
    const c = client(f.url);
    await connected(f, c);
    const errors: Error[] = [];
    const seen: string[] = [];
    c.on('ChannelDtmfReceived', () => {
      throw new Error('boom');
    });
    c.on('ChannelDtmfReceived', async () => {
      throw new Error('async boom');
    });
    c.on('ChannelDtmfReceived', (e) => {
      seen.push(e.digit);
    });
    c.on('error', (e) => {
      errors.push(e);
    });
    const second = new Promise<void>((resolve) =>
      c.on('ChannelDtmfReceived', (e) => {
        if (e.digit === '2') resolve();
      }),
    );
    const twoAsyncErrors = new Promise<void>((resolve) => {
      c.on('error', () => {
        if (errors.length === 4) resolve();
      });
    });
    f.send(dtmf('1.1', '1'));
    f.send(dtmf('1.1', '2'));
    await within(second);
    await within(twoAsyncErrors);
    expect(seen).toEqual(['1', '2']);
    expect(errors).toHaveLength(4);
    expect(errors.every((e) => e instanceof AriListenerError)).toBe(true);
    expect(errors.map((e) => (e.cause as Error).message).sort()).toEqual([
      'async boom',
      'async boom',
      'boom',
      'boom',
    ]);
  });

  it('does not crash when an error occurs with no error listener, nor when an error listener throws', async () => {
    const f = await fixture();
    const c = client(f.url);
    await connected(f, c);
    f.send('not json at all');
    c.on('error', () => {
      throw new Error('bad error listener');
    });
    f.send('still not json');
    const digit = next(c, 'ChannelDtmfReceived');
    f.send(dtmf('1.1', '9'));
    expect((await digit)[0].digit).toBe('9');
  });

  it('once() listeners fire once; off() removes', async () => {
    const f = await fixture();
    const c = client(f.url);
    await connected(f, c);
    let onceCount = 0;
    let offCount = 0;
    const off = (): void => {
      offCount++;
    };
    c.once('ChannelDtmfReceived', () => {
      onceCount++;
    });
    c.on('ChannelDtmfReceived', off);
    c.off('ChannelDtmfReceived', off);
    c.once('ChannelDtmfReceived', off);
    c.off('ChannelDtmfReceived', off);
    const third = new Promise<void>((resolve) =>
      c.on('ChannelDtmfReceived', (e) => {
        if (e.digit === '3') resolve();
      }),
    );
    f.send(dtmf('1.1', '1'));
    f.send(dtmf('1.1', '2'));
    f.send(dtmf('1.1', '3'));
    await within(third);
    expect(onceCount).toBe(1);
    expect(offCount).toBe(0);
    expect(c.listenerCount('ChannelDtmfReceived')).toBe(1);
  });

  it('rejects connect() with exactly one AuthenticationError on 401 and stays usable', async () => {
    const f = await fixture();
    f.onUpgrade = () => ({ status: 401, body: '{"message":"Authentication required"}' });
    const c = client(f.url, { password: 'wrong' });
    const errors: Error[] = [];
    c.on('error', (e) => {
      errors.push(e);
    });
    const error = await catchError(c.connect());
    expect(error).toBeInstanceOf(AuthenticationError);
    expect((error as Error).message).not.toContain('wrong');
    expect(f.upgrades).toHaveLength(1);
    expect(errors).toHaveLength(0);
    expect(c.state).toBe('idle');
    // The process and the client live on: a later connect() tries again.
    f.onUpgrade = () => 'accept';
    await c.connect();
    expect(c.connected).toBe(true);
  });

  it('rejects connect() with AsteriskConnectionError when refused, 503 or HTML 404', async () => {
    const f = await fixture();
    f.onUpgrade = () => ({ status: 503, body: '{"message":"Asterisk not booted"}' });
    const c = client(f.url);
    const e503 = await catchError(c.connect());
    expect(e503).toBeInstanceOf(AsteriskConnectionError);
    expect(e503).not.toBeInstanceOf(AuthenticationError);
    expect((e503 as Error).message).toContain('Asterisk not booted');
    expect(((e503 as Error).cause as AriHttpError).status).toBe(503);

    f.onUpgrade = () => ({
      status: 404,
      contentType: 'text/html',
      body: '<html><head><title>404 Not Found</title></head><body><p>The requested URL was not found on this server.</p></body></html>',
    });
    const e404 = await catchError(c.connect());
    expect((e404 as Error).message).toContain('The requested URL was not found on this server.');

    const url = f.url;
    await f.close();
    fixtures.splice(fixtures.indexOf(f), 1);
    const refused = await catchError(client(url).connect());
    expect(refused).toBeInstanceOf(AsteriskConnectionError);
    expect((refused as Error).message).toContain('ECONNREFUSED');
  });

  it('gives up a handshake that gets no answer within connectTimeoutMs', async () => {
    const f = await fixture();
    f.onUpgrade = () => 'hang';
    const c = client(f.url, { connectTimeoutMs: 200 });
    const started = Date.now();
    const error = await catchError(within(c.connect(), 3000, 'connect() to fail'));
    expect(error).toBeInstanceOf(AsteriskConnectionError);
    expect(Date.now() - started).toBeLessThan(2000);
    expect(c.state).toBe('idle');
  });

  it('close() during connect() aborts it', async () => {
    const f = await fixture();
    f.onUpgrade = () => 'hang';
    const c = client(f.url);
    const connecting = catchError(c.connect());
    await c.close();
    expect(await within(connecting, 3000, 'connect() to fail')).toBeInstanceOf(AsteriskConnectionError);
    expect(c.state).toBe('closed');
    // A connect() right after close() starts afresh and is not disturbed by the aborted one.
    const again = client(f.url);
    const aborted = catchError(again.connect());
    const closing = again.close();
    f.onUpgrade = () => 'accept';
    const fresh = again.connect();
    await closing;
    expect(await within(aborted, 3000, 'the aborted connect()')).toBeInstanceOf(AsteriskConnectionError);
    await within(fresh, 3000, 'a fresh connect()');
    expect(again.connected).toBe(true);
  });

  it('close() is idempotent and closes the socket', async () => {
    const f = await fixture();
    const c = client(f.url);
    const socket = f.nextSocket();
    await c.connect();
    const ws = await within(socket);
    const closed = once(ws, 'close');
    await c.close();
    await c.close();
    const [code] = await within(closed);
    expect(code).toBe(1000);
    expect(c.state).toBe('closed');
    expect(f.sockets.size).toBe(0);
  });

  it('keeps credentials per instance: two clients, two servers, two passwords', async () => {
    const f1 = await fixture();
    const f2 = await fixture();
    f1.onUpgrade = (req) =>
      req.headers.authorization === `Basic ${Buffer.from('u1:p1').toString('base64')}`
        ? 'accept'
        : { status: 401, body: '{"message":"Authentication required"}' };
    f2.onUpgrade = (req) =>
      req.headers.authorization === `Basic ${Buffer.from('u2:p2').toString('base64')}`
        ? 'accept'
        : { status: 401, body: '{"message":"Authentication required"}' };
    const c1 = client(f1.url, { username: 'u1', password: 'p1', app: 'a1' });
    const c2 = client(f2.url, { username: 'u2', password: 'p2', app: 'a2' });
    await Promise.all([c1.connect(), c2.connect()]);
    const crossed = client(f2.url, { username: 'u1', password: 'p1', app: 'a3' });
    expect(await catchError(crossed.connect())).toBeInstanceOf(AuthenticationError);
    expect(f1.upgrades[0]?.url).toBe('/ari/events?app=a1');
    expect(f2.upgrades[0]?.url).toBe('/ari/events?app=a2');
  });
});

// ---------------------------------------------------------------------------------------------
// Against the simulated Asterisk 22 (src/sandbox): real sockets, real protocol.
// ---------------------------------------------------------------------------------------------

describe('AriClient against the simulator', () => {
  const sims: Simulator[] = [];
  let appCounter = 0;
  /** 'error' emissions of the connected clients: every frame the simulator sends must parse. */
  let clientErrors: Error[] = [];

  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()));
    await Promise.all(sims.splice(0).map((s) => s.close()));
    const errors = clientErrors;
    clientErrors = [];
    expect(errors).toEqual([]);
  });

  async function startSim(options: Parameters<typeof Simulator.start>[0] = {}): Promise<Simulator> {
    const sim = await Simulator.start({ callContext: 'from-sip', ...options });
    sims.push(sim);
    return sim;
  }

  /** A connected client for a fresh app whose extension `exten` enters Stasis with args [exten]. */
  async function appOn(sim: Simulator, exten = '1000'): Promise<AriClient> {
    const app = `app${++appCounter}`;
    sim.addExtension('from-sip', exten, 1, 'Stasis', `${app},${exten}`);
    const c = client(sim.ariUrl, {
      app,
      username: sim.credentials.ariUser,
      password: sim.credentials.ariPassword,
    });
    c.on('error', (e) => {
      clientErrors.push(e);
    });
    await c.connect();
    return c;
  }

  /** Collects every event of the client, in order. */
  function record(c: AriClient): AriEvent[] {
    const events: AriEvent[] = [];
    c.on('event', (e) => {
      events.push(e);
    });
    return events;
  }

  /**
   * A barrier: a user event sent over REST comes back on the same websocket after every event
   * Asterisk queued before it, so once it arrives nothing older is still in flight.
   */
  async function barrier(c: AriClient, channelId: string): Promise<void> {
    const name = `barrier${Math.random().toString(36).slice(2)}`;
    const seen = next(c, 'ChannelUserevent');
    await c.events.userEvent(name, { source: `channel:${channelId}` });
    const [e] = await seen;
    expect(e.eventname).toBe(name);
  }

  it('connects, gets StasisStart with the Stasis() args, answers and plays to the end', async () => {
    const sim = await startSim();
    const c = await appOn(sim);
    expect(c.connected).toBe(true);
    const events = record(c);
    const started = next(c, 'StasisStart');
    const phone = await sim.call({ from: 'alice', to: '1000' });
    const [start] = await started;
    expect(start.args).toEqual(['1000']);
    expect(start.application).toBe(c.app);
    expect(start.channel.id).toBe(phone.channelId);
    expect(start.channel.caller.number).toBe('alice');
    expect(start.channel.dialplan).toMatchObject({ context: 'from-sip', exten: '1000', app_name: 'Stasis' });
    expect(c.stasisChannelIds.has(phone.channelId)).toBe(true);

    const up = next(c, 'ChannelStateChange');
    await c.channels.answer(phone.channelId);
    expect((await up)[0].channel.state).toBe('Up');

    const playbackStarted = next(c, 'PlaybackStarted');
    const playbackFinished = next(c, 'PlaybackFinished', 8000);
    const playback = await c.channels.play(phone.channelId, 'sound:hello-world');
    expect(playback.media_uri).toBe('sound:hello-world');
    expect(playback.target_uri).toBe(`channel:${phone.channelId}`);
    expect(['queued', 'playing']).toContain(playback.state);
    const [s] = await playbackStarted;
    expect(s.playback.id).toBe(playback.id);
    const [f] = await playbackFinished;
    expect(f.playback.id).toBe(playback.id);
    expect(f.playback.state).toBe('done');
    expect(phone.heard().media).toContain('sound:hello-world');
    const types = events.map((e) => e.type);
    expect(types.indexOf('PlaybackStarted')).toBeLessThan(types.indexOf('PlaybackFinished'));

    const channels = await c.channels.list();
    expect(channels.map((ch) => ch.id)).toContain(phone.channelId);
    const got = await c.channels.get(phone.channelId);
    expect(got.state).toBe('Up');
  });

  it("delivers DTMF '12#' as three events, in order, each exactly once", async () => {
    const sim = await startSim();
    const c = await appOn(sim);
    const started = next(c, 'StasisStart');
    const phone = await sim.call({ from: 'alice', to: '1000' });
    await started;
    await c.channels.answer(phone.channelId);
    const digits: string[] = [];
    c.on('ChannelDtmfReceived', (e) => {
      if (e.channel.id === phone.channelId) digits.push(e.digit);
    });
    const viaEvent: string[] = [];
    c.on('event', (e) => {
      if (e.type === 'ChannelDtmfReceived') viaEvent.push(e.digit);
    });
    const hash = new Promise<void>((resolve) =>
      c.on('ChannelDtmfReceived', (e) => e.digit === '#' && resolve()),
    );
    await phone.press('12#');
    await within(hash, 5000, "DTMF '#'");
    await barrier(c, phone.channelId);
    expect(digits).toEqual(['1', '2', '#']);
    expect(viaEvent).toEqual(['1', '2', '#']);
  });

  it('delivers each key once to an app also subscribed to the caller’s endpoint (Asterisk sends two copies)', async () => {
    const sim = await startSim();
    const c = await appOn(sim);
    await c.applications.subscribe(c.app, 'endpoint:PJSIP');
    const started = next(c, 'StasisStart');
    const phone = await sim.call({ from: 'alice', to: '1000' });
    await started;
    await c.channels.answer(phone.channelId);
    const digits: string[] = [];
    c.on('ChannelDtmfReceived', (e) => {
      digits.push(e.digit);
    });
    await phone.press('11#');
    await barrier(c, phone.channelId);
    expect(digits).toEqual(['1', '1', '#']);
    expect(c.duplicateEventsDropped).toBeGreaterThanOrEqual(3);
  });

  it('sets and gets channel variables; an unset variable is a 404', async () => {
    const sim = await startSim();
    const c = await appOn(sim);
    const started = next(c, 'StasisStart');
    const phone = await sim.call({ from: 'alice', to: '1000' });
    await started;
    await c.channels.setVariable(phone.channelId, 'MY_VAR', 'hello world');
    expect(await c.channels.getVariable(phone.channelId, 'MY_VAR')).toBe('hello world');
    const error = await catchError(c.channels.getVariable(phone.channelId, 'NOSUCHVAR'));
    expect(error).toBeInstanceOf(AriNotFoundError);
    expect((error as AriNotFoundError).asteriskMessage).toBe('Provided variable was not found');
  });

  it("maps a request on a hung-up channel to AriNotFoundError with Asterisk's message", async () => {
    const sim = await startSim();
    const c = await appOn(sim);
    const started = next(c, 'StasisStart');
    const phone = await sim.call({ from: 'alice', to: '1000' });
    await started;
    const ended = next(c, 'StasisEnd');
    await phone.hangup();
    expect((await ended)[0].channel.id).toBe(phone.channelId);
    expect(c.stasisChannelIds.size).toBe(0);
    for (const op of [
      () => c.channels.answer(phone.channelId),
      () => c.channels.play(phone.channelId, 'sound:hello-world'),
      () => c.channels.get(phone.channelId),
      () => c.channels.hangup(phone.channelId),
    ]) {
      const error = await catchError(op());
      expect(error).toBeInstanceOf(AriNotFoundError);
      expect((error as AriNotFoundError).status).toBe(404);
      expect((error as AriNotFoundError).asteriskMessage).toBe('Channel not found');
    }
  });

  it('rejects a wrong password with exactly one AuthenticationError, and the process lives on', async () => {
    const sim = await startSim();
    const c = client(sim.ariUrl, {
      app: 'wrongpw',
      username: sim.credentials.ariUser,
      password: 'not-the-password',
    });
    const errors: Error[] = [];
    c.on('error', (e) => {
      errors.push(e);
    });
    const error = await catchError(c.connect());
    expect(error).toBeInstanceOf(AuthenticationError);
    expect(errors).toEqual([]);
    expect(c.connected).toBe(false);
    expect(await catchError(c.asterisk.info())).toBeInstanceOf(AuthenticationError);
    // The app was never registered, and the simulator still serves good clients.
    const good = await appOn(sim);
    expect((await good.applications.list()).map((a) => a.name)).toEqual([good.app]);
  });

  it('reads server info, endpoints and applications; subscribes and unsubscribes an endpoint', async () => {
    const sim = await startSim();
    const c = await appOn(sim);
    const info = await c.asterisk.info();
    expect(info.system?.version).toMatch(/^22\./);
    expect((await c.asterisk.ping()).ping).toBe('pong');
    const endpoints = await c.endpoints.list();
    expect(endpoints.map((e) => `${e.technology}/${e.resource}`)).toContain('PJSIP/alice');
    expect((await c.endpoints.get('PJSIP', 'alice')).resource).toBe('alice');
    expect(await catchError(c.endpoints.get('PJSIP', 'nobody'))).toBeInstanceOf(AriNotFoundError);
    const subscribed = await c.applications.subscribe(c.app, 'endpoint:PJSIP/alice');
    expect(subscribed.endpoint_ids).toContain('PJSIP/alice');
    const unsubscribed = await c.applications.unsubscribe(c.app, 'endpoint:PJSIP/alice');
    expect(unsubscribed.endpoint_ids).not.toContain('PJSIP/alice');
    expect(await catchError(c.applications.unsubscribe(c.app, 'endpoint:PJSIP/alice'))).toBeInstanceOf(
      AriStateError,
    );
    await c.asterisk.setGlobalVariable('ASTERAMISK_TEST', 'g1');
    expect(await c.asterisk.getGlobalVariable('ASTERAMISK_TEST')).toBe('g1');
  });

  it('bridges a call and reports a duplicate bridge id as AriConflictError', async () => {
    const sim = await startSim();
    const c = await appOn(sim);
    const started = next(c, 'StasisStart');
    const phone = await sim.call({ from: 'alice', to: '1000' });
    await started;
    await c.channels.answer(phone.channelId);
    const bridge = await c.bridges.create({ type: 'mixing', bridgeId: 'b-1', name: 'test' });
    expect(bridge).toMatchObject({ id: 'b-1', bridge_type: 'mixing', channels: [] });
    expect(await catchError(c.bridges.create({ bridgeId: 'b-1' }))).toBeInstanceOf(AriConflictError);
    const entered = next(c, 'ChannelEnteredBridge');
    await c.bridges.addChannel('b-1', phone.channelId);
    expect((await entered)[0].bridge.id).toBe('b-1');
    expect((await c.bridges.get('b-1')).channels).toEqual([phone.channelId]);
    await c.bridges.removeChannel('b-1', phone.channelId);
    expect(await catchError(c.bridges.removeChannel('b-1', phone.channelId))).toBeInstanceOf(AriStateError);
    await c.bridges.destroy('b-1');
    expect(await catchError(c.bridges.get('b-1'))).toBeInstanceOf(AriNotFoundError);
  });

  it('runs two clients against two simulators with different credentials in one process', async () => {
    const simA = await startSim({ ariUser: 'userA', ariPassword: 'passA' });
    const simB = await startSim({ ariUser: 'userB', ariPassword: 'passB' });
    const a = await appOn(simA, '1000');
    const b = await appOn(simB, '2000');
    const eventsA = record(a);
    const eventsB = record(b);
    const startA = next(a, 'StasisStart');
    const startB = next(b, 'StasisStart');
    const phoneA = await simA.call({ from: 'alice', to: '1000' });
    const phoneB = await simB.call({ from: 'bob', to: '2000' });
    expect((await startA)[0].args).toEqual(['1000']);
    expect((await startB)[0].args).toEqual(['2000']);
    await Promise.all([a.channels.answer(phoneA.channelId), b.channels.answer(phoneB.channelId)]);
    await Promise.all([barrier(a, phoneA.channelId), barrier(b, phoneB.channelId)]);
    const ids = (events: AriEvent[]) =>
      new Set(events.flatMap((e) => ('channel' in e && e.channel ? [e.channel.id] : [])));
    expect([...ids(eventsA)]).toEqual([phoneA.channelId]);
    expect([...ids(eventsB)]).toEqual([phoneB.channelId]);
    // Each client's credentials only work on its own server.
    const crossed = client(simB.ariUrl, { app: 'crossed', username: 'userA', password: 'passA' });
    expect(await catchError(crossed.connect())).toBeInstanceOf(AuthenticationError);
  });
});
