import { type AriRequestFn, seg } from '../ari-http.js';
import type { Application } from '../ari-types.js';

/**
 * An event source URI: `channel:<id>`, `bridge:<id>`, `endpoint:<tech>/<resource>`,
 * `endpoint:<tech>` (a whole technology) or `deviceState:<name>`.
 */
export type EventSource = string;

/** `/applications`: Stasis applications and their subscriptions. */
export class ApplicationsResource {
  readonly #request: AriRequestFn;

  constructor(request: AriRequestFn) {
    this.#request = request;
  }

  /** Applications registered now (an app exists only while its websocket is connected). */
  list(): Promise<Application[]> {
    return this.#request('GET', '/applications');
  }

  /** One application. */
  get(app: string): Promise<Application> {
    return this.#request('GET', `/applications/${seg(app)}`);
  }

  /**
   * Subscribes the app to event sources, e.g. `endpoint:PJSIP/alice` to receive its
   * TextMessageReceived. Unknown source → 422; bad scheme → 400; unknown app → 404.
   */
  subscribe(app: string, eventSource: EventSource | readonly EventSource[]): Promise<Application> {
    return this.#request('POST', `/applications/${seg(app)}/subscription`, { query: { eventSource } });
  }

  /** Unsubscribes; a source that was not subscribed rejects with 422. */
  unsubscribe(app: string, eventSource: EventSource | readonly EventSource[]): Promise<Application> {
    return this.#request('DELETE', `/applications/${seg(app)}/subscription`, { query: { eventSource } });
  }
}
