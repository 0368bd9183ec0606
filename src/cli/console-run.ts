/**
 * `asteramisk console APP`: runs an app file with the web console turned on through the
 * environment (ASTERAMISK_CONSOLE_PORT/_HOST/_TOKEN, read by Server.create), so an existing app
 * gets the console without a code change. A `.ts` app runs through tsx (`node --import tsx`).
 */
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { resolve } from 'node:path';

/** Runs `app` until it exits (or Ctrl-C, which it receives too); resolves with its exit code. */
export async function runWithConsole(
  app: string,
  opts: { port: string; host: string; token?: string },
): Promise<number> {
  const file = resolve(app);
  const args: string[] = [];
  if (/\.[cm]?ts$/.test(file)) {
    try {
      args.push('--import', createRequire(file).resolve('tsx'));
    } catch {
      console.error(
        'asteramisk console: a .ts app needs tsx (npm install --save-dev tsx), or run its build (.js)',
      );
      return 1;
    }
  }
  args.push(file);
  const env = {
    ...process.env,
    ASTERAMISK_CONSOLE_PORT: opts.port,
    ASTERAMISK_CONSOLE_HOST: opts.host,
    ...(opts.token ? { ASTERAMISK_CONSOLE_TOKEN: opts.token } : {}),
  };
  const host = opts.host.includes(':') ? `[${opts.host}]` : opts.host;
  console.log(`asteramisk console: http://${host}:${opts.port}/ (once ${app} has started its Server)`);
  const child = spawn(process.execPath, args, { env, stdio: 'inherit' });
  // The child gets Ctrl-C from the terminal itself; this process just waits for it to finish.
  const ignore = () => {};
  process.on('SIGINT', ignore);
  process.on('SIGTERM', () => child.kill('SIGTERM'));
  return new Promise((done) => {
    child.on('exit', (code, signal) => {
      process.off('SIGINT', ignore);
      done(code ?? (signal ? 1 : 0));
    });
  });
}
