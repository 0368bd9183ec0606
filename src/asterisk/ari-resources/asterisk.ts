import { type AriRequestFn, seg } from '../ari-http.js';
import type { AsteriskInfo, AsteriskPing, Module, Variable } from '../ari-types.js';

/** Parts of {@link AsteriskInfo} `info()` can be limited to. */
export type AsteriskInfoPart = 'build' | 'system' | 'config' | 'status';

/** `/asterisk`: the server itself. */
export class AsteriskResource {
  readonly #request: AriRequestFn;

  constructor(request: AriRequestFn) {
    this.#request = request;
  }

  /** Build, version, configuration and status (all parts unless `only` is given). */
  info(only?: AsteriskInfoPart | readonly AsteriskInfoPart[]): Promise<AsteriskInfo> {
    return this.#request('GET', '/asterisk/info', { query: { only } });
  }

  /** Liveness check; answers 503 `Asterisk not booted` while starting. */
  ping(): Promise<AsteriskPing> {
    return this.#request('GET', '/asterisk/ping');
  }

  /** Loaded modules. */
  listModules(): Promise<Module[]> {
    return this.#request('GET', '/asterisk/modules');
  }

  /** One loaded module, e.g. `res_ari.so`. */
  getModule(name: string): Promise<Module> {
    return this.#request('GET', `/asterisk/modules/${seg(name)}`);
  }

  /** A global variable; one that is not set reads as `''`. */
  async getGlobalVariable(name: string): Promise<string> {
    const result = await this.#request<Variable>('GET', '/asterisk/variable', { query: { variable: name } });
    return result.value;
  }

  /** Sets a global variable (lost when Asterisk restarts). */
  setGlobalVariable(name: string, value: string): Promise<void> {
    return this.#request('POST', '/asterisk/variable', { query: { variable: name, value } });
  }
}
