import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { Bridges } from './bridges.js';
import { Dialplan, type DialplanLocation } from './dialplan.js';
import { channelScope, type EventScope } from './event-scope.js';
import { isTalkingFrame } from './frame-energy.js';
import { DEFAULT_SOUNDS } from './media-catalog.js';
import { type DialRequest, dial, type OriginateRequest, originate } from './originate.js';
import { PbxError } from './pbx-error.js';
import { type PlaybackState, Playbacks, playbackJson } from './playbacks.js';
import {
  type LiveRecording,
  Recordings,
  type RecordOptions,
  recordingJson,
  type StoredRecording,
} from './recordings.js';
import {
  amiChannelFields,
  ariTimestamp,
  type ChannelInit,
  causeText,
  channelJson,
  type SimBridge,
  type SimChannel,
  type SimChannelState,
  type SimEndpoint,
} from './sim-model.js';

export { PbxError } from './pbx-error.js';

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

/** Events Asterisk sends to the app itself, not on the channel's topic: never via the endpoint. */
const APP_ONLY_EVENTS = new Set(['StasisStart', 'StasisEnd', 'ApplicationMoveFailed']);

/** Options of the simulated PBX. */
export interface PbxOptions {
  /** Multiplies every simulated duration (playbacks, ringing); 0.01 makes a 1.4 s prompt last 14 ms. */
  timeScale: number;
  sounds: Record<string, number>;
}

/** The dialplan variable the simulator expands in application data. */
const EXTEN_VARIABLE = ['$', '{EXTEN}'].join('');

const QOS_VARS = ['RTPAUDIOQOS', 'RTPAUDIOQOSJITTER', 'RTPAUDIOQOSLOSS', 'RTPAUDIOQOSRTT', 'RTPAUDIOQOSMES'];

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
  readonly bridges: Map<string, SimBridge>;
  readonly playbacks: Map<string, PlaybackState>;
  readonly liveRecordings: Map<string, LiveRecording>;
  readonly storedRecordings: Map<string, StoredRecording>;
  readonly endpoints = new Map<string, SimEndpoint>();
  readonly globals = new Map<string, string>();
  readonly sentTexts: SentText[] = [];
  /** Modules unloaded (`Simulator.unloadModule`) until the next restart: `chan_rtp`, `pbx_config`… */
  readonly unloadedModules = new Set<string>();
  private readonly apps = new Map<string, StasisApp>();
  /** Apps whose websocket went away while subscribed to endpoints (see listedAppNames). */
  private readonly inactiveApps = new Map<string, StasisApp>();
  private counter = 0;
  private readonly techCounters = new Map<string, number>();
  /** Subscribers of channels being torn down, so their last playback and recording events reach them. */
  private readonly lastKnownSubscribers = new Map<string, Set<string>>();
  private readonly player: Playbacks;
  private readonly recorder: Recordings;
  private readonly bridging: Bridges;
  startedAt = Date.now();
  reloadedAt = Date.now();
  readonly options: PbxOptions;

  constructor(options: Partial<PbxOptions> = {}) {
    super();
    this.options = { timeScale: options.timeScale ?? 1, sounds: { ...DEFAULT_SOUNDS, ...options.sounds } };
    // Playbacks, recordings and bridges live in their own modules; each sees only this much of the
    // PBX (its event outlets, its channels, the time scale), not its private state.
    const outlet = {
      publish: (type: string, fields: Record<string, unknown>, scope: EventScope) =>
        this.publish(type, fields, scope),
      publishToFormerSubscribers: (channelId: string, type: string, fields: Record<string, unknown>) => {
        for (const app of this.lastKnownSubscribers.get(channelId) ?? []) this.publishTo(app, type, fields);
      },
      channel: (id: string) => this.channels.get(id),
      mediaPlayed: (targetUri: string, mediaUri: string) => this.emit('media-played', targetUri, mediaUri),
      scaled: (ms: number) => this.scaled(ms),
    };
    this.recorder = new Recordings(outlet);
    this.player = new Playbacks({
      ...outlet,
      bridge: (id) => this.bridges.get(id),
      sounds: () => this.options.sounds,
      recordingMs: (name) => this.recorder.storedMs(name),
    });
    this.bridging = new Bridges({
      ...outlet,
      ami: (event, privilege, fields) => this.ami(event, privilege, fields),
      channelEvent: (type, channel, extra) => this.channelEvent(type, channel, extra),
      finishPlaybacksOn: (bridgeId) => this.player.finishOnBridge(bridgeId),
    });
    this.bridges = this.bridging.byId;
    this.playbacks = this.player.byId;
    this.liveRecordings = this.recorder.live;
    this.storedRecordings = this.recorder.stored;
  }

  /** Scales a simulated duration. */
  scaled(ms: number): number {
    return Math.max(0, Math.round(ms * this.options.timeScale));
  }

  // ---------------------------------------------------------------- apps and events

  /** Registers (or replaces) the app `name` for a websocket. Returns an unregister function. */
  registerApp(name: string, subscribeAll: boolean, send: (json: string) => void): () => void {
    const previous = this.apps.get(name) ?? this.inactiveApps.get(name);
    this.inactiveApps.delete(name);
    if (this.apps.has(name) && previous) {
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
      if (this.apps.get(name) !== app) return;
      this.apps.delete(name);
      // Asterisk 22 keeps an app whose websocket went away while it has subscriptions: still
      // listed, inactive (nothing reaches it), its subscriptions kept for when it registers again.
      if (app.endpointSubscriptions.size > 0) this.inactiveApps.set(name, app);
    };
  }

  hasApp(name: string): boolean {
    return this.apps.has(name);
  }

  appNames(): string[] {
    return [...this.apps.keys()];
  }

  /**
   * The apps `GET /applications` lists: the registered ones, and, as on Asterisk 22.10.1, those
   * whose websocket went away while channels were still in them or while subscribed to endpoints
   * (inactive: Stasis() and move into them fail): until those channels are gone, or for good.
   */
  listedAppNames(): string[] {
    const listed = new Set([...this.apps.keys(), ...this.inactiveApps.keys()]);
    for (const c of this.channels.values()) if (c.stasisApp && !c.hungUp) listed.add(c.stasisApp);
    return [...listed];
  }

  /** The Application object of ARI (also for an inactive app still holding channels). */
  applicationJson(name: string): Record<string, unknown> {
    const app = this.apps.get(name) ?? this.inactiveApps.get(name);
    if (!app && !this.listedAppNames().includes(name)) throw new PbxError(404, 'Application not found');
    const channelIds = [...this.channels.values()].filter((c) => c.subscribers.has(name)).map((c) => c.id);
    const bridgeIds = [...this.bridges.values()].filter((b) => b.subscribers.has(name)).map((b) => b.id);
    return {
      name,
      channel_ids: channelIds,
      bridge_ids: bridgeIds,
      endpoint_ids: [...(app?.endpointSubscriptions ?? [])],
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

  /** Publishes an ARI event on a channel's topic (or to its app only, for Stasis events). */
  channelEvent(
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

  /**
   * `<epoch seconds at creation>.<counter>`, as Asterisk's uniqueid. Asterisk's counter starts
   * again at a restart, which takes over a second; a simulated restart takes milliseconds, so the
   * counter goes on instead: an id never comes back within a run, as on a real PBX.
   */
  private nextId(): string {
    return `${Math.floor(Date.now() / 1000)}.${this.counter++}`;
  }

  private channelName(tech: string, resource: string): string {
    const n = this.techCounters.get(tech) ?? 0;
    this.techCounters.set(tech, n + 1);
    return `${tech}/${resource}-${n.toString(16).padStart(8, '0')}`;
  }

  /** Creates a channel record (no events). */
  createChannel(init: ChannelInit): SimChannel {
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
    this.player.stopOnChannel(channel.id, withEvents);
    this.recorder.stopOnChannel(channel.id, withEvents);
  }

  // ---------------------------------------------------------------- originate

  /**
   * `POST /channels` and AMI Originate. Resolves the outcome asynchronously; the returned channel
   * is the not-yet-answered outbound leg.
   */
  originate(req: OriginateRequest): SimChannel {
    return originate(this, req);
  }

  /** Rings the endpoint of an outbound channel and applies its behaviour. */
  dial(channel: SimChannel, endpoint: SimEndpoint, req: DialRequest): void {
    dial(this, channel, endpoint, req);
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
    this.recorder.dtmf(channel.id, digit);
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
    // Talk detection and recordings judge the frame themselves, only when they exist: most frames
    // have neither, and pay nothing for the energy.
    this.detectTalk(channel, frame);
    this.recorder.hear(channel.id, frame);
    if (!channel.bridgeId) return;
    const bridge = this.bridges.get(channel.bridgeId);
    if (!bridge) return;
    for (const id of bridge.channels) {
      if (id === channel.id) continue;
      const member = this.channels.get(id);
      if (member && !member.muted.has('out') && !member.onHold) member.audioOut?.deliver(frame);
    }
  }

  private detectTalk(channel: SimChannel, frame: Buffer): void {
    const td = channel.talkDetect;
    if (!td) return;
    const now = Date.now();
    if (isTalkingFrame(frame)) {
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

  // ---------------------------------------------------------------- playbacks (playbacks.ts)

  /** Queues a playback of `mediaUris` (played in order as one playback) on a channel or bridge. */
  play(targetUri: string, mediaUris: string[], language: string, playbackId?: string): PlaybackState {
    return this.player.play(targetUri, mediaUris, language, playbackId);
  }

  playbackJson(p: PlaybackState, state = p.state): Record<string, unknown> {
    return playbackJson(p, state);
  }

  /** Ends a playback (also `DELETE /playbacks/{id}`, which finishes with state `done`). */
  finishPlayback(p: PlaybackState, state: 'done' | 'failed'): void {
    this.player.finish(p, state);
  }

  getPlayback(id: string): PlaybackState {
    return this.player.get(id);
  }

  controlPlayback(p: PlaybackState, operation: string): void {
    this.player.control(p, operation);
  }

  // ---------------------------------------------------------------- recordings (recordings.ts)

  record(channel: SimChannel, opts: RecordOptions): LiveRecording {
    return this.recorder.record(channel, opts);
  }

  recordingJson(rec: LiveRecording, final = false): Record<string, unknown> {
    return recordingJson(rec, final);
  }

  /** Ends a live recording: keeps it as a stored recording unless `discard` (cancel). */
  finishRecording(rec: LiveRecording, withEvent: boolean, discard: boolean): void {
    this.recorder.finish(rec, withEvent, discard);
  }

  /** `DELETE /recordings/live/{name}`: stops and discards. */
  cancelRecording(rec: LiveRecording): void {
    this.recorder.cancel(rec);
  }

  getLiveRecording(name: string): LiveRecording {
    return this.recorder.getLive(name);
  }

  getStoredRecording(name: string): StoredRecording {
    return this.recorder.getStored(name);
  }

  // ---------------------------------------------------------------- bridges (bridges.ts)

  createBridge(opts: { id?: string; type?: string; name?: string; app?: string }): SimBridge {
    return this.bridging.create(opts);
  }

  getBridge(id: string): SimBridge {
    return this.bridging.get(id);
  }

  addToBridge(bridge: SimBridge, channel: SimChannel): void {
    this.bridging.add(bridge, channel);
  }

  removeFromBridge(bridge: SimBridge, channel: SimChannel, withEvents: boolean): void {
    this.bridging.remove(bridge, channel, withEvents);
  }

  destroyBridge(bridge: SimBridge): void {
    this.bridging.destroy(bridge);
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
            Via: `SIP/2.0/UDP 127.0.0.1:5061;rport=5061;received=127.0.0.1;branch=z9hG4bK-${randomUUID().slice(0, 8)}`,
            From: `${fromHeader};tag=${randomUUID().slice(0, 8)}`,
            To: `<sip:${msg.to}@127.0.0.1>`,
            'Call-ID': `${randomUUID()}@127.0.0.1`,
            CSeq: '1 MESSAGE',
            'Max-Forwards': '70',
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

  /** Remembers who hears about a channel before it is torn down (see publishToFormerSubscribers). */
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
    this.unloadedModules.clear();
    this.player.clear();
    this.recorder.clearLive();
    this.bridges.clear();
    this.apps.clear();
    this.inactiveApps.clear();
    this.globals.clear();
    this.lastKnownSubscribers.clear();
    this.dialplan.clear();
    initialDialplan();
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
