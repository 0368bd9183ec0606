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
