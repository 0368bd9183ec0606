import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { Dialplan, type DialplanLocation } from './dialplan.js';
import { DEFAULT_SOUNDS, mediaOutcome } from './media-catalog.js';
import {
  amiChannelFields,
  ariTimestamp,
  bridgeJson,
  type CallerId,
  causeText,
  channelJson,
  type SimBridge,
  type SimChannel,
  type SimChannelState,
} from './sim-model.js';

/**
 * An error the simulated PBX answers a request with: the HTTP status and body ARI would send.
 * The AMI layer maps it to `Response: Error` with the same message.
 */
export class PbxError extends Error {
  constructor(
    readonly status: number,
    message: string,
    /** ARI puts a few errors under `error` instead of `message` (`Allocation failed`). */
    readonly key: 'message' | 'error' = 'message',
  ) {
    super(message);
  }

  body(): Record<string, string> {
    return { [this.key]: this.message };
  }
}

/** How a simulated SIP endpoint behaves when it is called. */
export interface EndpointBehaviour {
  /** `answer`: rings then answers; `busy`: 486; `no-answer`: rings until the timeout; `reject`: 603. */
  onCall: 'answer' | 'busy' | 'no-answer' | 'reject';
  /** How long it rings before answering. */
  ringMs: number;
}

/** A simulated PJSIP endpoint (a configured phone). */
export interface SimEndpoint {
  resource: string;
  callerId: CallerId;
  /** Dialplan context of calls from this endpoint. */
  context: string;
  /** Dialplan context of SIP MESSAGEs from this endpoint. */
  messageContext: string;
  /** An endpoint without a contact is "offline": calls to it fail to allocate. */
  online: boolean;
  behaviour: EndpointBehaviour;
}

/** A message the PBX sent out (AMI MessageSend, ARI sendMessage). */
export interface SentText {
  /** Endpoint resource it was delivered to (`bob`, or the trunk `pstn`). */
  endpoint: string;
  to: string;
  /** The user the message is addressed to (`bob`, or `+15551234` over a trunk). */
  toUser: string;
  from: string;
  body: string;
  variables: Record<string, string>;
  /** Whether it was sent inside a call (AMI SendText). */
  inDialog: boolean;
  channel?: string;
}

/** An app connected over the events websocket. */
interface StasisApp {
  name: string;
  subscribeAll: boolean;
  endpointSubscriptions: Set<string>;
  send: (json: string) => void;
}

/**
 * Which apps get an event. Asterisk 22 sends an event once per subscription of the app that covers
 * it: a channel event reaches an app through the channel (Stasis, or an explicit subscription) and
 * again through the channel's endpoint when the app subscribed to `endpoint:PJSIP[/alice]`, so such
 * an app gets the same frame twice. `subscribeAll` gets everything exactly once.
 */
interface EventScope {
  channels?: SimChannel[];
  bridge?: SimBridge;
  /** `PJSIP/alice`: apps subscribed to it (or to `PJSIP`). */
  endpoint?: string;
  /** Not for the channel's subscribers (it is not in an app yet): subscribeAll, and `endpoint`. */
  allOnly?: boolean;
}

/** Events Asterisk sends to the app itself, not on the channel's topic: never via the endpoint. */
const APP_ONLY_EVENTS = new Set(['StasisStart', 'StasisEnd', 'ApplicationMoveFailed']);

/** The scope of an event published on a channel's topic: its subscribers, and its endpoint's. */
function channelScope(channel: SimChannel, allOnly = false): EventScope {
  const scope: EventScope = { channels: [channel], allOnly };
  if (channel.tech === 'PJSIP' && channel.resource) scope.endpoint = `PJSIP/${channel.resource}`;
  return scope;
}

export interface PlaybackState {
  id: string;
  mediaUris: string[];
  index: number;
  targetUri: string;
  language: string;
  state: 'queued' | 'playing' | 'paused' | 'done' | 'failed' | 'continuing';
  timer?: NodeJS.Timeout;
  /** ms left of the current item when paused. */
  remainingMs?: number;
  startedAt: number;
  currentMs: number;
}

export interface LiveRecording {
  name: string;
  format: string;
  targetUri: string;
  channelId: string;
  state: 'queued' | 'recording' | 'paused' | 'done' | 'failed';
  startedAt: number;
  frames: Buffer[];
  maxSilenceSeconds?: number;
  terminateOn: string;
  talkingMs: number;
  silenceMs: number;
  lastTalkAt: number;
  muted: boolean;
  timers: NodeJS.Timeout[];
}

export interface StoredRecording {
  name: string;
  format: string;
  /** 8 kHz µ-law samples of what was recorded. */
  audio: Buffer;
}

/** Options of the simulated PBX. */
export interface PbxOptions {
  /** Multiplies every simulated duration (playbacks, ringing); 0.01 makes a 1.4 s prompt last 14 ms. */
  timeScale: number;
  sounds: Record<string, number>;
}

/** The dialplan variable the simulator expands in application data. */
const EXTEN_VARIABLE = ['$', '{EXTEN}'].join('');

const QOS_VARS = ['RTPAUDIOQOS', 'RTPAUDIOQOSJITTER', 'RTPAUDIOQOSLOSS', 'RTPAUDIOQOSRTT', 'RTPAUDIOQOSMES'];

/** ms of µ-law audio in a buffer. */
export function ulawMs(audio: Buffer): number {
  return audio.length / 8;
}

/** Mean absolute amplitude of a µ-law frame above which it counts as talking. */
const TALK_THRESHOLD = 256;

/** Longest SIP MESSAGE body Asterisk passes on (res_pjsip_messaging's 1024-byte buffer). */
const MAX_INBOUND_TEXT_BYTES = 1023;

/**
 * The state and behaviour of the simulated Asterisk: channels, bridges, playbacks, recordings,
 * dialplan, endpoints and Stasis apps. The ARI and AMI servers translate requests into calls on
 * this object; it publishes ARI events to apps (`app.send`) and AMI events (`'ami'` event).
 *
 * Events emitted: `'ami'` (fields), `'channel-audio-out'`, `'phone-event'` (for test phones).
 */
export class Pbx extends EventEmitter {
  readonly asteriskId = '02:fc:00:00:00:01';
  readonly dialplan = new Dialplan();
  readonly channels = new Map<string, SimChannel>();
  readonly bridges = new Map<string, SimBridge>();
  readonly playbacks = new Map<string, PlaybackState>();
  readonly liveRecordings = new Map<string, LiveRecording>();
  readonly storedRecordings = new Map<string, StoredRecording>();
  readonly endpoints = new Map<string, SimEndpoint>();
  readonly globals = new Map<string, string>();
  readonly sentTexts: SentText[] = [];
  private readonly apps = new Map<string, StasisApp>();
  private counter = 0;
  private readonly techCounters = new Map<string, number>();
  private readonly playbackQueues = new Map<string, PlaybackState[]>();
  startedAt = Date.now();
  reloadedAt = Date.now();
  readonly options: PbxOptions;

  constructor(options: Partial<PbxOptions> = {}) {
    super();
    this.options = { timeScale: options.timeScale ?? 1, sounds: { ...DEFAULT_SOUNDS, ...options.sounds } };
  }

  /** Scales a simulated duration. */
  scaled(ms: number): number {
    return Math.max(0, Math.round(ms * this.options.timeScale));
  }

  // ---------------------------------------------------------------- apps and events

  /** Registers (or replaces) the app `name` for a websocket. Returns an unregister function. */
  registerApp(name: string, subscribeAll: boolean, send: (json: string) => void): () => void {
    const previous = this.apps.get(name);
    if (previous) {
      // Asterisk tells the old socket and keeps it open; it just stops receiving events.
      previous.send(JSON.stringify(this.envelope('ApplicationReplaced', {}, name)));
    }
    const app: StasisApp = {
      name,
      subscribeAll,
      endpointSubscriptions: previous?.endpointSubscriptions ?? new Set(),
      send,
    };
    this.apps.set(name, app);
    return () => {
      if (this.apps.get(name) === app) this.apps.delete(name);
    };
  }

  hasApp(name: string): boolean {
    return this.apps.has(name);
  }

  appNames(): string[] {
    return [...this.apps.keys()];
  }

  /** The Application object of ARI. */
  applicationJson(name: string): Record<string, unknown> {
    const app = this.apps.get(name);
    if (!app) throw new PbxError(404, 'Application not found');
    const channelIds = [...this.channels.values()].filter((c) => c.subscribers.has(name)).map((c) => c.id);
    const bridgeIds = [...this.bridges.values()].filter((b) => b.subscribers.has(name)).map((b) => b.id);
    return {
      name,
      channel_ids: channelIds,
      bridge_ids: bridgeIds,
      endpoint_ids: [...app.endpointSubscriptions],
      device_names: [],
      events_allowed: [],
      events_disallowed: [],
    };
  }

  /** Subscribes an app to `channel:<id>`, `bridge:<id>`, `endpoint:<tech>[/<resource>]`. */
  subscribe(appName: string, source: string, subscribe: boolean): void {
    const app = this.apps.get(appName);
    if (!app) throw new PbxError(404, 'Application not found');
    const colon = source.indexOf(':');
    const scheme = source.slice(0, colon);
    const target = source.slice(colon + 1);
    if (colon < 0 || !['channel', 'bridge', 'endpoint', 'deviceState'].includes(scheme)) {
      throw new PbxError(400, 'Invalid event source URI scheme');
    }
    if (scheme === 'endpoint') {
      const known = target === 'PJSIP' || this.endpoints.has(target.replace(/^PJSIP\//, ''));
      if (!known || (!target.startsWith('PJSIP') && target !== 'PJSIP'))
        throw new PbxError(422, 'Event source does not exist');
      if (subscribe) app.endpointSubscriptions.add(target);
      else if (!app.endpointSubscriptions.delete(target))
        throw new PbxError(422, 'Event source was not subscribed to');
      return;
    }
    const holder = scheme === 'channel' ? this.channels.get(target) : this.bridges.get(target);
    if (!holder) throw new PbxError(422, 'Event source does not exist');
    if (subscribe) holder.subscribers.add(appName);
    else if (!holder.subscribers.delete(appName))
      throw new PbxError(422, 'Event source was not subscribed to');
  }

  private envelope(
    type: string,
    fields: Record<string, unknown>,
    application: string,
  ): Record<string, unknown> {
    return { type, timestamp: ariTimestamp(), ...fields, asterisk_id: this.asteriskId, application };
  }

  /** Sends an ARI event to every app the scope selects, once per subscription that covers it. */
  publish(type: string, fields: Record<string, unknown>, scope: EventScope): void {
    for (const app of this.apps.values()) {
      const copies = this.deliveries(app, scope);
      if (copies === 0) continue;
      const frame = JSON.stringify(this.envelope(type, fields, app.name));
      for (let i = 0; i < copies; i++) app.send(frame);
    }
  }

  /** Sends an ARI event to one app (if connected). */
  publishTo(appName: string, type: string, fields: Record<string, unknown>): void {
    const app = this.apps.get(appName);
    if (app) app.send(JSON.stringify(this.envelope(type, fields, app.name)));
  }

  private appWants(app: StasisApp, scope: EventScope): boolean {
    return this.deliveries(app, scope) > 0;
  }

  /** How many copies of an event `app` gets: one per covering subscription (see {@link EventScope}). */
  private deliveries(app: StasisApp, scope: EventScope): number {
    if (app.subscribeAll) return 1;
    let copies = 0;
    if (
      !scope.allOnly &&
      (scope.channels?.some((c) => c.subscribers.has(app.name)) || scope.bridge?.subscribers.has(app.name))
    )
      copies++;
    if (scope.endpoint) {
      const tech = scope.endpoint.split('/')[0]!;
      if (app.endpointSubscriptions.has(scope.endpoint) || app.endpointSubscriptions.has(tech)) copies++;
    }
    return copies;
  }

  /** Publishes an AMI event (fields in order; Privilege first). */
  ami(event: string, privilege: string, fields: [string, string][]): void {
    this.emit('ami', [['Event', event], ['Privilege', privilege], ...fields] as [string, string][]);
  }

  private channelEvent(
    type: string,
    channel: SimChannel,
    extra: Record<string, unknown> = {},
    allOnly = false,
  ): void {
    const scope = APP_ONLY_EVENTS.has(type)
      ? { channels: [channel], allOnly }
      : channelScope(channel, allOnly);
    this.publish(type, { ...extra, channel: channelJson(channel) }, scope);
  }

  // ---------------------------------------------------------------- channels

  private nextId(): string {
    return `${Math.floor(this.startedAt / 1000)}.${this.counter++}`;
  }

  private channelName(tech: string, resource: string): string {
    const n = this.techCounters.get(tech) ?? 0;
    this.techCounters.set(tech, n + 1);
    return `${tech}/${resource}-${n.toString(16).padStart(8, '0')}`;
  }

  /** Creates a channel record (no events). */
  createChannel(init: {
    tech: string;
    resource: string;
    name?: string;
    id?: string;
    state: SimChannelState;
    caller: CallerId;
    connected?: CallerId;
    dialplan: SimChannel['dialplan'];
    protocolId?: string;
    originated: boolean;
  }): SimChannel {
    const id = init.id ?? this.nextId();
    if (this.channels.has(id)) throw new PbxError(409, 'Channel with given unique ID already exists');
    const channel: SimChannel = {
      id,
      name: init.name ?? this.channelName(init.tech, init.resource),
      tech: init.tech,
      resource: init.resource,
      state: init.state,
      protocolId: init.protocolId ?? '',
      caller: init.caller,
      connected: init.connected ?? { name: '', number: '' },
      dialplan: init.dialplan,
      creationtime: ariTimestamp(),
      language: 'en',
      variables: new Map(),
      subscribers: new Set(),
      originated: init.originated,
      hungUp: false,
      muted: new Set(),
      onHold: false,
      linkedId: id,
    };
    this.channels.set(id, channel);
    this.ami('Newchannel', 'call,all', amiChannelFields(channel));
    this.publish('ChannelCreated', { channel: channelJson(channel) }, channelScope(channel, true));
    return channel;
  }

  getChannel(id: string): SimChannel {
    const c = this.channels.get(id);
    if (!c || c.hungUp) throw new PbxError(404, 'Channel not found');
    return c;
  }

  findChannelByName(name: string): SimChannel | undefined {
    for (const c of this.channels.values()) if (c.name === name && !c.hungUp) return c;
    return undefined;
  }

  /** The channel must be in a Stasis app to be controlled over ARI. */
  getStasisChannel(id: string): SimChannel {
    const c = this.getChannel(id);
    if (!c.stasisApp) throw new PbxError(409, 'Channel not in Stasis application');
    return c;
  }

  setState(channel: SimChannel, state: SimChannelState): void {
    if (channel.state === state) return;
    channel.state = state;
    this.ami('Newstate', 'call,all', amiChannelFields(channel));
    this.channelEvent('ChannelStateChange', channel);
    this.emit('channel-state', channel);
  }

  answer(channel: SimChannel): void {
    this.setState(channel, 'Up');
  }

  /** Runs the dialplan from `location` (Asterisk's pbx thread for this channel). */
  runDialplan(channel: SimChannel, location: DialplanLocation): void {
    let loc = location;
    // A bounded loop: Goto chains in a broken dialplan must not spin forever.
    for (let steps = 0; steps < 100 && !channel.hungUp; steps++) {
      const step = this.dialplan.step(loc);
      if (!step) {
        // Asterisk's autofallthrough: no more priorities → hang up.
        this.hangup(channel, { initiator: 'dialplan', cause: steps === 0 && loc.priority === 1 ? 1 : 16 });
        return;
      }
      channel.dialplan = {
        context: loc.context,
        exten: loc.exten,
        priority: loc.priority,
        app_name: step.app,
        app_data: step.appData.replaceAll(EXTEN_VARIABLE, loc.exten),
      };
      this.ami('Newexten', 'dialplan,all', [
        ...amiChannelFields(channel),
        ['Extension', loc.exten],
        ['Application', step.app],
        ['AppData', channel.dialplan.app_data],
      ]);
      this.publish(
        'ChannelDialplan',
        {
          dialplan_app: step.app,
          dialplan_app_data: channel.dialplan.app_data,
          channel: channelJson(channel),
        },
        channelScope(channel, true),
      );
      const args = splitAppData(channel.dialplan.app_data);
      switch (step.app.toLowerCase()) {
        case 'stasis': {
          const [app, ...appArgs] = args;
          if (app && this.enterStasis(channel, app, appArgs)) return;
          channel.variables.set('STASISSTATUS', 'FAILED');
          loc = this.dialplan.next(loc);
          break;
        }
        case 'goto': {
          const target = parseGoto(args, loc);
          loc = target;
          break;
        }
        case 'answer':
          this.answer(channel);
          loc = this.dialplan.next(loc);
          break;
        case 'hangup':
          this.hangup(channel, { initiator: 'dialplan', cause: Number(args[0]) || 16 });
          return;
        case 'set': {
          const [assignment = ''] = args;
          const eq = assignment.indexOf('=');
          if (eq > 0) channel.variables.set(assignment.slice(0, eq), assignment.slice(eq + 1));
          loc = this.dialplan.next(loc);
          break;
        }
        default:
          // NoOp, Verbose, UserEvent, Wait…: no effect the simulator models.
          loc = this.dialplan.next(loc);
      }
    }
  }

  /** Stasis(app, args…). Returns false when the app is not registered (STASISSTATUS=FAILED). */
  enterStasis(channel: SimChannel, app: string, args: string[]): boolean {
    if (!this.apps.has(app)) return false;
    channel.stasisApp = app;
    channel.subscribers.add(app);
    channel.dialplan = { ...channel.dialplan, app_name: 'Stasis', app_data: [app, ...args].join(',') };
    if (channel.originated)
      this.channelEvent('ChannelVarset', channel, { variable: 'STASISSTATUS', value: '' });
    this.channelEvent('StasisStart', channel, { args });
    this.emit('stasis-start', channel);
    return true;
  }

  /** Leaves Stasis: StasisEnd, and (unless originated by the app) no more events for that app. */
  leaveStasis(channel: SimChannel): void {
    const app = channel.stasisApp;
    if (!app) return;
    this.channelEvent('StasisEnd', channel);
    channel.stasisApp = undefined;
    channel.variables.set('STASISSTATUS', 'SUCCESS');
    this.publish(
      'ChannelVarset',
      { variable: 'STASISSTATUS', value: 'SUCCESS', channel: channelJson(channel) },
      channelScope(channel, !channel.originated),
    );
    if (!channel.originated) channel.subscribers.delete(app);
  }

  /** `POST /channels/{id}/continue`. */
  continueInDialplan(channel: SimChannel, target: Partial<DialplanLocation>): void {
    const from = channel.dialplan;
    this.leaveStasis(channel);
    const location: DialplanLocation = {
      context: target.context || from.context,
      exten: target.exten || from.exten,
      priority: target.priority ?? (target.exten || target.context ? 1 : from.priority + 1),
    };
    // Asterisk runs the dialplan on the channel's own thread, after the request returns.
    setImmediate(() => this.runDialplan(channel, location));
  }

  /** `POST /channels/{id}/move`. */
  move(channel: SimChannel, app: string, args: string[]): void {
    if (!this.apps.has(app)) {
      this.channelEvent('ApplicationMoveFailed', channel, { destination: app, args });
      return;
    }
    this.leaveStasis(channel);
    this.enterStasis(channel, app, args);
  }

  /**
   * Hangs a channel up. `far-end`: the phone sent BYE; `app`: DELETE /channels (soft hangup, cause
   * flag 32); `dialplan`: Hangup() or fallthrough; `system`: restart.
   */
  hangup(
    channel: SimChannel,
    how: { initiator: 'far-end' | 'app' | 'dialplan' | 'system'; cause?: number; techCause?: number },
  ): void {
    if (channel.hungUp) return;
    const cause = how.cause ?? 16;
    if (how.initiator !== 'system') {
      if (channel.tech === 'PJSIP' && channel.state === 'Up') {
        for (const v of QOS_VARS) this.channelEvent('ChannelVarset', channel, { variable: v, value: '' });
      }
      if (how.initiator === 'far-end') {
        this.channelEvent('ChannelHangupRequest', channel);
        this.ami('HangupRequest', 'call,all', [...amiChannelFields(channel), ['Cause', String(cause)]]);
      } else if (how.initiator === 'app') {
        this.channelEvent('ChannelHangupRequest', channel, { cause: 32, soft: true });
        this.ami('SoftHangupRequest', 'call,all', [...amiChannelFields(channel), ['Cause', '32']]);
      } else if (how.techCause) {
        this.channelEvent('ChannelHangupRequest', channel, { cause, tech_cause: how.techCause });
      }
    }
    channel.hungUp = true;
    this.stopChannelMedia(channel, how.initiator !== 'system');
    if (channel.bridgeId)
      this.removeFromBridge(this.bridges.get(channel.bridgeId)!, channel, how.initiator !== 'system');
    if (how.initiator !== 'system') {
      if (channel.stasisApp) this.leaveStasis(channel);
      const destroyed: Record<string, unknown> = {
        cause: how.initiator === 'far-end' && !channel.originated ? 0 : cause,
        cause_txt: causeText(how.initiator === 'far-end' && !channel.originated ? 0 : cause),
      };
      if (how.techCause) destroyed.tech_cause = how.techCause;
      this.channelEvent('ChannelDestroyed', channel, destroyed, !channel.originated);
      this.ami('Hangup', 'call,all', [
        ...amiChannelFields(channel),
        ['Cause', String(cause)],
        ['Cause-txt', causeText(cause)],
      ]);
    }
    channel.audioOut?.close();
    channel.audioOut = undefined;
    if (channel.talkDetect?.timer) clearTimeout(channel.talkDetect.timer);
    this.channels.delete(channel.id);
    this.emit('hangup', channel, cause, how.initiator);
  }

  private stopChannelMedia(channel: SimChannel, withEvents: boolean): void {
    const queue = this.playbackQueues.get(`channel:${channel.id}`) ?? [];
    this.playbackQueues.delete(`channel:${channel.id}`);
    for (const p of queue) {
      if (p.timer) clearTimeout(p.timer);
      this.playbacks.delete(p.id);
      if (withEvents && p.state !== 'queued') {
        p.state = 'failed';
        this.publishPlayback('PlaybackFinished', p);
      }
    }
    for (const rec of this.liveRecordings.values()) {
      if (rec.channelId === channel.id) this.finishRecording(rec, withEvents, true);
    }
  }

  // ---------------------------------------------------------------- originate

  /**
   * `POST /channels` and AMI Originate. Resolves the outcome asynchronously; the returned channel
   * is the not-yet-answered outbound leg.
   */
  originate(req: {
    endpoint: string;
    app?: string;
    appArgs?: string[];
    location?: DialplanLocation;
    callerId?: CallerId;
    timeoutSec?: number;
    channelId?: string;
    variables?: Record<string, string>;
    /** `/channels/create`: enters Stasis at once, dials later. */
    createOnly?: boolean;
    onOutcome?: (
      outcome: 'answered' | 'busy' | 'no-answer' | 'rejected' | 'failed',
      channel: SimChannel,
    ) => void;
  }): SimChannel {
    const slash = req.endpoint.indexOf('/');
    const tech = req.endpoint.slice(0, slash);
    // `PJSIP/+15551234@pstn` dials a number through the endpoint `pstn` (a trunk).
    const [first, trunk] = req.endpoint.slice(slash + 1).split('@');
    const resource = trunk ?? first ?? '';
    const dialedNumber = trunk ? first : undefined;
    const endpoint = tech.toUpperCase() === 'PJSIP' ? this.endpoints.get(resource) : undefined;
    if (slash < 0 || !endpoint || !endpoint.online) throw new PbxError(500, 'Allocation failed', 'error');
    if (req.channelId && this.channels.has(req.channelId)) {
      throw new PbxError(409, 'Channel with given unique ID already exists');
    }
    const variables = { ...req.variables };
    const callerName = variables['CALLERID(name)'] ?? req.callerId?.name ?? endpoint.callerId.name;
    const callerNumber = variables['CALLERID(num)'] ?? req.callerId?.number ?? endpoint.callerId.number;
    const channel = this.createChannel({
      tech: 'PJSIP',
      resource,
      ...(req.channelId ? { id: req.channelId } : {}),
      state: 'Down',
      caller: { name: callerName, number: callerNumber },
      connected: req.callerId ? { ...req.callerId } : { name: '', number: '' },
      dialplan: {
        context: endpoint.context,
        exten: 's',
        priority: 1,
        app_name: 'AppDial2',
        app_data: '(Outgoing Line)',
      },
      protocolId: randomUUID(),
      originated: true,
    });
    if (dialedNumber) channel.dialedNumber = dialedNumber;
    for (const [k, v] of Object.entries(variables)) {
      if (!k.startsWith('CALLERID(')) channel.variables.set(k, v);
    }
    if (req.app) channel.subscribers.add(req.app);
    if (req.createOnly) {
      setImmediate(() => {
        channel.dialplan = {
          ...channel.dialplan,
          app_name: 'Stasis',
          app_data: [req.app, ...(req.appArgs ?? [])].join(','),
        };
        this.publish(
          'ChannelDialplan',
          {
            dialplan_app: 'Stasis',
            dialplan_app_data: channel.dialplan.app_data,
            channel: channelJson(channel),
          },
          { channels: [channel] },
        );
        if (req.app) this.enterStasis(channel, req.app, req.appArgs ?? []);
      });
      return channel;
    }
    setImmediate(() => this.dial(channel, endpoint, req));
    return channel;
  }

  /** Rings the endpoint of an outbound channel and applies its behaviour. */
  dial(
    channel: SimChannel,
    endpoint: SimEndpoint,
    req: {
      app?: string;
      appArgs?: string[];
      location?: DialplanLocation;
      timeoutSec?: number;
      onOutcome?: (o: 'answered' | 'busy' | 'no-answer' | 'rejected' | 'failed', c: SimChannel) => void;
    },
  ): void {
    if (channel.hungUp) return;
    const dialEvent = (status: string) =>
      this.publish(
        'Dial',
        { dialstatus: status, forward: '', dialstring: endpoint.resource, peer: channelJson(channel) },
        { channels: [channel] },
      );
    dialEvent('');
    this.ami('DialBegin', 'call,all', [...amiChannelFields(channel), ['DialString', endpoint.resource]]);
    const b = endpoint.behaviour;
    if (b.onCall === 'busy' || b.onCall === 'reject') {
      const cause = b.onCall === 'busy' ? 17 : 21;
      const techCause = b.onCall === 'busy' ? 486 : 603;
      const t = setTimeout(() => {
        this.channelEvent('ChannelHangupRequest', channel, { cause, tech_cause: techCause });
        dialEvent(b.onCall === 'busy' ? 'BUSY' : 'CONGESTION');
        this.ami('DialEnd', 'call,all', [
          ...amiChannelFields(channel),
          ['DialStatus', b.onCall === 'busy' ? 'BUSY' : 'CONGESTION'],
        ]);
        this.hangup(channel, { initiator: 'dialplan', cause, techCause });
        req.onOutcome?.(b.onCall === 'busy' ? 'busy' : 'rejected', channel);
      }, this.scaled(20));
      t.unref?.();
      return;
    }
    this.setState(channel, 'Ringing');
    dialEvent('RINGING');
    this.emit('ringing', channel, endpoint);
    const timeoutMs = (req.timeoutSec && req.timeoutSec > 0 ? req.timeoutSec : 30) * 1000;
    const noAnswer = setTimeout(() => {
      if (channel.hungUp) return;
      this.ami('DialEnd', 'call,all', [...amiChannelFields(channel), ['DialStatus', 'NOANSWER']]);
      this.hangup(channel, { initiator: 'dialplan', cause: 19, techCause: 480 });
      req.onOutcome?.('no-answer', channel);
    }, timeoutMs);
    if (b.onCall !== 'answer') return;
    setTimeout(() => {
      if (channel.hungUp) return;
      clearTimeout(noAnswer);
      this.setState(channel, 'Up');
      dialEvent('ANSWER');
      this.ami('DialEnd', 'call,all', [...amiChannelFields(channel), ['DialStatus', 'ANSWER']]);
      this.emit('answered', channel, endpoint);
      req.onOutcome?.('answered', channel);
      if (req.app) {
        if (!this.enterStasis(channel, req.app, req.appArgs ?? []))
          this.hangup(channel, { initiator: 'dialplan' });
      } else if (req.location) {
        this.runDialplan(channel, req.location);
      }
    }, this.scaled(b.ringMs));
  }

  // ---------------------------------------------------------------- DTMF, variables, talk detection

  /** A digit from the far end of `channel` (RFC 4733 end packet). */
  receiveDtmf(channel: SimChannel, digit: string, durationMs = 100): void {
    if (channel.hungUp) return;
    const fields = amiChannelFields(channel);
    this.ami('DTMFBegin', 'dtmf,all', [...fields, ['Digit', digit], ['Direction', 'Received']]);
    this.ami('DTMFEnd', 'dtmf,all', [
      ...fields,
      ['Digit', digit],
      ['DurationMs', String(durationMs)],
      ['Direction', 'Received'],
    ]);
    this.channelEvent('ChannelDtmfReceived', channel, { digit, duration_ms: durationMs });
    for (const rec of this.liveRecordings.values()) {
      if (rec.channelId !== channel.id || rec.state !== 'recording') continue;
      if (rec.terminateOn === 'any' || rec.terminateOn.includes(digit))
        this.finishRecording(rec, true, false);
    }
  }

  getVariable(channel: SimChannel | undefined, name: string): string {
    if (!channel) return this.globals.get(name) ?? '';
    const fn = /^([A-Z_]+)\((.*)\)$/.exec(name);
    if (fn) {
      const [, func, arg] = fn;
      if (func === 'CALLERID') {
        if (arg === 'num' || arg === 'number') return channel.caller.number;
        if (arg === 'name') return channel.caller.name;
        if (arg === 'all') return `"${channel.caller.name}" <${channel.caller.number}>`;
      }
      if (func === 'TALK_DETECT') throw new PbxError(500, 'Unable to read provided function');
      if (func === 'CHANNEL' && arg === 'name') return channel.name;
      if (func === 'CHANNEL' && arg === 'uniqueid') return channel.id;
    }
    const value = channel.variables.get(name);
    if (value === undefined) throw new PbxError(404, 'Provided variable was not found');
    return value;
  }

  setVariable(channel: SimChannel | undefined, name: string, value: string): void {
    if (!channel) {
      this.globals.set(name, value);
      return;
    }
    const fn = /^([A-Z_]+)\((.*)\)$/.exec(name);
    if (fn?.[1] === 'TALK_DETECT') {
      if (fn[2] === 'remove') {
        if (channel.talkDetect?.timer) clearTimeout(channel.talkDetect.timer);
        channel.talkDetect = undefined;
      } else if (fn[2] === 'set') {
        const silence = Number.parseInt(value.split(',')[0] ?? '', 10);
        channel.talkDetect = {
          silenceThresholdMs: Number.isFinite(silence) && silence > 0 ? silence : 2500,
          talking: false,
          startedAt: 0,
          lastTalkAt: 0,
        };
      }
      return;
    }
    if (fn?.[1] === 'CALLERID') {
      if (fn[2] === 'name') channel.caller.name = value;
      else channel.caller.number = value;
      return;
    }
    channel.variables.set(name, value);
    this.channelEvent('ChannelVarset', channel, { variable: name, value });
  }

  // ---------------------------------------------------------------- audio

  /**
   * Audio produced by the far end of `channel` (a phone speaking, RTP arriving on an externalMedia
   * leg): feeds recordings and talk detection, and reaches the other members of its bridge.
   */
  audioFromChannel(channel: SimChannel, frame: Buffer): void {
    if (channel.hungUp || channel.muted.has('in')) return;
    const talking = frameEnergy(frame) > TALK_THRESHOLD;
    this.detectTalk(channel, talking);
    for (const rec of this.liveRecordings.values()) {
      if (rec.channelId !== channel.id || rec.state !== 'recording') continue;
      rec.frames.push(rec.muted ? Buffer.alloc(frame.length, 0xff) : Buffer.from(frame));
      if (talking) {
        rec.talkingMs += ulawMs(frame);
        rec.lastTalkAt = Date.now();
      } else rec.silenceMs += ulawMs(frame);
    }
    if (!channel.bridgeId) return;
    const bridge = this.bridges.get(channel.bridgeId);
    if (!bridge) return;
    for (const id of bridge.channels) {
      if (id === channel.id) continue;
      const member = this.channels.get(id);
      if (member && !member.muted.has('out') && !member.onHold) member.audioOut?.deliver(frame);
    }
  }

  private detectTalk(channel: SimChannel, talking: boolean): void {
    const td = channel.talkDetect;
    if (!td) return;
    const now = Date.now();
    if (talking) {
      td.lastTalkAt = now;
      if (!td.talking) {
        td.talking = true;
        td.startedAt = now;
        this.channelEvent('ChannelTalkingStarted', channel);
      }
      if (td.timer) clearTimeout(td.timer);
      td.timer = setTimeout(() => {
        td.talking = false;
        td.timer = undefined;
        if (!channel.hungUp)
          this.channelEvent('ChannelTalkingFinished', channel, { duration: td.lastTalkAt - td.startedAt });
      }, td.silenceThresholdMs);
      td.timer.unref?.();
    }
  }

  // ---------------------------------------------------------------- playbacks

  /** Queues a playback of `mediaUris` (played in order as one playback) on a channel or bridge. */
  play(targetUri: string, mediaUris: string[], language: string, playbackId?: string): PlaybackState {
    if (mediaUris.length === 0 || mediaUris.some((m) => m === '')) {
      throw new PbxError(500, 'Failed to queue media for playback');
    }
    const id = playbackId ?? randomUUID();
    if (this.playbacks.has(id)) throw new PbxError(409, 'Playback with given ID already exists');
    const playback: PlaybackState = {
      id,
      mediaUris,
      index: 0,
      targetUri,
      language,
      state: 'queued',
      startedAt: 0,
      currentMs: 0,
    };
    this.playbacks.set(id, playback);
    const queue = this.playbackQueues.get(targetUri) ?? [];
    this.playbackQueues.set(targetUri, queue);
    queue.push(playback);
    if (queue.length === 1) setImmediate(() => this.startItem(playback));
    return playback;
  }

  playbackJson(p: PlaybackState, state = p.state): Record<string, unknown> {
    const json: Record<string, unknown> = {
      id: p.id,
      media_uri: p.mediaUris[p.index],
      target_uri: p.targetUri,
      language: p.language,
      state,
    };
    const next = p.mediaUris[p.index + 1];
    if (next !== undefined) json.next_media_uri = next;
    return json;
  }

  private playbackScope(p: PlaybackState): EventScope {
    const [kind, id] = splitTarget(p.targetUri);
    if (kind === 'bridge') {
      const bridge = this.bridges.get(id);
      return bridge ? { bridge } : {};
    }
    const channel = this.channels.get(id);
    return channel ? channelScope(channel) : {};
  }

  private publishPlayback(type: string, p: PlaybackState, state = p.state): void {
    const scope = this.playbackScope(p);
    // After a hangup the channel is gone from the map; its subscribers still hear of the playback.
    if (!scope.channels && !scope.bridge) {
      const [, id] = splitTarget(p.targetUri);
      const stale = this.lastKnownSubscribers.get(id);
      if (stale)
        for (const app of stale) this.publishTo(app, type, { playback: this.playbackJson(p, state) });
      return;
    }
    this.publish(type, { playback: this.playbackJson(p, state) }, scope);
  }

  /** Subscribers of channels being torn down, so their last playback events still reach them. */
  private readonly lastKnownSubscribers = new Map<string, Set<string>>();

  private startItem(p: PlaybackState): void {
    if (!this.playbacks.has(p.id)) return;
    const uri = p.mediaUris[p.index]!;
    p.state = 'playing';
    p.startedAt = Date.now();
    this.publishPlayback('PlaybackStarted', p);
    this.emit('media-played', p.targetUri, uri);
    const outcome = mediaOutcome(uri, this.options.sounds, (name) => {
      const rec = this.storedRecordings.get(name);
      return rec ? ulawMs(rec.audio) : undefined;
    });
    if (outcome.kind === 'stuck' || outcome.kind === 'endless') return;
    if (outcome.kind === 'missing') {
      if (p.index < p.mediaUris.length - 1) this.advance(p);
      else this.finishPlayback(p, 'failed');
      return;
    }
    this.schedule(p, this.scaled(outcome.ms));
  }

  private schedule(p: PlaybackState, ms: number): void {
    p.currentMs = ms;
    p.startedAt = Date.now();
    p.timer = setTimeout(() => {
      p.timer = undefined;
      if (p.index < p.mediaUris.length - 1) this.advance(p);
      else this.finishPlayback(p, 'done');
    }, ms);
  }

  private advance(p: PlaybackState): void {
    this.publishPlayback('PlaybackContinuing', p, 'continuing');
    p.index++;
    this.startItem(p);
  }

  /** Ends a playback (also `DELETE /playbacks/{id}`, which finishes with state `done`). */
  finishPlayback(p: PlaybackState, state: 'done' | 'failed'): void {
    if (p.timer) clearTimeout(p.timer);
    if (!this.playbacks.delete(p.id)) return;
    const wasQueued = p.state === 'queued';
    p.state = state;
    const queue = this.playbackQueues.get(p.targetUri) ?? [];
    const i = queue.indexOf(p);
    if (i >= 0) queue.splice(i, 1);
    if (!wasQueued) this.publishPlayback('PlaybackFinished', p);
    if (i === 0 && queue[0]) this.startItem(queue[0]);
    if (queue.length === 0) this.playbackQueues.delete(p.targetUri);
  }

  getPlayback(id: string): PlaybackState {
    const p = this.playbacks.get(id);
    if (!p) throw new PbxError(404, 'Playback not found');
    return p;
  }

  controlPlayback(p: PlaybackState, operation: string): void {
    switch (operation) {
      case 'pause':
        if (p.state === 'playing' && p.timer) {
          clearTimeout(p.timer);
          p.timer = undefined;
          p.remainingMs = Math.max(0, p.currentMs - (Date.now() - p.startedAt));
        }
        p.state = 'paused';
        return;
      case 'unpause':
        if (p.state === 'paused') {
          p.state = 'playing';
          this.publishPlayback('PlaybackStarted', p);
          if (p.remainingMs !== undefined) this.schedule(p, p.remainingMs);
        }
        return;
      case 'restart':
      case 'reverse':
      case 'forward':
        return;
      default:
        throw new PbxError(400, `Invalid operation ${operation}`);
    }
  }

  // ---------------------------------------------------------------- recordings

  record(
    channel: SimChannel,
    opts: {
      name: string;
      format: string;
      maxDurationSeconds?: number;
      maxSilenceSeconds?: number;
      beep?: boolean;
      terminateOn?: string;
      ifExists?: string;
    },
  ): LiveRecording {
    if (!['wav', 'gsm', 'ulaw', 'alaw', 'sln', 'wav49'].includes(opts.format)) {
      throw new PbxError(422, 'specified format is unknown on this system');
    }
    const terminateOn = opts.terminateOn ?? 'none';
    if (!/^(none|any|[0-9*#]+)$/.test(terminateOn)) throw new PbxError(400, 'terminateOn invalid');
    const ifExists = opts.ifExists ?? 'fail';
    if ((this.storedRecordings.has(opts.name) || this.liveRecordings.has(opts.name)) && ifExists === 'fail') {
      throw new PbxError(409, `Recording '${opts.name}' already exists and can not be overwritten`);
    }
    const rec: LiveRecording = {
      name: opts.name,
      format: opts.format,
      targetUri: `channel:${channel.id}`,
      channelId: channel.id,
      state: channel.bridgeId ? 'failed' : 'recording',
      startedAt: Date.now(),
      frames: [],
      terminateOn,
      talkingMs: 0,
      silenceMs: 0,
      lastTalkAt: Date.now(),
      muted: false,
      timers: [],
    };
    if (opts.maxSilenceSeconds !== undefined && opts.maxSilenceSeconds > 0)
      rec.maxSilenceSeconds = opts.maxSilenceSeconds;
    if (rec.state === 'failed') {
      // Asterisk 22 accepts the request (201, "queued") and then fails it: nothing is recorded or
      // stored, no RecordingStarted.
      const recording = { ...this.recordingJson(rec), cause: 'Cannot record channel while in bridge' };
      setImmediate(() => this.publish('RecordingFailed', { recording }, channelScope(channel)));
      return rec;
    }
    this.liveRecordings.set(rec.name, rec);
    if (opts.beep) this.emit('media-played', `channel:${channel.id}`, 'sound:beep');
    setImmediate(() =>
      this.publish('RecordingStarted', { recording: this.recordingJson(rec) }, channelScope(channel)),
    );
    const beepMs = opts.beep ? this.scaled(DEFAULT_SOUNDS.beep ?? 422) : 0;
    if (opts.maxDurationSeconds && opts.maxDurationSeconds > 0) {
      rec.timers.push(
        setTimeout(() => this.finishRecording(rec, true, false), beepMs + opts.maxDurationSeconds * 1000),
      );
    }
    if (rec.maxSilenceSeconds) {
      const limit = rec.maxSilenceSeconds * 1000;
      const check = setInterval(() => {
        if (rec.state === 'recording' && Date.now() - rec.lastTalkAt >= limit)
          this.finishRecording(rec, true, false);
      }, 50);
      rec.timers.push(check);
    }
    return rec;
  }

  recordingJson(rec: LiveRecording, final = false): Record<string, unknown> {
    const json: Record<string, unknown> = {
      name: rec.name,
      format: rec.format,
      state: rec.state,
      target_uri: rec.targetUri,
    };
    if (final) {
      json.duration = Math.floor((Date.now() - rec.startedAt) / 1000);
      if (rec.maxSilenceSeconds !== undefined) {
        json.talking_duration = Math.floor(rec.talkingMs / 1000);
        json.silence_duration = Math.floor(rec.silenceMs / 1000);
      }
    }
    return json;
  }

  /** Ends a live recording: keeps it as a stored recording unless `discard` (cancel). */
  finishRecording(rec: LiveRecording, withEvent: boolean, discard: boolean): void {
    if (!this.liveRecordings.delete(rec.name)) return;
    for (const t of rec.timers) clearTimeout(t);
    rec.state = 'done';
    if (!discard || withEvent) {
      // A hangup still keeps what was recorded, as Asterisk does.
      if (!discard || this.channels.get(rec.channelId)?.hungUp !== false) {
        this.storedRecordings.set(rec.name, {
          name: rec.name,
          format: rec.format,
          audio: Buffer.concat(rec.frames),
        });
      }
    }
    if (withEvent) {
      const channel = this.channels.get(rec.channelId);
      const fields = { recording: this.recordingJson(rec, true) };
      if (channel) this.publish('RecordingFinished', fields, channelScope(channel));
      else
        for (const app of this.lastKnownSubscribers.get(rec.channelId) ?? [])
          this.publishTo(app, 'RecordingFinished', fields);
    }
  }

  /** `DELETE /recordings/live/{name}`: stops and discards. */
  cancelRecording(rec: LiveRecording): void {
    this.finishRecording(rec, true, true);
    this.storedRecordings.delete(rec.name);
  }

  getLiveRecording(name: string): LiveRecording {
    const rec = this.liveRecordings.get(name);
    if (!rec) throw new PbxError(404, 'Recording not found');
    return rec;
  }

  getStoredRecording(name: string): StoredRecording {
    const rec = this.storedRecordings.get(name);
    if (!rec) throw new PbxError(404, 'Recording not found');
    return rec;
  }

  // ---------------------------------------------------------------- bridges

  createBridge(opts: { id?: string; type?: string; name?: string; app?: string }): SimBridge {
    const id = opts.id ?? randomUUID();
    if (this.bridges.has(id)) throw new PbxError(409, `Bridge with id '${id}' already exists`);
    const types = (opts.type ?? 'mixing').split(',');
    if (
      !types.every((t) =>
        [
          'mixing',
          'holding',
          'dtmf_events',
          'proxy_media',
          'video_sfu',
          'video_single',
          'sdp_label',
        ].includes(t),
      )
    ) {
      throw new PbxError(500, "Unable to create bridge. Possible duplicate bridge id '(null)'");
    }
    const bridge: SimBridge = {
      id,
      name: opts.name ?? '',
      bridgeType: types.includes('holding') ? 'holding' : 'mixing',
      channels: [],
      creationtime: ariTimestamp(),
      subscribers: new Set(opts.app ? [opts.app] : []),
    };
    this.bridges.set(id, bridge);
    this.publish('BridgeCreated', { bridge: bridgeJson(bridge) }, { bridge });
    return bridge;
  }

  getBridge(id: string): SimBridge {
    const b = this.bridges.get(id);
    if (!b) throw new PbxError(404, 'Bridge not found');
    return b;
  }

  addToBridge(bridge: SimBridge, channel: SimChannel): void {
    if (channel.bridgeId === bridge.id) {
      this.removeFromBridge(bridge, channel, true);
    } else if (channel.bridgeId) {
      const other = this.bridges.get(channel.bridgeId);
      if (other) this.removeFromBridge(other, channel, true);
    }
    bridge.channels.push(channel.id);
    channel.bridgeId = bridge.id;
    this.publish(
      'ChannelEnteredBridge',
      { bridge: bridgeJson(bridge), channel: channelJson(channel) },
      { bridge, channels: [channel] },
    );
    this.ami('BridgeEnter', 'call,all', [['BridgeUniqueid', bridge.id], ...amiChannelFields(channel)]);
    const members = bridge.channels.map((id) => this.channels.get(id)).filter((c): c is SimChannel => !!c);
    if (members.length === 2) {
      const [a, b] = members as [SimChannel, SimChannel];
      this.channelEvent('ChannelVarset', a, { variable: 'BRIDGEPEER', value: b.name });
      this.channelEvent('ChannelVarset', b, { variable: 'BRIDGEPEER', value: a.name });
      if (!b.connected.number && a.caller.number) {
        b.connected = { ...a.caller };
        this.channelEvent('ChannelConnectedLine', b);
      }
    }
  }

  removeFromBridge(bridge: SimBridge, channel: SimChannel, withEvents: boolean): void {
    const i = bridge.channels.indexOf(channel.id);
    if (i < 0) throw new PbxError(422, 'Channel not in this bridge');
    bridge.channels.splice(i, 1);
    channel.bridgeId = undefined;
    if (withEvents) {
      this.publish(
        'ChannelLeftBridge',
        { bridge: bridgeJson(bridge), channel: channelJson(channel) },
        { bridge, channels: [channel] },
      );
      this.ami('BridgeLeave', 'call,all', [['BridgeUniqueid', bridge.id], ...amiChannelFields(channel)]);
    }
  }

  destroyBridge(bridge: SimBridge): void {
    for (const id of [...bridge.channels]) {
      const c = this.channels.get(id);
      if (c) this.removeFromBridge(bridge, c, true);
    }
    for (const p of this.playbackQueues.get(`bridge:${bridge.id}`) ?? []) this.finishPlayback(p, 'done');
    this.bridges.delete(bridge.id);
    this.publish('BridgeDestroyed', { bridge: bridgeJson(bridge) }, { bridge });
  }

  // ---------------------------------------------------------------- messages

  /** Delivers an out-of-dialog MESSAGE to an endpoint (`pjsip:bob`, `PJSIP/bob`, `sip:bob@host`). */
  sendMessage(msg: {
    to: string;
    from: string;
    body: string;
    variables?: Record<string, string>;
    /** The To header when it differs from the destination (AMI Destination + To). */
    toHeader?: string;
  }): SentText {
    const destination = parseMessageDestination(msg.to);
    if (destination === 'bad-tech') throw new PbxError(404, 'Endpoint not found');
    const ep = destination ? this.endpoints.get(destination.endpoint) : undefined;
    if (!ep?.online) throw new PbxError(404, 'Endpoint not found');
    const sent: SentText = {
      endpoint: ep.resource,
      to: msg.to,
      toUser: (msg.toHeader ? userOf(msg.toHeader) : destination?.user) ?? ep.resource,
      from: msg.from || `<sip:${ep.resource}@127.0.0.1>`,
      body: msg.body,
      variables: { ...msg.variables },
      inDialog: false,
    };
    this.sentTexts.push(sent);
    this.emit('text-sent', sent);
    return sent;
  }

  /**
   * A SIP MESSAGE arriving from endpoint `endpoint` (sender user `from`) for user `to`. Returns the
   * SIP status the sender gets, as Asterisk 22 decides it: 202 when an app is subscribed to the
   * sender's endpoint or the endpoint's message context has an extension for `to`, else 404.
   */
  receiveMessage(msg: { endpoint: string; from: string; to: string; body: string }): 202 | 404 {
    const sentBytes = Buffer.byteLength(msg.body);
    // res_pjsip_messaging copies the body into a 1024-byte buffer (nothing when it does not fit)
    // and drops trailing CR/LF.
    const body = sentBytes > MAX_INBOUND_TEXT_BYTES ? '' : msg.body.replace(/[\r\n]+$/, '');
    const ep = this.endpoints.get(msg.endpoint);
    const scope = { endpoint: `PJSIP/${msg.endpoint}` };
    const subscribed = [...this.apps.values()].some((app) => this.appWants(app, scope));
    const routed = ep ? this.dialplan.findExtension(ep.messageContext, msg.to) !== undefined : false;
    if (!subscribed && !routed) return 404;
    const host = msg.endpoint === msg.from ? '127.0.0.1' : `${msg.endpoint}.example.net`;
    const name = msg.endpoint === msg.from ? ep?.callerId.name : undefined;
    const fromHeader = name ? `"${name}" <sip:${msg.from}@${host}>` : `<sip:${msg.from}@${host}>`;
    const channelIds = [...this.channels.values()]
      .filter((c) => c.tech === 'PJSIP' && c.resource === msg.endpoint)
      .map((c) => c.id);
    this.publish(
      'TextMessageReceived',
      {
        endpoint: { technology: 'PJSIP', resource: msg.endpoint, state: 'online', channel_ids: channelIds },
        message: {
          from: fromHeader,
          to: `pjsip:${msg.to}@127.0.0.1`,
          body,
          variables: {
            PJSIP_RECVADDR: '127.0.0.1:5061',
            PJSIP_TRANSPORT: 'udp',
            PJSIP_ENDPOINT: name ?? msg.endpoint,
            From: `${fromHeader};tag=${randomUUID().slice(0, 8)}`,
            To: `<sip:${msg.to}@127.0.0.1>`,
            'Content-Type': 'text/plain',
            'Content-Length': String(sentBytes),
          },
        },
      },
      scope,
    );
    this.emit('text-received', msg);
    return 202;
  }

  // ---------------------------------------------------------------- lifecycle

  /** Remembers who hears about a channel before it is torn down (see publishPlayback). */
  rememberSubscribers(channel: SimChannel): void {
    this.lastKnownSubscribers.set(channel.id, new Set(channel.subscribers));
  }

  /** What a clean `core restart now` tells Stasis apps before dropping them: each channel is hung up. */
  endStasisForShutdown(): void {
    for (const channel of [...this.channels.values()]) {
      if (!channel.stasisApp) continue;
      this.channelEvent('ChannelHangupRequest', channel, { cause: 4, soft: true });
      this.channelEvent('StasisEnd', channel);
      channel.stasisApp = undefined;
    }
  }

  /** Drops all state, as a restart does. Channels end without ARI events (the sockets are gone). */
  reset(initialDialplan: () => void): void {
    for (const c of [...this.channels.values()]) this.hangup(c, { initiator: 'system' });
    for (const p of this.playbacks.values()) if (p.timer) clearTimeout(p.timer);
    for (const r of this.liveRecordings.values()) for (const t of r.timers) clearTimeout(t);
    this.playbacks.clear();
    this.playbackQueues.clear();
    this.liveRecordings.clear();
    this.bridges.clear();
    this.apps.clear();
    this.globals.clear();
    this.lastKnownSubscribers.clear();
    this.dialplan.clear();
    initialDialplan();
    this.counter = 0;
    this.techCounters.clear();
    this.startedAt = Date.now();
    this.reloadedAt = this.startedAt;
  }
}

/** Splits dialplan application data on commas (no quoting, as the simulator needs no more). */
export function splitAppData(data: string): string[] {
  return data === '' ? [] : data.split(',');
}

function parseGoto(args: string[], from: DialplanLocation): DialplanLocation {
  if (args.length >= 3) return { context: args[0]!, exten: args[1]!, priority: Number(args[2]) || 1 };
  if (args.length === 2) return { context: from.context, exten: args[0]!, priority: Number(args[1]) || 1 };
  return { ...from, priority: Number(args[0]) || 1 };
}

function splitTarget(uri: string): [string, string] {
  const i = uri.indexOf(':');
  return [uri.slice(0, i), uri.slice(i + 1)];
}

/**
 * The endpoint of a message destination, and the Request-URI user when the destination names one:
 * `pjsip:bob`, `pjsip:bob@domain`, `PJSIP/bob`, `pjsip:PJSIP/+15551234@pstn` (the number at the
 * trunk's contact), `pjsip:pstn/sip:+15551234@host`, `sip:bob@host`. Another tech → 'bad-tech'.
 */
function parseMessageDestination(to: string): { endpoint: string; user?: string } | undefined | 'bad-tech' {
  const m = /^(\w+)[:/](.*)$/.exec(to);
  if (!m) return undefined;
  const tech = m[1]!.toLowerCase();
  if (tech !== 'pjsip' && tech !== 'sip') return 'bad-tech';
  const rest = m[2]!;
  const dial = /^PJSIP\/([^@]+)@(.+)$/.exec(rest);
  if (dial) return { endpoint: dial[2]!, user: dial[1]! };
  const slash = rest.indexOf('/');
  if (slash > 0) {
    const user = userOf(rest.slice(slash + 1));
    return { endpoint: rest.slice(0, slash), ...(user ? { user } : {}) };
  }
  const endpoint = rest.replace(/^sip:/, '').split('@')[0];
  return endpoint ? { endpoint } : undefined;
}

/** The user part of `sip:user@host`, `pjsip:user@host`, `PJSIP/user` or `<sip:user@host>`. */
function userOf(uri: string): string | undefined {
  const m = /^<?(?:[a-z]+:|PJSIP\/)?([^@>;/]+)/i.exec(uri.trim());
  return m?.[1];
}

/** Mean absolute amplitude of a µ-law frame, cheaply: distance of each byte from silence. */
function frameEnergy(frame: Buffer): number {
  let sum = 0;
  for (const b of frame) {
    const u = ~b & 0x7f; // strip sign: 0 is loudest negative-free magnitude index
    sum += (u >> 4) * 600 + (u & 0x0f) * 20;
  }
  return frame.length ? sum / frame.length : 0;
}
