/**
 * The Prometheus endpoint of a Server (`metrics: { port }`): prom-client metrics in a Registry of
 * the Server's own (never prom-client's global one, so two Servers in one process, or tests, do
 * not collide), served by a small HTTP server at `GET /metrics`.
 *
 * Hot paths stay cheap: nothing is updated per audio frame. RTP counters are added once per call
 * when its media closes; the pacer, the TTS cache, active calls, queued texts and health are read
 * when Prometheus scrapes (collectors); the rest is one update per verb, request, call, text or TTS
 * engine call (cache hits cost nothing).
 */

import { createServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { AgentEvent } from './agent/agent-options.js';
import { HangupError } from './errors.js';
import type { Logger } from './logger.js';
import { Pacer } from './media/pacer.js';
import type { RtpSessionStats } from './media/rtp-session.js';
import type { Runtime, RuntimeObserver } from './runtime.js';
import type { Server } from './server.js';
import { CachedTts } from './tts/tts-cache.js';
import type { VerbOutcome, VoiceUI } from './ui/voice-ui.js';

/** Options of the metrics endpoint ({@link ServerOptions.metrics}). */
export interface MetricsOptions {
  /** TCP port of the endpoint; 0 picks a free one (see {@link Server.metricsUrl}). */
  port: number;
  /** Address to listen on. Default `0.0.0.0` (every interface); use `127.0.0.1` to keep it local. */
  host?: string;
}

/** Latency buckets (seconds) for ARI requests: 1 ms to 10 s. */
const REQUEST_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10];
/** Verb duration buckets (seconds): 50 ms to 10 minutes. */
const VERB_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600];
/** Agent turn latency buckets (seconds). */
const TURN_BUCKETS = [0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10];
/** TTS synthesis time buckets (seconds): 10 ms (a local engine, a short prompt) to 30 s. */
const SYNTHESIS_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30];
/** Pacer tick lateness buckets (seconds): 1 ms to 200 ms. */
const PACER_BUCKETS = [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2];

/** Path segments after a resource's id that are words (`answer`, `play`, `externalMedia`). */
const WORD = /^[a-z][A-Za-z_]*$/;
/** Resources whose first segment after the name is an id unless it is one of these words. */
const ID_RESOURCES: Readonly<Record<string, readonly string[]>> = {
  channels: ['create', 'externalMedia'],
  bridges: [],
  playbacks: [],
  applications: [],
  deviceStates: [],
  mailboxes: [],
};

/**
 * The route template of an ARI path, for a label with bounded values: ids become `:id` (or
 * `:name`, `:tech`, `:resource`), words stay. `/channels/1733.42/play` → `/channels/:id/play`.
 */
export function ariRouteTemplate(path: string): string {
  const parts = path.split('?')[0]?.split('/').filter(Boolean) ?? [];
  const [resource, ...rest] = parts;
  if (!resource) return '/';
  if (!WORD.test(resource)) return '/:other';
  const out = [resource];
  const words = ID_RESOURCES[resource];
  rest.forEach((part, i) => {
    let keep = WORD.test(part);
    if (words && i === 0) keep = words.includes(part);
    else if (resource === 'recordings' && i === 1) keep = false;
    else if (resource === 'endpoints' && i < 2) keep = part === 'sendMessage';
    else if ((resource === 'asterisk' || resource === 'events') && i === 1) keep = false;
    if (keep) out.push(part);
    else if (resource === 'endpoints') out.push(i === 0 ? ':tech' : ':resource');
    else if (resource === 'recordings' || resource === 'asterisk' || resource === 'events') out.push(':name');
    else out.push(':id');
  });
  return `/${out.join('/')}`;
}

/** The label of a call's outcome. */
function callOutcome(error: unknown): 'ok' | 'hangup' | 'error' {
  if (error === undefined) return 'ok';
  return error instanceof HangupError ? 'hangup' : 'error';
}

/**
 * A Server's metrics and their HTTP endpoint.
 *
 * @internal Created by the Server when `metrics` is set.
 */
export class ServerMetrics {
  readonly registry = new Registry();
  private readonly http: HttpServer;
  private readonly detach: (() => void)[] = [];
  private readonly logger: Logger;

  private readonly callsStarted: Counter<never>;
  private readonly callsEnded: Counter<'outcome'>;
  private readonly callsDeclined: Counter<'reason'>;
  /** Voice handlers that threw (text ones are counted by the conversations). */
  private voiceHandlerErrors = 0;
  private readonly verbSeconds: Histogram<'verb' | 'outcome'>;
  private readonly ariSeconds: Histogram<'method' | 'route' | 'status'>;
  private readonly reconnects: Counter<'connection'>;
  private readonly rtpPackets: Counter<'direction'>;
  private readonly rtpLost: Counter<never>;
  private readonly rtpLate: Counter<never>;
  private readonly rtpDropped: Counter<never>;
  private readonly pacerLateness: Histogram<never>;
  private readonly synthesisSeconds: Histogram<'outcome'>;
  private readonly turnLatency: Histogram<never>;
  private readonly bargeIns: Counter<never>;
  private readonly textsIn: Counter<never>;
  private readonly textsOut: Counter<never>;
  private readonly textsDeclined: Counter<'reason'>;

  /** `runtimes`: one per Asterisk node the Server serves (their counts are summed). */
  private constructor(server: Server, runtimes: readonly Runtime[], logger: Logger) {
    // The speech engines are shared by a Server's nodes: the first runtime's are everyone's.
    const runtime = runtimes[0]!;
    this.logger = logger;
    const registers = [this.registry];
    const p = 'asteramisk_';

    new Gauge({
      name: `${p}calls_active`,
      help: 'Calls being handled now.',
      registers,
      collect() {
        this.set(server.activeCalls);
      },
    });
    this.callsStarted = new Counter({
      name: `${p}calls_started_total`,
      help: 'Calls to a served number whose handler started.',
      registers,
    });
    this.callsEnded = new Counter({
      name: `${p}calls_ended_total`,
      help: 'Calls whose handler finished, by outcome: ok (returned), hangup (the caller hung up), error (the handler threw).',
      labelNames: ['outcome'],
      registers,
    });
    this.callsDeclined = new Counter({
      name: `${p}calls_declined_total`,
      help: 'Calls not taken (they continue in the dialplan), by reason.',
      labelNames: ['reason'],
      registers,
    });
    const metrics = this;
    new Counter({
      name: `${p}handler_errors_total`,
      help: 'Handlers that threw something other than a hang-up, by kind (voice, text).',
      labelNames: ['kind'],
      registers,
      collect() {
        this.reset();
        this.inc({ kind: 'voice' }, metrics.voiceHandlerErrors);
        this.inc(
          { kind: 'text' },
          runtimes.reduce((n, r) => n + r.conversations.handlerErrors, 0),
        );
      },
    });
    this.verbSeconds = new Histogram({
      name: `${p}verb_duration_seconds`,
      help: 'Time each VoiceUI verb took (say, play, gather, prompt, record, menu, select, choose, askYesNo), by verb and outcome.',
      labelNames: ['verb', 'outcome'],
      buckets: VERB_BUCKETS,
      registers,
    });
    this.ariSeconds = new Histogram({
      name: `${p}ari_request_duration_seconds`,
      help: 'ARI REST request latency, by method, route template and HTTP status (0: no answer).',
      labelNames: ['method', 'route', 'status'],
      buckets: REQUEST_BUCKETS,
      registers,
    });
    this.reconnects = new Counter({
      name: `${p}reconnects_total`,
      help: 'Reconnections of the ARI events websocket and of the AMI session after an outage.',
      labelNames: ['connection'],
      registers,
    });
    this.rtpPackets = new Counter({
      name: `${p}rtp_packets_total`,
      help: 'RTP packets of ended calls: sent to Asterisk (out) and accepted from it (in).',
      labelNames: ['direction'],
      registers,
    });
    this.rtpLost = new Counter({
      name: `${p}rtp_packets_lost_total`,
      help: 'Inbound RTP packets lost in ended calls (frames concealed with silence).',
      registers,
    });
    this.rtpLate = new Counter({
      name: `${p}rtp_packets_late_total`,
      help: 'Inbound RTP packets of ended calls that arrived after their turn (dropped).',
      registers,
    });
    this.rtpDropped = new Counter({
      name: `${p}rtp_packets_dropped_total`,
      help: 'Inbound datagrams of ended calls dropped: foreign source, malformed, oversized, unsupported payload, wrong SSRC, duplicate.',
      registers,
    });
    const pacer = Pacer.shared;
    this.pacerLateness = new Histogram({
      name: `${p}pacer_lateness_seconds`,
      help: 'How late each 20 ms tick of the outbound audio clock ran (only while audio is playing).',
      buckets: PACER_BUCKETS,
      registers,
    });
    new Gauge({
      name: `${p}pacer_max_lateness_seconds`,
      help: 'The worst lateness of the outbound audio clock since the process started.',
      registers,
      collect() {
        this.set(pacer.stats.maxLatenessMs / 1000);
      },
    });
    new Counter({
      name: `${p}pacer_skipped_ticks_total`,
      help: 'Overdue ticks of the outbound audio clock dropped after event-loop stalls (process-wide).',
      registers,
      collect() {
        this.reset();
        this.inc(pacer.stats.skippedTicks);
      },
    });
    const cache = (): CachedTts | undefined =>
      runtime.services.speaker instanceof CachedTts ? runtime.services.speaker : undefined;
    const ttsCounter = (name: string, help: string, read: (c: CachedTts) => number) =>
      new Counter({
        name: `${p}${name}`,
        help,
        registers,
        collect() {
          const c = cache();
          this.reset();
          if (c) this.inc(read(c));
        },
      });
    ttsCounter(
      'tts_cache_hits_total',
      'Speech requests answered from the TTS cache (memory or disk).',
      (c) => c.stats().hits,
    );
    ttsCounter('tts_cache_misses_total', 'Speech requests that needed a synthesis.', (c) => c.stats().misses);
    ttsCounter(
      'tts_syntheses_total',
      'Calls made to the TTS engine (failed ones included).',
      (c) => c.stats().synthCalls,
    );
    ttsCounter('tts_synthesis_errors_total', 'Failed TTS engine calls.', (c) => c.stats().errors);
    this.synthesisSeconds = new Histogram({
      name: `${p}tts_synthesis_seconds`,
      help: 'Time each TTS engine call took (cache hits are not engine calls), by outcome: ok, error, aborted (every request for it was cancelled).',
      labelNames: ['outcome'],
      buckets: SYNTHESIS_BUCKETS,
      registers,
    });
    this.turnLatency = new Histogram({
      name: `${p}agent_turn_latency_seconds`,
      help: "Realtime agent: from the end of the caller's speech to the agent's first audio on the wire.",
      buckets: TURN_BUCKETS,
      registers,
    });
    this.bargeIns = new Counter({
      name: `${p}agent_barge_ins_total`,
      help: 'Realtime agent: times the caller interrupted the agent.',
      registers,
    });
    this.textsIn = new Counter({
      name: `${p}texts_received_total`,
      help: 'Texts (SIP MESSAGEs) received from phones, declined ones included.',
      registers,
    });
    this.textsOut = new Counter({
      name: `${p}texts_sent_total`,
      help: 'Texts sent to phones (conversations and in-call texts).',
      registers,
    });
    new Gauge({
      name: `${p}texts_queued`,
      help: "Texts waiting for their recipient's rate limit.",
      registers,
      collect() {
        this.set(runtimes.reduce((n, r) => n + r.textsQueued, 0));
      },
    });
    this.textsDeclined = new Counter({
      name: `${p}texts_declined_total`,
      help: 'Texts not taken, by reason.',
      labelNames: ['reason'],
      registers,
    });
    new Gauge({
      name: `${p}conversations_active`,
      help: 'Text conversations open now.',
      registers,
      collect() {
        this.set(server.activeConversations);
      },
    });
    new Gauge({
      name: `${p}ready`,
      help: 'Health: 1 when calls and texts to every number reach this server, else 0.',
      registers,
      collect() {
        this.set(server.health().ready ? 1 : 0);
      },
    });
    new Gauge({
      name: `${p}connection_up`,
      help: 'Health: 1 when the connection (ari, ami) is up, else 0.',
      labelNames: ['connection'],
      registers,
      collect() {
        const health = server.health();
        this.set({ connection: 'ari' }, health.ari === 'up' ? 1 : 0);
        this.set({ connection: 'ami' }, health.ami === 'up' ? 1 : 0);
      },
    });

    this.attach(server, runtimes, pacer);
    this.http = createServer((request, response) => {
      const url = request.url?.split('?')[0];
      if (request.method !== 'GET' || url !== '/metrics') {
        response.writeHead(404, { 'Content-Type': 'text/plain' }).end('Not found: try GET /metrics\n');
        return;
      }
      this.registry.metrics().then(
        (text) => response.writeHead(200, { 'Content-Type': this.registry.contentType }).end(text),
        (error: unknown) => {
          this.logger.warn({ err: String(error) }, 'metrics collection failed');
          response.writeHead(500, { 'Content-Type': 'text/plain' }).end('metrics collection failed\n');
        },
      );
    });
  }

  /** Creates the metrics of `server` and starts the endpoint. */
  static async start(
    server: Server,
    runtimes: readonly Runtime[],
    options: MetricsOptions,
    logger: Logger,
  ): Promise<ServerMetrics> {
    const metrics = new ServerMetrics(server, runtimes, logger);
    try {
      await new Promise<void>((resolve, reject) => {
        metrics.http.once('error', reject);
        metrics.http.listen(options.port, options.host ?? '0.0.0.0', () => {
          metrics.http.off('error', reject);
          resolve();
        });
      });
    } catch (error) {
      metrics.detachAll();
      throw error;
    }
    logger.info({ url: metrics.url }, 'metrics endpoint listening');
    return metrics;
  }

  /** `http://host:port/metrics` of the endpoint. */
  get url(): string {
    const address = this.http.address() as AddressInfo | null;
    if (!address) return '';
    const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
    return `http://${host}:${address.port}/metrics`;
  }

  /** Stops the endpoint and the observers. Idempotent. */
  async close(): Promise<void> {
    this.detachAll();
    if (!this.http.listening) return;
    await new Promise<void>((resolve) => {
      this.http.close(() => resolve());
      this.http.closeAllConnections();
    });
  }

  private detachAll(): void {
    for (const d of this.detach.splice(0)) d();
  }

  private attach(server: Server, runtimes: readonly Runtime[], pacer: Pacer): void {
    const callStarted = (ui: VoiceUI) => {
      this.callsStarted.inc();
      ui.on('agent', (event: AgentEvent) => {
        if (event.type === 'turnLatency') this.turnLatency.observe(event.ms / 1000);
        else if (event.type === 'bargeIn') this.bargeIns.inc();
      });
    };
    const callEnded = (_ui: unknown, outcome: { error?: unknown }) => {
      const label = callOutcome(outcome.error);
      this.callsEnded.inc({ outcome: label });
      if (label === 'error') this.voiceHandlerErrors++;
    };
    const callDeclined = (info: { reason: string }) => this.callsDeclined.inc({ reason: info.reason });
    const textDeclined = (info: { reason: string }) => this.textsDeclined.inc({ reason: info.reason });
    server.on('callStarted', callStarted);
    server.on('callEnded', callEnded);
    server.on('callDeclined', callDeclined);
    server.on('textDeclined', textDeclined);

    const observer: RuntimeObserver = {
      verb: (verb: string, seconds: number, outcome: VerbOutcome) =>
        this.verbSeconds.observe({ verb, outcome }, seconds),
      mediaClosed: (stats: RtpSessionStats) => {
        this.rtpPackets.inc({ direction: 'out' }, stats.sent);
        this.rtpPackets.inc({ direction: 'in' }, stats.received);
        this.rtpLost.inc(stats.concealed);
        this.rtpLate.inc(stats.late);
        this.rtpDropped.inc(
          stats.droppedForeign +
            stats.malformed +
            stats.oversized +
            stats.unsupportedPayload +
            stats.wrongSsrc +
            stats.duplicates,
        );
      },
      textIn: () => this.textsIn.inc(),
      textOut: () => this.textsOut.inc(),
    };
    const ariReconnected = () => this.reconnects.inc({ connection: 'ari' });
    const amiReconnected = () => this.reconnects.inc({ connection: 'ami' });
    for (const runtime of runtimes) {
      runtime.observers.add(observer);
      const ari = runtime.connection.ari;
      const offRequests = ari.observeRequests(({ method, path, status, seconds }) =>
        this.ariSeconds.observe({ method, route: ariRouteTemplate(path), status: String(status) }, seconds),
      );
      ari.on('reconnected', ariReconnected);
      runtime.connection.ami.on('reconnected', amiReconnected);
      this.detach.push(
        () => runtime.observers.delete(observer),
        offRequests,
        () => ari.off('reconnected', ariReconnected),
        () => runtime.connection.ami.off('reconnected', amiReconnected),
      );
    }
    const offPacer = pacer.observe((tick) => {
      this.pacerLateness.observe(Math.max(0, tick.actualMs - tick.idealMs) / 1000);
    });
    this.reconnects.inc({ connection: 'ari' }, 0);
    this.reconnects.inc({ connection: 'ami' }, 0);
    const speaker = runtimes[0]?.services.speaker;
    const offSyntheses =
      speaker instanceof CachedTts
        ? speaker.observeSyntheses(({ seconds, outcome }) =>
            this.synthesisSeconds.observe({ outcome }, seconds),
          )
        : () => {};
    // Zero series from the start, so rate() and histogram_quantile() have a baseline.
    this.synthesisSeconds.zero({ outcome: 'ok' });

    this.detach.push(
      () => server.off('callStarted', callStarted),
      () => server.off('callEnded', callEnded),
      () => server.off('callDeclined', callDeclined),
      () => server.off('textDeclined', textDeclined),
      offPacer,
      offSyntheses,
    );
  }
}
