/**
 * The simulator's dialplan: contexts of extensions of numbered priorities, with Asterisk's
 * pattern syntax (`_X.`, `_NXX`, `_[1-5]!`…). Only the in-memory part that AMI
 * DialplanExtensionAdd/Remove manipulates; there is no extensions.conf parser.
 */

/** One priority of one extension. */
export interface DialplanStep {
  app: string;
  appData: string;
  /** Who created it, as `dialplan show` reports it. */
  registrar: string;
}

/** Where a channel is in the dialplan. */
export interface DialplanLocation {
  context: string;
  exten: string;
  priority: number;
}

type Extension = Map<number, DialplanStep>;

/** Result of {@link Dialplan.add}. */
export type AddResult = 'added' | 'exists';

/** Does `exten` match `pattern` the way Asterisk matches? Literal unless it starts with `_`. */
export function matchesPattern(pattern: string, exten: string): boolean {
  if (!pattern.startsWith('_')) return pattern === exten;
  const p = pattern.slice(1);
  let i = 0;
  let j = 0;
  while (i < p.length) {
    const c = p[i]!;
    if (c === '.') return j < exten.length; // one or more of anything
    if (c === '!') return true; // zero or more of anything
    if (j >= exten.length) return false;
    const d = exten[j]!;
    if (c === '[') {
      const close = p.indexOf(']', i);
      if (close < 0) return false;
      if (!inCharClass(p.slice(i + 1, close), d)) return false;
      i = close + 1;
      j++;
      continue;
    }
    const upper = c.toUpperCase();
    if (upper === 'X' && !/[0-9]/.test(d)) return false;
    if (upper === 'Z' && !/[1-9]/.test(d)) return false;
    if (upper === 'N' && !/[2-9]/.test(d)) return false;
    if (!['X', 'Z', 'N'].includes(upper) && c !== d) return false;
    i++;
    j++;
  }
  return j === exten.length;
}

function inCharClass(cls: string, ch: string): boolean {
  for (let k = 0; k < cls.length; k++) {
    if (cls[k + 1] === '-' && k + 2 < cls.length) {
      if (ch >= cls[k]! && ch <= cls[k + 2]!) return true;
      k += 2;
    } else if (cls[k] === ch) return true;
  }
  return false;
}

/** Asterisk prefers literal extensions over patterns, and more specific patterns over looser ones. */
function specificity(pattern: string): number {
  if (!pattern.startsWith('_')) return 1_000_000;
  if (pattern.includes('!')) return pattern.length;
  if (pattern.includes('.')) return 1000 + pattern.length;
  return 10_000 + pattern.length;
}

export class Dialplan {
  private readonly contexts = new Map<string, Map<string, Extension>>();

  /** Adds a step. A missing context is created (as pbx_config does for AMI). */
  add(context: string, exten: string, priority: number, step: DialplanStep, replace = false): AddResult {
    let ctx = this.contexts.get(context);
    if (!ctx) {
      ctx = new Map();
      this.contexts.set(context, ctx);
    }
    let ext = ctx.get(exten);
    if (!ext) {
      ext = new Map();
      ctx.set(exten, ext);
    }
    if (ext.has(priority) && !replace) return 'exists';
    ext.set(priority, step);
    return 'added';
  }

  /** Removes one priority, or the whole extension. The (possibly empty) context stays, as in Asterisk. */
  remove(context: string, exten: string, priority?: number): boolean {
    const ext = this.contexts.get(context)?.get(exten);
    if (!ext) return false;
    if (priority === undefined) return this.contexts.get(context)!.delete(exten);
    const removed = ext.delete(priority);
    if (ext.size === 0) this.contexts.get(context)!.delete(exten);
    return removed;
  }

  hasContext(context: string): boolean {
    return this.contexts.has(context);
  }

  /** The extension (literal or pattern) of `context` that `exten` runs, if any. */
  findExtension(context: string, exten: string): string | undefined {
    const ctx = this.contexts.get(context);
    if (!ctx) return undefined;
    let best: string | undefined;
    for (const name of ctx.keys()) {
      if (matchesPattern(name, exten) && (best === undefined || specificity(name) > specificity(best)))
        best = name;
    }
    return best;
  }

  /** The step at a location, resolving patterns. */
  step(location: DialplanLocation): DialplanStep | undefined {
    const name = this.findExtension(location.context, location.exten);
    return name === undefined
      ? undefined
      : this.contexts.get(location.context)!.get(name)!.get(location.priority);
  }

  /** The next priority after `location` in its extension, as Asterisk's priority + 1 (no gaps skipped). */
  next(location: DialplanLocation): DialplanLocation {
    return { ...location, priority: location.priority + 1 };
  }

  /** Every step, for `dialplan show`. */
  dump(): { context: string; exten: string; priority: number; step: DialplanStep }[] {
    const out: { context: string; exten: string; priority: number; step: DialplanStep }[] = [];
    for (const [context, ctx] of this.contexts)
      for (const [exten, ext] of ctx)
        for (const [priority, step] of [...ext].sort((a, b) => a[0] - b[0]))
          out.push({ context, exten, priority, step });
    return out;
  }

  clear(): void {
    this.contexts.clear();
  }
}
