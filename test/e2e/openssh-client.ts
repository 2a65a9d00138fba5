// The real OpenSSH client pointed at Agate's SSH proxy, with a token for its password.
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** OpenSSH client options for the proxy: a throwaway host key, the token as the one password try. */
export const SSH_CLIENT_OPTIONS = ['-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'LogLevel=ERROR',
  '-o', 'PreferredAuthentications=password,keyboard-interactive', '-o', 'PubkeyAuthentication=no', '-o', 'NumberOfPasswordPrompts=1'];

/** `ssh` arguments for the proxy at `port`: the port, SSH_CLIENT_OPTIONS, then `rest` (options, `box@host`, command). */
export const sshArgs = (port: number, ...rest: string[]): string[] => ['-p', String(port), ...SSH_CLIENT_OPTIONS, ...rest];

/**
 * An environment in which `ssh` answers its password prompt with `token`, from an askpass script
 * written into `dir` (no terminal needed). A short ES256 token: OpenSSH cuts passwords at 1023 bytes.
 */
export function askpassEnv(dir: string, token: string): NodeJS.ProcessEnv {
  const askpass = join(dir, `askpass-${randomBytes(6).toString('hex')}.sh`);
  writeFileSync(askpass, `#!/bin/sh\necho '${token}'\n`, { mode: 0o700 });
  return { ...process.env, SSH_ASKPASS: askpass, SSH_ASKPASS_REQUIRE: 'force', DISPLAY: ':0' };
}
