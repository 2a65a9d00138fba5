// The container image holds only what the Dockerfile's last stage copies. No Docker engine runs
// here, so the test lays that stage out on disk from the Dockerfile's own COPY lines (the compiled
// output as the build stage prunes it, and each file or folder copied from the context) and runs
// `agate start` from it, with the console on: a file the code reads at run time but the image
// leaves out fails here instead of in a user's cluster. node_modules is this checkout's (dev
// dependencies included: `npm ci --omit=dev` would need the registry), linked in.
import { suite } from '../harness/suite.js';
import * as assert from 'uvu/assert';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { REPO_ROOT, startAgateProcess, type AgateProcess } from './agate-process.js';

interface Copy { from?: string; sources: string[]; dest: string }

/** The COPY instructions of the Dockerfile's last stage, in order. */
function lastStageCopies(dockerfile: string): Copy[] {
  const lines = dockerfile.replace(/\\\n/g, ' ').split('\n').map((l) => l.trim());
  const last = lines.map((l, i) => (/^FROM\s/i.test(l) ? i : -1)).filter((i) => i >= 0).pop();
  if (last === undefined) throw new Error('the Dockerfile has no FROM');
  const copies: Copy[] = [];
  for (const line of lines.slice(last + 1)) {
    if (!/^COPY\s/i.test(line)) continue;
    const words = line.split(/\s+/).slice(1);
    const from = words.find((w) => w.startsWith('--from='))?.slice('--from='.length);
    const paths = words.filter((w) => !w.startsWith('--'));
    copies.push({ from, sources: paths.slice(0, -1), dest: paths.at(-1)! });
  }
  return copies;
}

/** One context source (a file, a folder, or `dir/*.ext`) to the matching paths under REPO_ROOT. */
function expand(source: string): string[] {
  const star = source.match(/^(.*)\/\*(\.[^/]+)$/);
  if (star === null) return [source];
  return readdirSync(join(REPO_ROOT, star[1]!)).filter((n) => n.endsWith(star[2]!)).map((n) => `${star[1]}/${n}`);
}

/** The build stage's output: dist without tests, dist/test and dist/bench (as its RUN line prunes it). */
function copyDist(to: string): void {
  cpSync(join(REPO_ROOT, 'dist'), to, {
    recursive: true,
    filter: (src) => {
      const rel = src.slice(join(REPO_ROOT, 'dist').length);
      return !/^\/(test|bench)(\/|$)/.test(rel) && !/\.test\.js(\.map)?$/.test(rel);
    },
  });
}

/** Lays the image's /app out under `root`, from the last stage's COPY lines. */
function layOut(root: string): void {
  const copies = lastStageCopies(readFileSync(join(REPO_ROOT, 'Dockerfile'), 'utf8'));
  for (const c of copies) {
    const dest = join(root, c.dest);
    mkdirSync(dirname(dest), { recursive: true });
    if (c.from === 'runtime-deps') {
      symlinkSync(join(REPO_ROOT, 'node_modules'), dest);
    } else if (c.from === 'build') {
      assert.equal(c.sources, ['/src/dist'], 'the build stage hands over its dist folder');
      copyDist(dest);
    } else if (c.from === undefined) {
      for (const source of c.sources.flatMap(expand)) {
        const into = c.dest.endsWith('/') ? join(dest, source.split('/').pop()!) : dest;
        mkdirSync(dirname(into), { recursive: true });
        cpSync(join(REPO_ROOT, source), into, { recursive: true });
      }
    } else {
      throw new Error(`a COPY --from=${c.from} this test does not know how to lay out`);
    }
  }
}

interface Ctx { root: string; agate: AgateProcess }
const image = suite<Ctx>("the image's last stage holds what Agate reads at run time");

image.before(async (ctx) => {
  ctx.root = mkdtempSync(join(tmpdir(), 'agate-image-'));
  layOut(join(ctx.root, 'app'));
  ctx.agate = await startAgateProcess({
    bin: join(ctx.root, 'app', 'bin', 'agate.js'),
    configYaml: (p) => `instance_id: image-layout
data_dir: ${JSON.stringify(p.dataDir)}
identity: { dev_issuer: { enabled: true } }
proxy:
  postgres: { listen: ${JSON.stringify(p.pgListen)} }
query:
  listen: ${JSON.stringify(p.apiListen)}
console:
  oidc: { issuer: "http://127.0.0.1:9/", client_id: agate-console, redirect_url: "http://${p.apiListen}/ui/callback" }
`,
  });
});

image.after(async (ctx) => {
  await ctx.agate?.dispose();
  if (ctx.root !== undefined) rmSync(ctx.root, { recursive: true, force: true });
});

image('the layout is the image: compiled code without tests, and the run-time files copied from the context', (ctx) => {
  const app = join(ctx.root, 'app');
  assert.ok(existsSync(join(app, 'dist', 'cli', 'src', 'main.js')), 'the CLI is compiled in');
  assert.not.ok(existsSync(join(app, 'dist', 'test')), 'no test code');
  assert.ok(existsSync(join(app, 'schemas', 'golden')), 'frozen schemas');
});

image('agate start runs from it, with the console: every page and asset answers', async (ctx) => {
  const api = ctx.agate.apiUrl;
  const page = await fetch(`${api}/ui/`);
  const html = await page.text();
  assert.is(page.status, 200, `/ui/: ${html}`);
  const assets = [...html.matchAll(/(?:src|href)="(\/ui\/assets\/[^"]+)"/g)].map((m) => m[1]!);
  assert.ok(assets.length > 0, `the console page names its assets: ${html.slice(0, 400)}`);
  for (const path of [...assets, '/ui/assets/visible-text.js']) {
    const r = await fetch(`${api}${path}`);
    assert.is(r.status, 200, `${path}: ${r.status}`);
  }
  const spec = await fetch(`${api}/openapi.json`);
  assert.is(spec.status, 200, 'the OpenAPI document is served from the image');
});

image.run();
