import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** Output and exit code of one `asteramisk` run. */
export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
  /** stdout, one entry per line. */
  lines: string[];
}

/**
 * Runs the CLI from its TypeScript source (`node --import tsx src/cli/main.ts …`, what
 * `npx tsx src/cli/main.ts` does) as a child process. The child's environment is `env` over this
 * process's, minus every Asterisk, asteramisk and speech-engine variable, so the parent's
 * settings (e.g. a real PBX's) never leak into a simulator run.
 */
export function runCli(
  args: string[],
  env: Record<string, string> = {},
  timeoutMs = 30_000,
): Promise<CliRun> {
  const base: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v === undefined) continue;
    if (/^(ASTERISK_|ASTERAMISK_|RTP_|SYSTEM_|OPENAI_|AZURE_OPENAI_|GOOGLE_APPLICATION_)/.test(k)) continue;
    base[k] = v;
  }
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], {
      cwd: ROOT,
      env: { ...base, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`asteramisk ${args.join(' ')} ran over ${timeoutMs} ms\n${stdout}\n${stderr}`));
    }, timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, lines: stdout.split('\n').filter((l) => l !== '') });
    });
  });
}

/** The one output line starting with `mark` and containing `what`, or undefined. */
export function lineOf(run: CliRun, mark: '✔' | '✘' | '!' | '-', what: string): string | undefined {
  return run.lines.find((l) => l.startsWith(mark) && l.includes(what));
}
