import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, extname, join } from 'node:path';
import { packageRoot } from '../../../../core/src/package-root.js';
import { AgateError, ErrorCode } from '../../../../core/src/errors.js';

/** Where the browser side lives in the repository: plain ES modules, CSS and HTML, no build step. */
const CONSOLE_ASSETS_DIR = join('services', 'query', 'console');

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
};

export interface Asset {
  type: string;
  body: Buffer;
}

/**
 * Every console asset, read once at start: the set served is exactly the files shipped in the
 * folder (no path from a request ever reaches the file system), and nothing comes from a CDN.
 */
export function loadAssets(dir = join(packageRoot(), CONSOLE_ASSETS_DIR)): Map<string, Asset> {
  const assets = new Map<string, Asset>();
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (cause) {
    throw new AgateError(ErrorCode.CONFIG_INVALID, `the console's pages are missing from this install (${dir}): ${(cause as Error).message}`, { cause });
  }
  for (const name of names) {
    const type = TYPES[extname(name)];
    if (type !== undefined) assets.set(name, { type, body: readFileSync(join(dir, name)) });
  }
  for (const [name, file] of playerFiles()) assets.set(`${PLAYER_PREFIX}${name}`, { type: TYPES[extname(name)]!, body: readFileSync(file) });
  for (const [name, url] of SHARED_MODULES) {
    // Compiled from TypeScript with no imports: a browser module as it is, less its source-map line.
    const body = readFileSync(url, 'utf8').replace(/\n\/\/# sourceMappingURL=.*\s*$/, '\n');
    assets.set(name, { type: TYPES['.js']!, body: Buffer.from(body) });
  }
  return assets;
}

/**
 * Modules the console shares with the CLI, served from their compiled form beside this file:
 * `visible-text.js` shows invisible and control characters in agent text the same way on both.
 */
const SHARED_MODULES: [string, URL][] = [['visible-text.js', new URL('../../../../core/src/visible-text.js', import.meta.url)]];

/** Where the asciicast player's files are served, under /ui/assets/. */
const PLAYER_PREFIX = 'asciinema-player/';

/**
 * The asciicast player (npm `asciinema-player`) as installed: its ES-module build (`dist/*.js`,
 * chunks that import each other by relative name, so all are served side by side) and its
 * stylesheet. Not installed is a start error rather than a console whose replay page is broken.
 */
function playerFiles(): [string, string][] {
  let entry: string;
  let css: string;
  try {
    const require = createRequire(join(packageRoot(), 'package.json'));
    entry = require.resolve('asciinema-player');
    css = require.resolve('asciinema-player/dist/bundle/asciinema-player.css');
  } catch (cause) {
    throw new AgateError(ErrorCode.CONFIG_INVALID, `the console's asciicast player (npm package asciinema-player) is not installed: ${(cause as Error).message}`, { cause });
  }
  const dist = dirname(entry);
  const js = readdirSync(dist).filter((n) => extname(n) === '.js').map((n): [string, string] => [n, join(dist, n)]);
  return [...js, ['asciinema-player.css', css]];
}

/**
 * The console's Content-Security-Policy: scripts, styles and connections only from Agate itself,
 * no inline script or style, no framing, no plugins, forms only back to Agate.
 */
export const CONTENT_SECURITY_POLICY = csp("script-src 'self'");

/**
 * The shell replay page's policy: the same, plus `'wasm-unsafe-eval'`. The asciicast player's
 * terminal emulator is WebAssembly (compiled from bytes the player's own script carries), and a
 * browser compiles WebAssembly under a CSP only with that source; it allows no `eval` of
 * JavaScript. Only /ui/replay gets it: the pages that can approve or change anything do not.
 */
export const REPLAY_CONTENT_SECURITY_POLICY = csp("script-src 'self' 'wasm-unsafe-eval'");

function csp(scriptSrc: string): string {
  return [
    "default-src 'none'", scriptSrc, "style-src 'self'", "img-src 'self' data:", "font-src 'self'", "connect-src 'self'",
    "base-uri 'none'", "form-action 'self'", "frame-ancestors 'none'",
  ].join('; ');
}

/** Headers on every /ui/ response. */
export function securityHeaders(secure: boolean): Record<string, string> {
  return {
    'content-security-policy': CONTENT_SECURITY_POLICY,
    'x-content-type-options': 'nosniff',
    'x-frame-options': 'DENY',
    'referrer-policy': 'no-referrer',
    'cross-origin-opener-policy': 'same-origin',
    'cross-origin-resource-policy': 'same-origin',
    'cache-control': 'no-store',
    ...(secure ? { 'strict-transport-security': 'max-age=31536000' } : {}),
  };
}
