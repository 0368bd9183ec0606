import WebSocket from 'ws';

/**
 * A deliberately dumb ARI peer (fetch + ws, no library code) for checking the simulator's wire
 * behaviour byte for byte, independent of our AriClient.
 */
export interface RawAri {
  rest(method: string, path: string, query?: Record<string, string>, body?: unknown): Promise<RawResponse>;
  /** Resolves with the next event of `type` (or matching `pred`), including events already received. */
  next(type: string, pred?: (e: RawEvent) => boolean): Promise<RawEvent>;
  /** Resolves with the first event, received before or after the call, that `pred` accepts (consumes nothing). */
  waitFor(pred: (e: RawEvent) => boolean): Promise<RawEvent>;
  events: RawEvent[];
  close(): void;
}

export interface RawResponse {
  status: number;
  headers: Headers;
  text: string;
  json: unknown;
}

export type RawEvent = Record<string, unknown> & { type: string };

export async function rawAri(
  baseUrl: string,
  user: string,
  pass: string,
  app: string,
  opts: { subscribeAll?: boolean } = {},
): Promise<RawAri> {
  const auth = `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;
  const events: RawEvent[] = [];
  const waiters: {
    type: string;
    pred?: (e: RawEvent) => boolean;
    resolve: (e: RawEvent) => void;
    from: number;
  }[] = [];
  const watchers: { pred: (e: RawEvent) => boolean; resolve: (e: RawEvent) => void }[] = [];
  const wsUrl = `${baseUrl.replace('http', 'ws')}/ari/events?app=${app}${opts.subscribeAll ? '&subscribeAll=true' : ''}`;
  const ws = new WebSocket(wsUrl, { headers: { Authorization: auth } });
  let consumed = 0;
  ws.on('message', (data) => {
    const e = JSON.parse(String(data)) as RawEvent;
    events.push(e);
    for (const w of [...watchers]) {
      if (w.pred(e)) {
        watchers.splice(watchers.indexOf(w), 1);
        w.resolve(e);
      }
    }
    for (const w of [...waiters]) {
      if (e.type === w.type && (!w.pred || w.pred(e))) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(e);
      }
    }
  });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  return {
    events,
    async rest(method, path, query, body) {
      const qs = query ? `?${new URLSearchParams(query)}` : '';
      const res = await fetch(`${baseUrl}/ari${path}${qs}`, {
        method,
        headers: { Authorization: auth, ...(body ? { 'Content-Type': 'application/json' } : {}) },
        ...(body ? { body: JSON.stringify(body) } : {}),
      });
      const text = await res.text();
      let json: unknown;
      try {
        json = text ? JSON.parse(text) : null;
      } catch {
        json = undefined;
      }
      return { status: res.status, headers: res.headers, text, json };
    },
    next(type, pred) {
      // Events are consumed in order: each call returns the first matching event not returned before.
      for (let i = consumed; i < events.length; i++) {
        const e = events[i]!;
        if (e.type === type && (!pred || pred(e))) {
          consumed = i + 1;
          return Promise.resolve(e);
        }
      }
      return new Promise((resolve) =>
        waiters.push({
          type,
          ...(pred ? { pred } : {}),
          from: consumed,
          resolve: (e) => {
            consumed = events.indexOf(e) + 1;
            resolve(e);
          },
        }),
      );
    },
    waitFor(pred) {
      const seen = events.find(pred);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve) => watchers.push({ pred, resolve }));
    },
    close() {
      ws.close();
    },
  };
}
