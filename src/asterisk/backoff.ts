/** Options of {@link backoffDelay}. */
export interface BackoffOptions {
  /** First delay in ms. */
  initialMs: number;
  /** Upper bound of any delay in ms. */
  maxMs: number;
  /** Growth factor per attempt. */
  factor?: number;
  /** Source of randomness in [0, 1), injectable for tests. */
  random?: () => number;
}

/**
 * Capped exponential backoff with "full jitter": a uniform delay in [base/2, base] where
 * base = min(max, initial * factor^attempt). Half the base is kept so a flapping PBX is not
 * hammered with near-zero delays; the jitter spreads many clients reconnecting after a restart.
 */
export function backoffDelay(attempt: number, options: BackoffOptions): number {
  const factor = options.factor ?? 2;
  const random = options.random ?? Math.random;
  const base = Math.min(options.maxMs, options.initialMs * factor ** Math.max(0, attempt));
  return Math.round(base / 2 + random() * (base / 2));
}
