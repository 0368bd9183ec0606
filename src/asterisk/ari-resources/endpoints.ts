import { type AriRequestFn, seg } from '../ari-http.js';
import type { Endpoint } from '../ari-types.js';

/** A text message to send with {@link EndpointsResource.sendMessage}. */
export interface SendMessageOptions {
  /** Recipient URI, e.g. `pjsip:bob` or `pjsip:bob@example.com`. */
  to: string;
  /**
   * Sender URI, e.g. `sip:service@127.0.0.1`. Send one: without it Asterisk 22 writes
   * `From: <sip:(null)@…>`.
   */
  from: string;
  body: string;
  /** Extra headers, e.g. `{ 'X-Custom': 'v' }` becomes a SIP header. */
  variables?: Readonly<Record<string, string>>;
}

/** `/endpoints`: endpoints and out-of-dialog text messages (SIP MESSAGE). */
export class EndpointsResource {
  readonly #request: AriRequestFn;

  constructor(request: AriRequestFn) {
    this.#request = request;
  }

  /** All endpoints. */
  list(): Promise<Endpoint[]> {
    return this.#request('GET', '/endpoints');
  }

  /** The endpoints of one technology, e.g. `PJSIP`. */
  listByTech(tech: string): Promise<Endpoint[]> {
    return this.#request('GET', `/endpoints/${seg(tech)}`);
  }

  /** One endpoint, e.g. `get('PJSIP', 'alice')`. */
  get(tech: string, resource: string): Promise<Endpoint> {
    return this.#request('GET', `/endpoints/${seg(tech)}/${seg(resource)}`);
  }

  /**
   * Sends a text message (202). An unknown endpoint or one without a contact rejects with
   * {@link AriNotFoundError} (`Endpoint not found`).
   */
  sendMessage(options: SendMessageOptions): Promise<void> {
    return this.#request('PUT', '/endpoints/sendMessage', {
      query: { to: options.to, from: options.from, body: options.body },
      body: options.variables ? { variables: options.variables } : undefined,
    });
  }

  /** Sends a text message to one endpoint, e.g. `sendMessageToEndpoint('PJSIP', 'bob', {...})`. */
  sendMessageToEndpoint(
    tech: string,
    resource: string,
    options: Omit<SendMessageOptions, 'to'>,
  ): Promise<void> {
    return this.#request('PUT', `/endpoints/${seg(tech)}/${seg(resource)}/sendMessage`, {
      query: { from: options.from, body: options.body },
      body: options.variables ? { variables: options.variables } : undefined,
    });
  }
}
