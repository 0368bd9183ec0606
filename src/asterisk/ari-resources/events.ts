import { type AriRequestFn, seg } from '../ari-http.js';
import type { EventSource } from './applications.js';

/** Options of {@link EventsResource.userEvent}. */
export interface UserEventOptions {
  /** Application that receives the event. Default: the client's app. */
  application?: string;
  /** Sources the event is about, e.g. `channel:<id>`; the event then carries that channel. */
  source?: EventSource | readonly EventSource[];
  /** Fields of the event's `userevent` object. */
  variables?: Readonly<Record<string, string>>;
}

/** `/events`: user events (the events websocket itself is managed by the client). */
export class EventsResource {
  readonly #request: AriRequestFn;
  readonly #defaultApp: string;

  constructor(request: AriRequestFn, defaultApp: string) {
    this.#request = request;
    this.#defaultApp = defaultApp;
  }

  /** Raises a ChannelUserevent named `eventName` in an application. Unknown app → 404. */
  userEvent(eventName: string, options: UserEventOptions = {}): Promise<void> {
    return this.#request('POST', `/events/user/${seg(eventName)}`, {
      query: { application: options.application ?? this.#defaultApp, source: options.source },
      body: options.variables ? { variables: options.variables } : undefined,
    });
  }
}
