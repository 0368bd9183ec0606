import { type FSWatcher, watch } from 'node:fs';
import { appendFile, mkdir, readdir, readFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { type Pbx, PbxError } from './pbx.js';
import { parseCallerId } from './sim-model.js';

/**
 * The simulator's pbx_spool: call files moved into `<root>/outgoing` are originated, then archived
 * in `<root>/outgoing_done` with `Status: Completed` (answered), `Expired` (not answered or busy
 * after its retries) or `Failed` (unusable file), as Asterisk does with `Archive: yes`.
 */
export class CallFileSpool {
  private watcher?: FSWatcher;
  private readonly seen = new Set<string>();

  constructor(
    private readonly pbx: Pbx,
    private readonly root: string,
  ) {}

  async start(): Promise<void> {
    await mkdir(join(this.root, 'outgoing'), { recursive: true });
    await mkdir(join(this.root, 'outgoing_done'), { recursive: true });
    this.watcher = watch(join(this.root, 'outgoing'), () => void this.scan());
    await this.scan();
  }

  close(): void {
    this.watcher?.close();
  }

  private async scan(): Promise<void> {
    const dir = join(this.root, 'outgoing');
    let names: string[];
    try {
      names = await readdir(dir);
    } catch {
      return;
    }
    for (const name of names) {
      if (this.seen.has(name)) continue;
      this.seen.add(name);
      void this.process(name);
    }
  }

  private async process(name: string): Promise<void> {
    const source = join(this.root, 'outgoing', name);
    let text: string;
    try {
      text = await readFile(source, 'utf8');
    } catch {
      return;
    }
    const fields = new Map<string, string[]>();
    for (const line of text.split('\n')) {
      const m = /^(\w+):\s*(.*)$/.exec(line.trim());
      if (!m) continue;
      fields.set(m[1]!.toLowerCase(), [...(fields.get(m[1]!.toLowerCase()) ?? []), m[2]!]);
    }
    const get = (k: string) => fields.get(k)?.[0];
    const archive = async (status: 'Completed' | 'Expired' | 'Failed') => {
      const done = join(this.root, 'outgoing_done', name);
      await rename(source, done).catch(() => {});
      await appendFile(done, `Status: ${status}\n`);
    };
    const channel = get('channel');
    const application = get('application');
    if (!channel || (!application && !get('extension'))) return archive('Failed');
    const variables: Record<string, string> = {};
    for (const v of fields.get('setvar') ?? []) {
      const eq = v.indexOf('=');
      if (eq > 0) variables[v.slice(0, eq)] = v.slice(eq + 1);
    }
    const [app, ...appArgs] = (get('data') ?? '').split(',');
    const callerId = parseCallerId(get('callerid'));
    try {
      this.pbx.originate({
        endpoint: channel,
        ...(application?.toLowerCase() === 'stasis' && app ? { app, appArgs } : {}),
        ...(!application
          ? {
              location: {
                context: get('context') ?? 'default',
                exten: get('extension')!,
                priority: Number(get('priority') ?? 1),
              },
            }
          : {}),
        ...(callerId ? { callerId } : {}),
        timeoutSec: Number(get('waittime') ?? 45),
        variables,
        onOutcome: (outcome) => void archive(outcome === 'answered' ? 'Completed' : 'Expired'),
      });
    } catch (error) {
      if (error instanceof PbxError) await archive('Expired');
      else throw error;
    }
  }
}
