import { EventEmitter } from 'node:events';
import { installAmiActions } from './ami-actions.js';
import { AmiServer } from './ami-server.js';
import { AriServer } from './ari-server.js';
import { CallFileSpool } from './call-file-spool.js';
import { Pbx, type SentText } from './pbx.js';
import { splitTarget } from './playbacks.js';
import type { EndpointBehaviour, SimChannel, SimEndpoint } from './sim-model.js';
import { SimPhone } from './sim-phone.js';

/** A simulated PJSIP endpoint: a phone or a trunk. */
export interface SimulatorEndpoint {
  /** Endpoint name (`alice`). */
  name: string;
  /** Caller-ID name of calls from it. */
  callerName?: string;
  /** Dialplan context of its calls; default the simulator's `callContext`. */
  context?: string;
  /** Dialplan context of its SIP MESSAGEs; default the simulator's `textContext`. */
  messageContext?: string;
  /** Without a contact it is offline: calls to it fail with `Allocation failed`. Default true. */
  online?: boolean;
  /** How it answers calls placed to it. Default: answers after 50 ms. */
  behaviour?: Partial<EndpointBehaviour>;
}

/** Options of {@link Simulator.start}. */
export interface SimulatorOptions {
  /** Address to listen on. Default 127.0.0.1. */
  host?: string;
  /** ARI (HTTP + websocket) port; 0 (default) picks a free one. */
  ariPort?: number;
  /** AMI port; 0 (default) picks a free one. */
  amiPort?: number;
  ariUser?: string;
  ariPassword?: string;
  amiUser?: string;
  amiPassword?: string;
  /** Endpoints besides the default `alice`, `bob`, `1001` and the `pstn` trunk. */
  endpoints?: SimulatorEndpoint[];
  /** Default context of endpoint calls. Default `asteramisk-call`. */
  callContext?: string;
  /** Default message context of endpoints. Default `asteramisk-text`. */
  textContext?: string;
  /** Scales simulated durations (prompts, ringing). Default 1: real time. */
  timeScale?: number;
  /** Extra sound files and their durations in ms (`{ 'custom/welcome': 2300 }`). */
  sounds?: Record<string, number>;
  /** Delay before AMI answers a failed login (Asterisk: about 1 s). */
  amiLoginFailureDelayMs?: number;
  /** A spool folder: call files moved into `<it>/outgoing` are placed, and archived in `<it>/outgoing_done`. */
  spoolDirectory?: string;
  /**
   * Serve ARI over https/wss and AMI over TLS with this certificate and key (PEM), as http.conf and
   * manager.conf `tlsenable` do. `ari`/`ami: false` keeps that one plain. Default: both plain.
   */
  tls?: { cert: string; key: string; ari?: boolean; ami?: boolean };
}

/** Credentials of the simulator's ARI and AMI users. */
export interface SimulatorCredentials {
  ariUser: string;
  ariPassword: string;
  amiUser: string;
  amiPassword: string;
}

/**
 * Where the simulated Asterisk is: `running`; `shutting-down` (a restart's last moments: ARI
 * answers 503 `Shutdown in progress`); `down` (ports closed); `booting` (ports open, modules
 * loading: ARI 404/503, AMI logins work but pbx_config's actions do not, no FullyBooted yet);
 * `frozen` (stopped without closing anything, see {@link Simulator.freeze}).
 */
export type SimulatorState = 'running' | 'shutting-down' | 'down' | 'booting' | 'frozen';

/** Options of {@link Simulator.restart}. */
export interface SimulatorRestartOptions {
  /** Ports closed for this long (ms). Default 50. */
  downMs?: number;
  /**
   * The boot window (ms) after the ports open again: ARI answers an HTML 404 for its first half
   * and 503 `Asterisk not booted` for the second; AMI accepts logins at once but answers
   * pbx_config's actions (DialplanExtensionAdd/Remove) `Invalid/unknown command`, and sends
   * `FullyBooted` when the window ends. Default 100 (a real `core restart now`: ~250 ms).
   */
  bootMs?: number;
  /**
   * How long (ms) ARI answers 503 `Shutdown in progress` after the channels were hung up, before the
   * ports close. Default 60 (real: ~100 ms from the command to refused connections).
   */
  shutdownMs?: number;
  /** A crash or a cut network: no hang-up events, no Shutdown, no 503 window. */
  crash?: boolean;
}

/** Thrown by {@link Simulator.call} when the PBX refuses the call (no such extension). */
export class SimCallRejectedError extends Error {
  constructor(
    readonly sipStatus: number,
    message: string,
  ) {
    super(message);
  }
}

/**
 * A simulated Asterisk 22 on loopback: ARI (REST + events websocket), AMI over TCP and RTP for
 * externalMedia channels, behaving on the wire like the real PBX. Tests and `npm run demo` drive
 * it through a test-facing API that plays the phones.
 *
 * ```ts
 * const sim = await Simulator.start();
 * const phone = await sim.call({ from: 'alice', to: '1000' });
 * await phone.press('12#');
 * ```
 */
export class Simulator extends EventEmitter {
  readonly pbx: Pbx;
  readonly host: string;
  readonly credentials: SimulatorCredentials;
  private ari!: AriServer;
  private ami!: AmiServer;
  private ariPortNumber: number;
  private amiPortNumber: number;
  private readonly phones = new Map<string, SimPhone>();
  private readonly incoming: SimPhone[] = [];
  private readonly incomingWaiters: { endpoint?: string; resolve: (p: SimPhone) => void }[] = [];
  private readonly dialplanSeed: [string, string, number, string, string][] = [];
  private readonly options: SimulatorOptions;
  private closed = false;
  private spool?: CallFileSpool;
  private readonly consumedTexts = new WeakSet<SentText>();
  private uninstallAmi?: () => void;
  private stateNow: SimulatorState = 'running';
  /** The state before {@link freeze}, restored by {@link thaw}. */
  private stateBeforeFreeze: SimulatorState = 'running';
  private bootTimers: NodeJS.Timeout[] = [];
  /** Ends the open boot window (see finishBoot); undefined when none is open. */
  private endBoot: (() => void) | undefined;

  private constructor(options: SimulatorOptions) {
    super();
    this.options = options;
    this.host = options.host ?? '127.0.0.1';
    this.ariPortNumber = options.ariPort ?? 0;
    this.amiPortNumber = options.amiPort ?? 0;
    this.credentials = {
      ariUser: options.ariUser ?? 'asteramisk',
      ariPassword: options.ariPassword ?? 'asteramisk-ari-secret',
      amiUser: options.amiUser ?? 'asteramisk',
      amiPassword: options.amiPassword ?? 'asteramisk-ami-secret',
    };
    this.pbx = new Pbx({
      timeScale: options.timeScale ?? 1,
      ...(options.sounds ? { sounds: options.sounds } : {}),
    });
    // Tests and benches follow many calls at once (onChannelState, onSentText): not a leak.
    this.pbx.setMaxListeners(0);
    const callContext = options.callContext ?? 'asteramisk-call';
    const textContext = options.textContext ?? 'asteramisk-text';
    const defaults: SimulatorEndpoint[] = [
      { name: 'alice', callerName: 'Alice' },
      { name: 'bob', callerName: 'Bob' },
      { name: '1001', callerName: 'Desk 1001' },
      { name: 'pstn', callerName: '' },
    ];
    for (const ep of [...defaults, ...(options.endpoints ?? [])]) {
      const endpoint: SimEndpoint = {
        resource: ep.name,
        callerId: { name: ep.callerName ?? '', number: ep.name },
        context: ep.context ?? callContext,
        messageContext: ep.messageContext ?? textContext,
        online: ep.online ?? true,
        behaviour: { onCall: 'answer', ringMs: 50, ...ep.behaviour },
      };
      this.pbx.endpoints.set(ep.name, endpoint);
    }
    this.wirePhones();
  }

  /** Starts a simulator and resolves once ARI and AMI accept connections. */
  static async start(options: SimulatorOptions = {}): Promise<Simulator> {
    const sim = new Simulator(options);
    await sim.listen();
    if (options.spoolDirectory) {
      sim.spool = new CallFileSpool(sim.pbx, options.spoolDirectory);
      await sim.spool.start();
    }
    return sim;
  }

  /** ARI base URL, `http://127.0.0.1:<port>` (`https://` with TLS; the client adds `/ari`). */
  get ariUrl(): string {
    return `${this.ariTls ? 'https' : 'http'}://${this.host}:${this.ariPortNumber}`;
  }

  /** Whether ARI is served over https/wss (see {@link SimulatorOptions.tls}). */
  get ariTls(): boolean {
    return this.options.tls !== undefined && this.options.tls.ari !== false;
  }

  /** Whether AMI is served over TLS (see {@link SimulatorOptions.tls}). */
  get amiTls(): boolean {
    return this.options.tls !== undefined && this.options.tls.ami !== false;
  }

  get ariPort(): number {
    return this.ariPortNumber;
  }

  get amiPort(): number {
    return this.amiPortNumber;
  }

  /**
   * Options for `resolveConfig`/`Server.create` that point the library at this simulator, TLS flags
   * included (the CA that signed `tls.cert` is the caller's to pass, as `tlsCaFile`).
   */
  connectionOptions(): {
    asteriskHost: string;
    ariPort: number;
    amiPort: number;
    ariUser: string;
    ariPassword: string;
    amiUser: string;
    amiPassword: string;
    ariTls: boolean;
    amiTls: boolean;
  } {
    return {
      asteriskHost: this.host,
      ariPort: this.ariPort,
      amiPort: this.amiPort,
      ...this.credentials,
      ariTls: this.ariTls,
      amiTls: this.amiTls,
    };
  }

  private async listen(booting = false): Promise<void> {
    this.ari = new AriServer(this.pbx, {
      users: { [this.credentials.ariUser]: this.credentials.ariPassword },
    });
    if (booting) this.ari.booting = 'http-only';
    await this.ari.listen(this.ariPortNumber, this.host, this.ariTls ? this.options.tls : undefined);
    this.ariPortNumber = this.ari.port;
    this.ami = new AmiServer({
      users: { [this.credentials.amiUser]: this.credentials.amiPassword },
      loginFailureDelayMs: this.options.amiLoginFailureDelayMs ?? 1000,
    });
    if (booting) this.ami.startBoot();
    this.uninstallAmi?.();
    this.uninstallAmi = installAmiActions(this.ami, this.pbx);
    await this.ami.listen(this.amiPortNumber, this.host, this.amiTls ? this.options.tls : undefined);
    this.amiPortNumber = this.ami.port;
  }

  /** Where the simulated Asterisk is (see {@link SimulatorState}). */
  get state(): SimulatorState {
    return this.stateNow;
  }

  /** Resolves once the PBX is fully booted and not frozen (at once when it is). */
  whenRunning(): Promise<void> {
    if (this.stateNow === 'running') return Promise.resolve();
    return new Promise((resolve) => {
      const check = () => {
        if (this.stateNow !== 'running') return;
        this.off('state', check);
        resolve();
      };
      this.on('state', check);
    });
  }

  private setState(state: SimulatorState): void {
    if (this.stateNow === state) return;
    this.stateNow = state;
    this.emit('state', state);
    if (state === 'running') this.emit('fully-booted');
  }

  /** Adds a dialplan step, as extensions.conf would have it (kept across restarts). */
  addExtension(context: string, exten: string, priority: number, app: string, appData = ''): void {
    this.dialplanSeed.push([context, exten, priority, app, appData]);
    this.pbx.dialplan.add(context, exten, priority, { app, appData, registrar: 'pbx_config' });
  }

  /** Changes how an endpoint answers calls placed to it. */
  setEndpointBehaviour(endpoint: string, behaviour: Partial<EndpointBehaviour> & { online?: boolean }): void {
    const ep = this.pbx.endpoints.get(endpoint);
    if (!ep) throw new Error(`unknown simulator endpoint ${endpoint}`);
    const { online, ...rest } = behaviour;
    if (online !== undefined) ep.online = online;
    ep.behaviour = { ...ep.behaviour, ...rest };
  }

  /**
   * Places a call into the PBX, as a SIP phone sending INVITE. `from` is an endpoint name, or a
   * caller number arriving over the `pstn` trunk. Rejects with {@link SimCallRejectedError} (404)
   * when no extension of the endpoint's context matches `to`.
   */
  async call(opts: { from: string; to: string; fromName?: string; via?: string }): Promise<SimPhone> {
    if (this.stateNow !== 'running') {
      // Down, booting (res_pjsip not loaded yet) or frozen: the phone gets no call through.
      throw new SimCallRejectedError(
        this.stateNow === 'frozen' ? 408 : 503,
        `The PBX is ${this.stateNow}: the call was not accepted`,
      );
    }
    const endpointName = opts.via ?? (this.pbx.endpoints.has(opts.from) ? opts.from : 'pstn');
    const endpoint = this.pbx.endpoints.get(endpointName);
    if (!endpoint) throw new SimCallRejectedError(401, `No matching endpoint for ${endpointName}`);
    if (!this.pbx.dialplan.findExtension(endpoint.context, opts.to)) {
      throw new SimCallRejectedError(404, `No extension ${opts.to} in context ${endpoint.context}`);
    }
    const callerName = opts.fromName ?? (endpointName === opts.from ? endpoint.callerId.name : '');
    const channel = this.pbx.createChannel({
      tech: 'PJSIP',
      resource: endpointName,
      state: 'Ring',
      caller: { name: callerName, number: opts.from },
      dialplan: { context: endpoint.context, exten: opts.to, priority: 1, app_name: '', app_data: '' },
      protocolId: `${Math.floor(Math.random() * 1e5)}-${process.pid}@127.0.0.1`,
      originated: false,
    });
    const phone = new SimPhone(this.pbx, channel);
    this.phones.set(channel.id, phone);
    this.pbx.runDialplan(channel, { context: endpoint.context, exten: opts.to, priority: 1 });
    return phone;
  }

  /**
   * Resolves with the phone of the next call the application places to `endpoint` (any endpoint
   * when omitted) once that phone answers it.
   */
  nextIncomingCall(endpoint?: string): Promise<SimPhone> {
    const i = this.incoming.findIndex((p) => endpoint === undefined || p.channel.resource === endpoint);
    if (i >= 0) return Promise.resolve(this.incoming.splice(i, 1)[0]!);
    return new Promise((resolve) =>
      this.incomingWaiters.push({ ...(endpoint ? { endpoint } : {}), resolve }),
    );
  }

  /**
   * Sends a SIP MESSAGE to user `to`, from endpoint `from`, or from a number arriving over the
   * `pstn` trunk (or `via`). Resolves with the SIP status the sender got: 202 Accepted, or 404 Not
   * Found when no app listens to the sender's endpoint and no dialplan handles `to` (as Asterisk 22).
   */
  async sendText(opts: { from: string; to: string; body: string; via?: string }): Promise<202 | 404> {
    const endpoint = opts.via ?? (this.pbx.endpoints.has(opts.from) ? opts.from : 'pstn');
    if (!this.pbx.endpoints.has(endpoint)) throw new Error(`unknown simulator endpoint ${endpoint}`);
    return this.pbx.receiveMessage({ endpoint, from: opts.from, to: opts.to, body: opts.body });
  }

  /** Messages the PBX delivered to endpoints (AMI MessageSend, ARI sendMessage, AMI SendText). */
  sentTexts(): SentText[] {
    return [...this.pbx.sentTexts];
  }

  /**
   * Resolves with the next delivered message (already delivered or future) that `match` accepts
   * and that no earlier call returned: successive calls walk through the messages in order.
   */
  nextSentText(match: (text: SentText) => boolean = () => true): Promise<SentText> {
    const found = this.pbx.sentTexts.find((t) => !this.consumedTexts.has(t) && match(t));
    if (found) {
      this.consumedTexts.add(found);
      return Promise.resolve(found);
    }
    return new Promise((resolve) => {
      const onSent = (text: SentText) => {
        if (this.consumedTexts.has(text) || !match(text)) return;
        this.pbx.off('text-sent', onSent);
        this.consumedTexts.add(text);
        resolve(text);
      };
      this.pbx.on('text-sent', onSent);
    });
  }

  /** Calls `listener` with every message the PBX delivers from now on; returns the undo. */
  onSentText(listener: (text: SentText) => void): () => void {
    this.pbx.on('text-sent', listener);
    return () => this.pbx.off('text-sent', listener);
  }

  /** The phone of a live or ended call by channel id. */
  phone(channelId: string): SimPhone | undefined {
    return this.phones.get(channelId);
  }

  /**
   * Restarts like `core restart now`: each channel in Stasis gets ChannelHangupRequest (cause 4,
   * soft) and StasisEnd, ARI answers every request with 503 `Shutdown in progress` for `shutdownMs`,
   * AMI sessions get `Event: Shutdown` and are closed, the ARI websockets drop without a close
   * frame, every call ends, the dialplan loses what AMI added. With `crash`, nothing is sent first
   * (a crash or a cut network). The ports come back after `downMs`, then the boot window of
   * `bootMs` runs (see {@link SimulatorRestartOptions}); the simulator emits `fully-booted` (and
   * {@link whenRunning} resolves) at its end. Resolves once the ports accept again.
   */
  async restart(options: SimulatorRestartOptions = {}): Promise<void> {
    if (this.closed) throw new Error('simulator is closed');
    for (const timer of this.bootTimers) clearTimeout(timer);
    this.bootTimers = [];
    this.endBoot = undefined;
    if (this.stateNow === 'frozen') this.thaw();
    if (!options.crash) {
      this.setState('shutting-down');
      this.pbx.endStasisForShutdown();
      this.ari.shuttingDown = true;
      const shutdownMs = options.shutdownMs ?? 60;
      const closeDelayMs = Math.min(13, shutdownMs);
      const amiDone = this.ami.shutdown({ restart: true, closeDelayMs });
      await new Promise((resolve) => setTimeout(resolve, shutdownMs));
      await amiDone;
    }
    await this.ami.close();
    await this.ari.close();
    this.setState('down');
    this.pbx.reset(() => {
      for (const [context, exten, priority, app, appData] of this.dialplanSeed) {
        this.pbx.dialplan.add(context, exten, priority, { app, appData, registrar: 'pbx_config' });
      }
    });
    await new Promise((resolve) => setTimeout(resolve, options.downMs ?? 50));
    const bootMs = options.bootMs ?? 100;
    await this.listen(bootMs > 0);
    if (bootMs > 0) {
      this.setState('booting');
      const ari = this.ari;
      const ami = this.ami;
      this.endBoot = () => {
        for (const timer of this.bootTimers) clearTimeout(timer);
        this.bootTimers = [];
        this.endBoot = undefined;
        ari.booting = false;
        ami.finishBoot();
        if (this.ami !== ami || this.closed) return;
        if (this.stateNow === 'frozen') this.stateBeforeFreeze = 'running';
        else this.setState('running');
      };
      const endBoot = this.endBoot;
      this.bootTimers.push(
        setTimeout(() => {
          ari.booting = 'not-booted';
        }, bootMs / 2),
        setTimeout(endBoot, bootMs),
      );
      for (const timer of this.bootTimers) timer.unref();
    } else {
      this.setState('running');
    }
    this.emit('restarted');
  }

  /**
   * Ends the boot window of the last {@link restart} now, as if its `bootMs` had run out: a test
   * that checks what happens during the window opens a long one and ends it when its checks are
   * done, instead of racing a short one. Does nothing when no boot window is open.
   */
  finishBoot(): void {
    this.endBoot?.();
  }

  /**
   * Stops answering without closing a socket, as an Asterisk stopped with SIGSTOP or behind a
   * blackholed port: ARI and AMI read and write nothing more (events, responses, websocket pongs,
   * AMI greetings are held back; new connections are accepted but not served). Calls stay up.
   * {@link thaw} resumes, delivering what was held back.
   */
  freeze(): void {
    if (this.closed || this.stateNow === 'frozen') return;
    this.stateBeforeFreeze = this.stateNow;
    this.ari.freeze();
    this.ami.freeze();
    this.setState('frozen');
  }

  /**
   * Like `module unload <name>` on the CLI, for the AMI actions the simulator attributes to a module
   * (`pbx_config`: DialplanExtensionAdd/Remove answer `Invalid/unknown command`) and for ARI
   * (`chan_rtp`: externalMedia answers 500, as Asterisk 22.10.1 does; `GET /asterisk/modules` omits
   * it). A restart loads it again.
   */
  unloadModule(name: string): void {
    this.ami.unloadModule(name);
    this.pbx.unloadedModules.add(name);
  }

  /** Undoes {@link unloadModule}. */
  loadModule(name: string): void {
    this.ami.loadModule(name);
    this.pbx.unloadedModules.delete(name);
  }

  /** Undoes {@link freeze}. */
  thaw(): void {
    if (this.stateNow !== 'frozen') return;
    this.ari.thaw();
    this.ami.thaw();
    this.setState(this.stateBeforeFreeze);
  }

  /** Stops everything: every call ends, every socket closes. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const timer of this.bootTimers) clearTimeout(timer);
    this.bootTimers = [];
    this.endBoot = undefined;
    this.spool?.close();
    this.pbx.reset(() => {});
    await Promise.all([this.ari.close(), this.ami.close()]);
  }

  private wirePhones(): void {
    const phonesOfTarget = (targetUri: string): SimPhone[] => {
      const [kind, id] = splitTarget(targetUri);
      if (kind === 'channel') {
        const p = this.phones.get(id);
        return p ? [p] : [];
      }
      const bridge = this.pbx.bridges.get(id);
      return (bridge?.channels ?? []).map((c) => this.phones.get(c)).filter((p): p is SimPhone => !!p);
    };
    this.pbx.on('media-played', (targetUri: string, uri: string) => {
      for (const p of phonesOfTarget(targetUri)) p.mediaPlayed(uri);
    });
    this.pbx.on('dtmf-sent', (channel: SimChannel, digits: string) =>
      this.phones.get(channel.id)?.digitsSent(digits),
    );
    this.pbx.on('text-in-call', (channel: SimChannel, text: string) =>
      this.phones.get(channel.id)?.textReceived(text),
    );
    this.pbx.on('hangup', (channel: SimChannel, cause: number) => {
      const phone = this.phones.get(channel.id);
      if (!phone) return;
      phone.markEnded(cause);
      // Keep ended phones only briefly reachable: a long test run must not grow without bound.
      this.phones.delete(channel.id);
    });
    this.pbx.on('answered', (channel: SimChannel) => {
      const phone = new SimPhone(this.pbx, channel);
      this.phones.set(channel.id, phone);
      const w = this.incomingWaiters.findIndex(
        (x) => x.endpoint === undefined || x.endpoint === channel.resource,
      );
      if (w >= 0) this.incomingWaiters.splice(w, 1)[0]!.resolve(phone);
      else this.incoming.push(phone);
    });
  }
}
