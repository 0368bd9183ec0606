import { randomUUID } from 'node:crypto';
import { decodeMulaw } from '../media/g711.js';
import { encodeWav } from '../media/wav.js';
import { ExternalMediaLeg } from './external-media-leg.js';
import { type Pbx, PbxError } from './pbx.js';
import {
  ariTimestamp,
  bridgeJson,
  channelJson,
  HANGUP_REASONS,
  parseCallerId,
  type SimChannel,
} from './sim-model.js';

/** A parsed ARI request. */
export interface AriRequest {
  params: Record<string, string>;
  /** Query parameters, merged with scalar keys of a JSON body (as Asterisk does). */
  query: Record<string, string>;
  body: Record<string, unknown>;
}

/** What a route answers. */
export interface AriResponse {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

/** One REST operation: method and path pattern (`:name` segments are parameters). */
export interface AriRoute {
  method: string;
  pattern: string[];
  handler: (req: AriRequest) => AriResponse | Promise<AriResponse>;
}

const ok = (body: unknown): AriResponse => ({ status: 200, body });
const noContent: AriResponse = { status: 204 };

function variablesOf(req: AriRequest): Record<string, string> {
  const v = req.body.variables;
  if (!v || typeof v !== 'object') return {};
  return Object.fromEntries(Object.entries(v as Record<string, unknown>).map(([k, val]) => [k, String(val)]));
}

function bool(v: string | undefined): boolean {
  return v !== undefined && ['true', 'yes', '1'].includes(v.toLowerCase());
}

function optionalNumber(v: string | undefined): number | undefined {
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  return Number.isFinite(n) ? n : undefined;
}

/** Every ARI operation the simulator implements, in the order Asterisk's api-docs list them. */
export function ariRoutes(pbx: Pbx): AriRoute[] {
  const routes: AriRoute[] = [];
  const route = (method: string, path: string, handler: AriRoute['handler']) =>
    routes.push({ method, pattern: path.split('/').filter(Boolean), handler });
  const channel = (req: AriRequest): SimChannel => pbx.getChannel(req.params.channelId!);
  const stasisChannel = (req: AriRequest): SimChannel => pbx.getStasisChannel(req.params.channelId!);

  // ------------------------------------------------------------ asterisk
  route('GET', '/asterisk/info', () =>
    ok({
      build: {
        os: 'Linux',
        kernel: '6.1.0',
        options: '',
        machine: 'x86_64',
        date: '2026-11-23 00:00:00 UTC',
        user: 'root',
      },
      system: { version: '22.10.1', entity_id: pbx.asteriskId },
      config: { name: '', default_language: 'en', setid: { user: '', group: '' } },
      status: {
        startup_time: ariTimestamp(new Date(pbx.startedAt)),
        last_reload_time: ariTimestamp(new Date(pbx.reloadedAt)),
      },
    }),
  );
  route('GET', '/asterisk/ping', () =>
    ok({
      asterisk_id: pbx.asteriskId,
      ping: 'pong',
      timestamp: ariTimestamp(),
    }),
  );
  route('GET', '/asterisk/modules', () =>
    ok(
      [
        'res_ari.so',
        'res_stasis.so',
        'chan_pjsip.so',
        'chan_rtp.so',
        'app_stasis.so',
        'res_pjsip_messaging.so',
      ]
        .filter((name) => !pbx.unloadedModules.has(name.replace(/\.so$/, '')))
        .map((name) => ({ name, description: name, use_count: 0, status: 'Running', support_level: 'core' })),
    ),
  );
  route('GET', '/asterisk/variable', (req) => {
    if (!req.query.variable) throw new PbxError(400, 'Variable name is required');
    return ok({ value: pbx.getVariable(undefined, req.query.variable) });
  });
  route('POST', '/asterisk/variable', (req) => {
    if (!req.query.variable) throw new PbxError(400, 'Variable name is required');
    pbx.setVariable(undefined, req.query.variable, req.query.value ?? '');
    return noContent;
  });

  // ------------------------------------------------------------ endpoints
  const endpointJson = (resource: string) => {
    const ep = pbx.endpoints.get(resource)!;
    const channelIds = [...pbx.channels.values()]
      .filter((c) => c.tech === 'PJSIP' && c.resource === resource)
      .map((c) => c.id);
    return {
      technology: 'PJSIP',
      resource,
      state: ep.online ? 'online' : 'offline',
      channel_ids: channelIds,
    };
  };
  route('GET', '/endpoints', () => ok([...pbx.endpoints.keys()].map(endpointJson)));
  route('GET', '/endpoints/:tech', (req) => {
    if (req.params.tech !== 'PJSIP') throw new PbxError(404, 'No Endpoints found - invalid tech');
    return ok([...pbx.endpoints.keys()].map(endpointJson));
  });
  route('GET', '/endpoints/:tech/:resource', (req) => {
    if (req.params.tech !== 'PJSIP' || !pbx.endpoints.has(req.params.resource!))
      throw new PbxError(404, 'Endpoint not found');
    return ok(endpointJson(req.params.resource!));
  });
  route('PUT', '/endpoints/sendMessage', (req) => {
    if (!req.query.to) throw new PbxError(400, 'To must be specified');
    pbx.sendMessage({
      to: req.query.to,
      from: req.query.from ?? '',
      body: req.query.body ?? '',
      variables: variablesOf(req),
    });
    return { status: 202 };
  });
  route('PUT', '/endpoints/:tech/:resource/sendMessage', (req) => {
    pbx.sendMessage({
      to: `${req.params.tech}/${req.params.resource}`,
      from: req.query.from ?? '',
      body: req.query.body ?? '',
      variables: variablesOf(req),
    });
    return { status: 202 };
  });

  // ------------------------------------------------------------ channels
  route('GET', '/channels', () => ok([...pbx.channels.values()].map((c) => channelJson(c))));
  const originate = (req: AriRequest, channelId?: string): AriResponse => {
    const q = req.query;
    if (!q.endpoint) throw new PbxError(400, 'Endpoint must be specified');
    if (!q.app && !q.extension) throw new PbxError(400, 'Application or extension must be specified');
    const endpoint = q.endpoint;
    const c = pbx.originate({
      endpoint,
      ...(q.app ? { app: q.app, appArgs: q.appArgs ? q.appArgs.split(',') : [] } : {}),
      ...(q.extension
        ? {
            location: {
              context: q.context || 'default',
              exten: q.extension,
              priority: optionalNumber(q.priority) ?? 1,
            },
          }
        : {}),
      ...(parseCallerId(q.callerId) ? { callerId: parseCallerId(q.callerId)! } : {}),
      ...(optionalNumber(q.timeout) !== undefined ? { timeoutSec: optionalNumber(q.timeout)! } : {}),
      ...((channelId ?? q.channelId) ? { channelId: (channelId ?? q.channelId)! } : {}),
      variables: variablesOf(req),
    });
    return ok(channelJson(c));
  };
  route('POST', '/channels', (req) => originate(req));
  route('POST', '/channels/create', (req) => {
    const q = req.query;
    if (!q.endpoint) throw new PbxError(400, 'Endpoint must be specified');
    if (!q.app) throw new PbxError(400, 'Application must be specified');
    const c = pbx.originate({
      endpoint: q.endpoint,
      app: q.app,
      appArgs: q.appArgs ? q.appArgs.split(',') : [],
      ...(q.channelId ? { channelId: q.channelId } : {}),
      variables: variablesOf(req),
      createOnly: true,
    });
    return ok(channelJson(c));
  });
  route('POST', '/channels/externalMedia', async (req) => {
    const q = req.query;
    const transport = q.transport ?? 'udp';
    const encapsulation = q.encapsulation ?? 'rtp';
    if (!q.app) throw new PbxError(400, 'app cannot be empty');
    if (transport !== 'websocket' && !q.external_host) {
      throw new PbxError(400, 'external_host is required for all but websocket server connections');
    }
    if (!q.format) throw new PbxError(400, 'format cannot be empty');
    if (q.direction && !['both', 'in', 'out'].includes(q.direction))
      throw new PbxError(400, 'Invalid direction specified');
    if (encapsulation === 'rtp' && transport !== 'udp')
      throw new PbxError(400, "transport must be 'udp' for rtp encapsulation");
    if (encapsulation !== 'rtp' || transport !== 'udp') {
      throw new PbxError(501, 'The encapsulation and/or transport is not supported');
    }
    // Asterisk 22.10.1 with chan_rtp unloaded: the UnicastRTP channel cannot be requested.
    if (pbx.unloadedModules.has('chan_rtp')) {
      throw new PbxError(500, 'An internal error prevented this request from being handled');
    }
    const hostPort = /^(.+):(\d+)$/.exec(q.external_host!);
    if (!hostPort)
      throw new PbxError(400, 'external_host must be <host>:<port> for all transports other than websocket');
    if (!['ulaw', 'alaw', 'slin', 'slin16'].includes(q.format)) {
      throw new PbxError(500, 'An internal error prevented this request from being handled');
    }
    if (q.channelId && pbx.channels.has(q.channelId))
      throw new PbxError(409, 'Channel with given unique ID already exists');
    const host = hostPort[1]!;
    const port = Number(hostPort[2]);
    let ext: SimChannel | undefined;
    const leg = await ExternalMediaLeg.open('127.0.0.1', host, port, (payload) => {
      if (ext) pbx.audioFromChannel(ext, payload);
    });
    ext = pbx.createChannel({
      tech: 'UnicastRTP',
      resource: q.external_host!,
      name: `UnicastRTP/${q.external_host}-0x${randomUUID().replaceAll('-', '').slice(0, 12)}`,
      ...(q.channelId ? { id: q.channelId } : {}),
      state: 'Down',
      caller: { name: '', number: '' },
      dialplan: {
        context: 'default',
        exten: 's',
        priority: 1,
        app_name: 'AppDial2',
        app_data: '(Outgoing Line)',
      },
      originated: true,
    });
    ext.audioOut = leg;
    ext.subscribers.add(q.app);
    ext.channelvars = {
      UNICASTRTP_LOCAL_PORT: String(leg.localPort),
      UNICASTRTP_LOCAL_ADDRESS: leg.localAddress,
    };
    for (const [k, v] of Object.entries(ext.channelvars)) ext.variables.set(k, v);
    const created = channelJson(ext, true);
    const app = q.app;
    const channelRef = ext;
    setImmediate(() => {
      const dial = (status: string) =>
        pbx.publish(
          'Dial',
          {
            dialstatus: status,
            forward: '',
            dialstring: `${q.external_host}/c(${q.format})`,
            peer: channelJson(channelRef),
          },
          { channels: [channelRef] },
        );
      dial('');
      pbx.setState(channelRef, 'Up');
      dial('ANSWER');
      if (!pbx.enterStasis(channelRef, app, [])) pbx.hangup(channelRef, { initiator: 'dialplan' });
    });
    return ok(created);
  });
  route('GET', '/channels/:channelId', (req) => ok(channelJson(channel(req))));
  route('POST', '/channels/:channelId', (req) => originate(req, req.params.channelId));
  route('DELETE', '/channels/:channelId', (req) => {
    const c = channel(req);
    let cause = 16;
    if (req.query.reason_code !== undefined) cause = Number(req.query.reason_code) || 16;
    else if (req.query.reason !== undefined) {
      const code = HANGUP_REASONS[req.query.reason];
      if (code === undefined) throw new PbxError(400, 'Invalid reason for hangup reason provided');
      cause = code;
    }
    pbx.rememberSubscribers(c);
    pbx.hangup(c, { initiator: 'app', cause });
    return noContent;
  });
  route('POST', '/channels/:channelId/continue', (req) => {
    const c = stasisChannel(req);
    const priority = optionalNumber(req.query.priority);
    pbx.continueInDialplan(c, {
      ...(req.query.context ? { context: req.query.context } : {}),
      ...(req.query.extension ? { exten: req.query.extension } : {}),
      ...(priority !== undefined ? { priority } : {}),
    });
    return noContent;
  });
  route('POST', '/channels/:channelId/move', (req) => {
    if (!req.query.app) throw new PbxError(400, 'app is required');
    pbx.move(stasisChannel(req), req.query.app, req.query.appArgs ? req.query.appArgs.split(',') : []);
    return noContent;
  });
  route('POST', '/channels/:channelId/redirect', (req) => {
    const c = stasisChannel(req);
    if (!req.query.endpoint) throw new PbxError(400, 'endpoint parameter is required');
    pbx.rememberSubscribers(c);
    pbx.hangup(c, { initiator: 'app', cause: 16 });
    return noContent;
  });
  route('POST', '/channels/:channelId/answer', (req) => {
    pbx.answer(stasisChannel(req));
    return noContent;
  });
  for (const op of ['ring', 'progress'] as const) {
    route('POST', `/channels/:channelId/${op}`, (req) => {
      stasisChannel(req);
      return noContent;
    });
  }
  route('DELETE', '/channels/:channelId/ring', (req) => {
    stasisChannel(req);
    return noContent;
  });
  route('POST', '/channels/:channelId/dtmf', (req) => {
    const c = stasisChannel(req);
    if (!req.query.dtmf) throw new PbxError(400, 'DTMF is required');
    pbx.emit('dtmf-sent', c, req.query.dtmf);
    return noContent;
  });
  for (const [op, flag] of [
    ['mute', true],
    ['hold', true],
    ['moh', true],
    ['silence', true],
  ] as const) {
    const apply = (req: AriRequest, on: boolean) => {
      const c = stasisChannel(req);
      if (op === 'mute') {
        const direction = req.query.direction ?? 'both';
        if (!['both', 'in', 'out'].includes(direction))
          throw new PbxError(400, 'Invalid direction specified');
        for (const d of direction === 'both' ? (['in', 'out'] as const) : [direction as 'in' | 'out']) {
          if (on) c.muted.add(d);
          else c.muted.delete(d);
        }
      } else if (op === 'hold') c.onHold = on;
      return noContent;
    };
    route('POST', `/channels/:channelId/${op}`, (req) => apply(req, flag));
    route('DELETE', `/channels/:channelId/${op}`, (req) => apply(req, !flag));
  }
  const play = (targetUri: string, req: AriRequest, playbackId?: string): AriResponse => {
    const media = req.query.media;
    if (!media) throw new PbxError(500, 'Failed to queue media for playback');
    const p = pbx.play(
      targetUri,
      media.split(','),
      req.query.lang || 'en',
      playbackId ?? req.query.playbackId,
    );
    return {
      status: 201,
      body: pbx.playbackJson(p, 'queued'),
      headers: { Location: `/ari/playbacks/${p.id}` },
    };
  };
  route('POST', '/channels/:channelId/play', (req) => play(`channel:${stasisChannel(req).id}`, req));
  route('POST', '/channels/:channelId/play/:playbackId', (req) =>
    play(`channel:${stasisChannel(req).id}`, req, req.params.playbackId),
  );
  route('POST', '/channels/:channelId/record', (req) => {
    const c = stasisChannel(req);
    const q = req.query;
    if (!q.name || !q.format) throw new PbxError(500, 'Error parsing request');
    const rec = pbx.record(c, {
      name: q.name,
      format: q.format,
      ...(optionalNumber(q.maxDurationSeconds) !== undefined
        ? { maxDurationSeconds: optionalNumber(q.maxDurationSeconds)! }
        : {}),
      ...(optionalNumber(q.maxSilenceSeconds) !== undefined
        ? { maxSilenceSeconds: optionalNumber(q.maxSilenceSeconds)! }
        : {}),
      beep: bool(q.beep),
      ...(q.terminateOn ? { terminateOn: q.terminateOn } : {}),
      ...(q.ifExists ? { ifExists: q.ifExists } : {}),
    });
    return {
      status: 201,
      body: { ...pbx.recordingJson(rec), state: 'queued' },
      headers: { Location: `/ari/recordings/live/${encodeURIComponent(rec.name)}` },
    };
  });
  route('GET', '/channels/:channelId/variable', (req) => {
    const c = channel(req);
    if (!req.query.variable) throw new PbxError(400, 'Variable name is required');
    return ok({ value: pbx.getVariable(c, req.query.variable) });
  });
  route('POST', '/channels/:channelId/variable', (req) => {
    const c = channel(req);
    if (!req.query.variable) throw new PbxError(400, 'Variable name is required');
    pbx.setVariable(c, req.query.variable, req.query.value ?? '');
    return noContent;
  });
  route('GET', '/channels/:channelId/rtp_statistics', (req) => {
    const c = channel(req);
    if (c.tech !== 'PJSIP') throw new PbxError(404, 'RTP info not found');
    return ok({ channel_uniqueid: c.id, txcount: 0, rxcount: 0, txploss: 0, rxploss: 0 });
  });

  // ------------------------------------------------------------ bridges
  route('GET', '/bridges', () => ok([...pbx.bridges.values()].map(bridgeJson)));
  const createBridge = (req: AriRequest, id?: string): AriResponse => {
    const b = pbx.createBridge({
      ...((id ?? req.query.bridgeId) ? { id: (id ?? req.query.bridgeId)! } : {}),
      ...(req.query.type ? { type: req.query.type } : {}),
      ...(req.query.name ? { name: req.query.name } : {}),
    });
    // A bridge created over ARI is watched by every connected app, as Stasis does for its creator.
    for (const app of pbx.appNames()) b.subscribers.add(app);
    return ok(bridgeJson(b));
  };
  route('POST', '/bridges', (req) => createBridge(req));
  route('POST', '/bridges/:bridgeId', (req) => createBridge(req, req.params.bridgeId));
  route('GET', '/bridges/:bridgeId', (req) => ok(bridgeJson(pbx.getBridge(req.params.bridgeId!))));
  route('DELETE', '/bridges/:bridgeId', (req) => {
    pbx.destroyBridge(pbx.getBridge(req.params.bridgeId!));
    return noContent;
  });
  route('POST', '/bridges/:bridgeId/addChannel', (req) => {
    const b = pbx.getBridge(req.params.bridgeId!);
    if (!req.query.channel) throw new PbxError(400, 'Channel parameter is required');
    const members = req.query.channel.split(',').map((id) => {
      const c = pbx.channels.get(id);
      if (!c) throw new PbxError(400, 'Channel not found');
      if (!c.stasisApp) throw new PbxError(422, 'Channel not in Stasis application');
      return c;
    });
    for (const c of members) pbx.addToBridge(b, c);
    return noContent;
  });
  route('POST', '/bridges/:bridgeId/removeChannel', (req) => {
    const b = pbx.getBridge(req.params.bridgeId!);
    if (!req.query.channel) throw new PbxError(400, 'Channel parameter is required');
    for (const id of req.query.channel.split(',')) {
      const c = pbx.channels.get(id);
      if (!c) throw new PbxError(400, 'Channel not found');
      pbx.removeFromBridge(b, c, true);
    }
    return noContent;
  });
  route('POST', '/bridges/:bridgeId/play', (req) =>
    play(`bridge:${pbx.getBridge(req.params.bridgeId!).id}`, req),
  );
  route('POST', '/bridges/:bridgeId/play/:playbackId', (req) =>
    play(`bridge:${pbx.getBridge(req.params.bridgeId!).id}`, req, req.params.playbackId),
  );

  // ------------------------------------------------------------ playbacks
  route('GET', '/playbacks/:playbackId', (req) =>
    ok(pbx.playbackJson(pbx.getPlayback(req.params.playbackId!))),
  );
  route('DELETE', '/playbacks/:playbackId', (req) => {
    pbx.finishPlayback(pbx.getPlayback(req.params.playbackId!), 'done');
    return noContent;
  });
  route('POST', '/playbacks/:playbackId/control', (req) => {
    const p = pbx.getPlayback(req.params.playbackId!);
    if (!req.query.operation) throw new PbxError(400, 'operation is required');
    pbx.controlPlayback(p, req.query.operation);
    return noContent;
  });

  // ------------------------------------------------------------ recordings
  route('GET', '/recordings/stored', () =>
    ok(
      [...pbx.storedRecordings.values()]
        .sort((a, b) => a.name.localeCompare(b.name))
        .map((r) => ({ name: r.name, format: r.format })),
    ),
  );
  route('GET', '/recordings/stored/:name', (req) => {
    const r = pbx.getStoredRecording(req.params.name!);
    return ok({ name: r.name, format: r.format });
  });
  route('DELETE', '/recordings/stored/:name', (req) => {
    pbx.getStoredRecording(req.params.name!);
    pbx.storedRecordings.delete(req.params.name!);
    return noContent;
  });
  route('GET', '/recordings/stored/:name/file', (req) => {
    const r = pbx.getStoredRecording(req.params.name!);
    // As Asterisk stores `wav` recordings: 16-bit 8 kHz mono PCM behind a 44-byte header.
    return { status: 200, body: encodeWav(decodeMulaw(r.audio)), headers: { 'Content-Type': 'audio/wav' } };
  });
  route('POST', '/recordings/stored/:name/copy', (req) => {
    const r = pbx.getStoredRecording(req.params.name!);
    const dest = req.query.destinationRecordingName;
    if (!dest) throw new PbxError(400, 'destinationRecordingName is required');
    if (pbx.storedRecordings.has(dest))
      throw new PbxError(409, 'A recording with the same name already exists on the system');
    pbx.storedRecordings.set(dest, { ...r, name: dest });
    return ok({ name: dest, format: r.format });
  });
  route('GET', '/recordings/live/:name', (req) =>
    ok(pbx.recordingJson(pbx.getLiveRecording(req.params.name!))),
  );
  route('DELETE', '/recordings/live/:name', (req) => {
    pbx.cancelRecording(pbx.getLiveRecording(req.params.name!));
    return noContent;
  });
  route('POST', '/recordings/live/:name/stop', (req) => {
    pbx.finishRecording(pbx.getLiveRecording(req.params.name!), true, false);
    return noContent;
  });
  for (const [op, field] of [
    ['pause', 'paused'],
    ['mute', 'muted'],
  ] as const) {
    const set = (req: AriRequest, on: boolean) => {
      const rec = pbx.getLiveRecording(req.params.name!);
      if (field === 'paused') rec.state = on ? 'paused' : 'recording';
      else rec.muted = on;
      return noContent;
    };
    route('POST', `/recordings/live/:name/${op}`, (req) => set(req, true));
    route('DELETE', `/recordings/live/:name/${op}`, (req) => set(req, false));
  }

  // ------------------------------------------------------------ applications, events, sounds
  route('GET', '/applications', () => ok(pbx.listedAppNames().map((n) => pbx.applicationJson(n))));
  route('GET', '/applications/:app', (req) => ok(pbx.applicationJson(req.params.app!)));
  const subscription = (subscribe: boolean) => (req: AriRequest) => {
    const app = req.params.app!;
    if (!pbx.hasApp(app)) throw new PbxError(404, 'Application not found');
    const sources = (req.query.eventSource ?? '').split(',').filter(Boolean);
    if (sources.length === 0) throw new PbxError(400, 'eventSource parameter is required');
    for (const s of sources) pbx.subscribe(app, s, subscribe);
    return ok(pbx.applicationJson(app));
  };
  route('POST', '/applications/:app/subscription', subscription(true));
  route('DELETE', '/applications/:app/subscription', subscription(false));
  route('POST', '/events/user/:eventName', (req) => {
    const app = req.query.application;
    if (!app || !pbx.hasApp(app)) throw new PbxError(404, 'Application not found');
    const fields: Record<string, unknown> = {
      eventname: req.params.eventName,
      userevent: { ...variablesOf(req), eventname: req.params.eventName },
    };
    const source = req.query.source;
    if (source?.startsWith('channel:')) fields.channel = channelJson(pbx.getChannel(source.slice(8)));
    pbx.publishTo(app, 'ChannelUserevent', fields);
    return noContent;
  });
  route('GET', '/sounds', () =>
    ok(
      Object.keys(pbx.options.sounds).map((id) => ({
        id,
        text: '',
        formats: [{ language: 'en', format: 'gsm' }],
      })),
    ),
  );
  return routes;
}
