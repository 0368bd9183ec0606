import { afterEach, describe, expect, it } from 'vitest';
import { ariRouteTemplate } from '../src/metrics.js';
import { deferred, nextServerEvent, startVoiceHarness, type VoiceHarness } from './support/voice-harness.js';

let h: VoiceHarness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

function tone(ms: number): Int16Array {
  return Int16Array.from({ length: ms * 8 }, (_, i) =>
    Math.round(9000 * Math.sin((2 * Math.PI * 350 * i) / 8000)),
  );
}

/** The samples of a Prometheus text exposition, by `name{labels}` as written. */
function parse(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    samples.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return samples;
}

async function scrape(url: string): Promise<{ text: string; samples: Map<string, number> }> {
  const response = await fetch(url);
  expect(response.status).toBe(200);
  expect(response.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  const text = await response.text();
  return { text, samples: parse(text) };
}

/** The value of one sample; fails the test when it is missing. */
function value(samples: Map<string, number>, key: string): number {
  const v = samples.get(key);
  if (v === undefined) throw new Error(`no sample ${key}`);
  return v;
}

describe('ariRouteTemplate', () => {
  it('keeps words and replaces ids', () => {
    expect(ariRouteTemplate('/channels/1733.42/play')).toBe('/channels/:id/play');
    expect(ariRouteTemplate('/channels/1733.42')).toBe('/channels/:id');
    expect(ariRouteTemplate('/channels/externalMedia')).toBe('/channels/externalMedia');
    expect(ariRouteTemplate('/channels/create')).toBe('/channels/create');
    expect(ariRouteTemplate('/channels/abc/snoop/xyz-1')).toBe('/channels/:id/snoop/:id');
    expect(ariRouteTemplate('/bridges/b-1/addChannel')).toBe('/bridges/:id/addChannel');
    expect(ariRouteTemplate('/playbacks/p1/control')).toBe('/playbacks/:id/control');
    expect(ariRouteTemplate('/recordings/stored/msg-7/file')).toBe('/recordings/stored/:name/file');
    expect(ariRouteTemplate('/recordings/live/msg')).toBe('/recordings/live/:name');
    expect(ariRouteTemplate('/endpoints/sendMessage')).toBe('/endpoints/sendMessage');
    expect(ariRouteTemplate('/endpoints/PJSIP/alice/sendMessage')).toBe(
      '/endpoints/:tech/:resource/sendMessage',
    );
    expect(ariRouteTemplate('/applications/my-app/subscription')).toBe('/applications/:id/subscription');
    expect(ariRouteTemplate('/asterisk/info')).toBe('/asterisk/info');
    expect(ariRouteTemplate('/asterisk/modules/res_ari.so')).toBe('/asterisk/modules/:name');
    expect(ariRouteTemplate('/events/user/MyEvent')).toBe('/events/user/:name');
  });
});

describe('Prometheus metrics endpoint', () => {
  it('counts a call with say and gather, a text and a declined call; stops on close', async () => {
    h = await startVoiceHarness({
      msPerChar: 20,
      server: { metrics: { port: 0, host: '127.0.0.1' }, textRateLimit: { messages: 1000, perMs: 1000 } },
    });
    const server = h.server;
    const url = server.metricsUrl ?? '';
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);

    // Before any call: zeroes, and health.
    const before = await scrape(url);
    expect(before.text).toContain('# HELP asteramisk_calls_started_total ');
    expect(before.text).toContain('# TYPE asteramisk_verb_duration_seconds histogram');
    expect(value(before.samples, 'asteramisk_calls_started_total')).toBe(0);
    expect(value(before.samples, 'asteramisk_calls_active')).toBe(0);
    expect(value(before.samples, 'asteramisk_ready')).toBe(1);
    expect(before.text).toContain('# TYPE asteramisk_tts_synthesis_seconds histogram');
    expect(value(before.samples, 'asteramisk_tts_synthesis_seconds_count{outcome="ok"}')).toBe(0);

    const gathered = deferred<string>();
    const inCall = deferred<void>();
    const releaseCall = deferred<void>();
    const textDone = deferred<void>();
    await server.registerExtension('1000', {
      voice: async (ui) => {
        await ui.answer();
        await ui.say('Welcome.');
        gathered.resolve(await ui.gather('Enter two digits.', { numDigits: 2 }));
        inCall.resolve();
        await releaseCall.promise;
        await ui.say('Goodbye.');
      },
      text: async (ui) => {
        await ui.say(`You said ${ui.firstMessage}`);
        textDone.resolve();
      },
    });

    const ended = nextServerEvent(server, 'callEnded');
    const phone = await h.sim.call({ from: 'alice', to: '1000' });
    await phone.waitForAudio(5);
    await phone.speak(tone(200));
    await phone.press('42');
    expect(await gathered.promise).toBe('42');
    await inCall.promise;

    const during = await scrape(url);
    expect(value(during.samples, 'asteramisk_calls_active')).toBe(1);
    expect(value(during.samples, 'asteramisk_calls_started_total')).toBe(1);

    releaseCall.resolve();
    const [, outcome] = await ended;
    expect(outcome.error).toBeUndefined();

    // A text to the number, and a call to a number nobody serves.
    const reply = h.sim.nextSentText((t) => t.toUser === 'bob');
    expect(await h.sim.sendText({ from: 'bob', to: '1000', body: 'hi' })).toBe(202);
    expect((await reply).body).toBe('You said hi');
    await textDone.promise;
    h.sim.addExtension('asteramisk-call', '4040', 1, 'Stasis', `${server.appName},call`);
    const declined = nextServerEvent(server, 'callDeclined');
    await h.sim.call({ from: 'carol', to: '4040' });
    await declined;
    const textDeclined = nextServerEvent(server, 'textDeclined');
    await h.sim.sendText({ from: 'bob', to: '4040', body: 'anyone?' });
    await textDeclined;

    const after = await scrape(url);
    const s = after.samples;
    expect(value(s, 'asteramisk_calls_active')).toBe(0);
    expect(value(s, 'asteramisk_calls_started_total')).toBe(1);
    expect(value(s, 'asteramisk_calls_ended_total{outcome="ok"}')).toBe(1);
    expect(value(s, 'asteramisk_calls_declined_total{reason="no handler for this number"}')).toBe(1);
    expect(value(s, 'asteramisk_handler_errors_total{kind="voice"}')).toBe(0);
    expect(value(s, 'asteramisk_handler_errors_total{kind="text"}')).toBe(0);
    expect(value(s, 'asteramisk_verb_duration_seconds_count{verb="say",outcome="ok"}')).toBe(2);
    expect(value(s, 'asteramisk_verb_duration_seconds_count{verb="gather",outcome="ok"}')).toBe(1);
    expect(value(s, 'asteramisk_verb_duration_seconds_sum{verb="say",outcome="ok"}')).toBeGreaterThan(0);
    expect(value(s, 'asteramisk_verb_duration_seconds_bucket{le="+Inf",verb="say",outcome="ok"}')).toBe(2);
    expect(value(s, 'asteramisk_texts_received_total')).toBe(2);
    expect(value(s, 'asteramisk_texts_declined_total{reason="no text handler for this number"}')).toBe(1);
    expect(value(s, 'asteramisk_texts_sent_total')).toBe(1);
    expect(value(s, 'asteramisk_texts_queued')).toBe(0);
    // Welcome., Enter two digits., Goodbye.: three syntheses (the text reply is not spoken).
    expect(value(s, 'asteramisk_tts_cache_misses_total')).toBe(3);
    expect(value(s, 'asteramisk_tts_cache_hits_total')).toBe(0);
    expect(value(s, 'asteramisk_tts_syntheses_total')).toBe(3);
    // One histogram observation per engine call, in real buckets.
    expect(value(s, 'asteramisk_tts_synthesis_seconds_count{outcome="ok"}')).toBe(3);
    expect(value(s, 'asteramisk_tts_synthesis_seconds_bucket{le="+Inf",outcome="ok"}')).toBe(3);
    expect(value(s, 'asteramisk_tts_synthesis_seconds_bucket{le="30",outcome="ok"}')).toBe(3);
    const synthSum = value(s, 'asteramisk_tts_synthesis_seconds_sum{outcome="ok"}');
    expect(synthSum).toBeGreaterThanOrEqual(0);
    expect(synthSum).toBeLessThan(5); // the offline engine answers at once
    expect(s.has('asteramisk_tts_synthesis_seconds_count{outcome="error"}')).toBe(false);
    expect(value(s, 'asteramisk_rtp_packets_total{direction="out"}')).toBeGreaterThan(10);
    expect(value(s, 'asteramisk_rtp_packets_total{direction="in"}')).toBeGreaterThan(5);
    expect(s.has('asteramisk_rtp_packets_lost_total')).toBe(true);
    expect(s.has('asteramisk_rtp_packets_late_total')).toBe(true);
    expect(value(s, 'asteramisk_pacer_lateness_seconds_count')).toBeGreaterThan(0);
    expect(value(s, 'asteramisk_reconnects_total{connection="ari"}')).toBe(0);
    expect(value(s, 'asteramisk_reconnects_total{connection="ami"}')).toBe(0);
    expect(value(s, 'asteramisk_agent_barge_ins_total')).toBe(0);
    expect(value(s, 'asteramisk_ready')).toBe(1);
    expect(value(s, 'asteramisk_connection_up{connection="ari"}')).toBe(1);
    // ARI requests by route template: never a raw channel id.
    expect(
      value(
        s,
        'asteramisk_ari_request_duration_seconds_count{method="POST",route="/channels/:id/answer",status="204"}',
      ),
    ).toBe(1);
    expect(
      value(
        s,
        'asteramisk_ari_request_duration_seconds_count{method="POST",route="/channels/externalMedia",status="200"}',
      ),
    ).toBe(1);
    const routes = [...after.text.matchAll(/route="([^"]*)"/g)].map((m) => m[1]);
    expect(routes.length).toBeGreaterThan(0);
    for (const route of routes) expect(route).toMatch(/^(\/[A-Za-z_]+|\/:[a-z]+)*$/);

    // 404 for anything else.
    expect((await fetch(url.replace('/metrics', '/other'))).status).toBe(404);

    await server.close();
    await expect(fetch(url)).rejects.toThrow();
  });

  it('times each TTS engine call in the synthesis histogram; cache hits are not observed', async () => {
    const { OfflineTtsEngine } = await import('../src/tts/offline-tts-engine.js');
    const { SpeechEngineError } = await import('../src/errors.js');
    const offline = new OfflineTtsEngine({ msPerChar: 20 });
    // 60 ms per synthesis, and a failure for one prompt.
    const tts = {
      name: 'slow-offline',
      async synthesize(text: string): Promise<Int16Array> {
        await new Promise((resolve) => setTimeout(resolve, 60));
        if (text.startsWith('Broken')) throw new SpeechEngineError('slow-offline', 'scripted failure');
        return offline.synthesize(text);
      },
    };
    h = await startVoiceHarness({ server: { tts, metrics: { port: 0, host: '127.0.0.1' } } });
    const server = h.server;
    const sayError = deferred<unknown>();
    await server.registerExtension('1000', {
      voice: async (ui) => {
        await ui.answer();
        await ui.say('Slow.');
        await ui.say('Slow.'); // from the cache
        sayError.resolve(await ui.say('Broken.').catch((error: unknown) => error));
      },
    });
    const ended = nextServerEvent(server, 'callEnded');
    await h.sim.call({ from: 'alice', to: '1000' });
    expect(await sayError.promise).toBeInstanceOf(SpeechEngineError);
    await ended;

    const s = (await scrape(server.metricsUrl ?? '')).samples;
    expect(value(s, 'asteramisk_tts_cache_hits_total')).toBe(1);
    expect(value(s, 'asteramisk_tts_syntheses_total')).toBe(2);
    expect(value(s, 'asteramisk_tts_synthesis_seconds_count{outcome="ok"}')).toBe(1);
    expect(value(s, 'asteramisk_tts_synthesis_seconds_count{outcome="error"}')).toBe(1);
    // The 60 ms synthesis lands above the 50 ms bucket, and the sum says so.
    expect(value(s, 'asteramisk_tts_synthesis_seconds_bucket{le="0.05",outcome="ok"}')).toBe(0);
    expect(value(s, 'asteramisk_tts_synthesis_seconds_bucket{le="+Inf",outcome="ok"}')).toBe(1);
    const sum = value(s, 'asteramisk_tts_synthesis_seconds_sum{outcome="ok"}');
    expect(sum).toBeGreaterThanOrEqual(0.055);
    expect(sum).toBeLessThan(5);
    expect(value(s, 'asteramisk_tts_synthesis_seconds_sum{outcome="error"}')).toBeGreaterThanOrEqual(0.055);
  });

  it('counts a failing handler, and gives each Server its own registry', async () => {
    h = await startVoiceHarness({ server: { metrics: { port: 0, host: '127.0.0.1' } } });
    const first = h.server;
    await first.registerExtension('1000', {
      voice: async () => {
        throw new Error('handler bug');
      },
    });
    const ended = nextServerEvent(first, 'callEnded');
    await h.sim.call({ from: 'alice', to: '1000' });
    await ended;
    const { Server } = await import('../src/server.js');
    const { silentLogger } = await import('../src/logger.js');
    const second = await Server.create({
      ...h.sim.connectionOptions(),
      appName: 'second-metrics',
      logger: silentLogger,
      tts: false,
      stt: false,
      ttsCacheDirectory: false,
      metrics: { port: 0, host: '127.0.0.1' },
    });
    try {
      expect(second.metricsUrl).not.toBe(first.metricsUrl);
      const firstSamples = (await scrape(first.metricsUrl ?? '')).samples;
      expect(value(firstSamples, 'asteramisk_calls_started_total')).toBe(1);
      expect(value(firstSamples, 'asteramisk_calls_ended_total{outcome="error"}')).toBe(1);
      expect(value(firstSamples, 'asteramisk_handler_errors_total{kind="voice"}')).toBe(1);
      expect(value((await scrape(second.metricsUrl ?? '')).samples, 'asteramisk_calls_started_total')).toBe(
        0,
      );
    } finally {
      await second.close();
    }
  });
});
