// Bundles the agent/CLI and the datapath worker into dist/bin/ with esbuild.
// Why: code loaded through tsx at run time measured ~3x slower per frame than
// the same code bundled (bench/run.ts, pipeline figures), so the agent always
// runs from this build. Run by `npm install` and, when sources are newer, by
// bin/tapestry. Writes to a temporary directory and renames, so concurrent
// builds never leave a half-written file.
import { build } from 'esbuild';
import { mkdirSync, renameSync, rmSync, mkdtempSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'dist', 'bin');
mkdirSync(out, { recursive: true });
const tmp = mkdtempSync(join(out, '.build-'));
try {
  await build({
    absWorkingDir: root,
    entryPoints: { tapestry: 'src/cli/main.ts', 'datapath-worker': 'src/agent/datapath-worker.ts' },
    outdir: tmp,
    outExtension: { '.js': '.mjs' },
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    packages: 'external',
    sourcemap: 'linked',
    define: { TAPESTRY_BUNDLE: 'true' },
    logLevel: 'error',
  });
  for (const f of readdirSync(tmp)) renameSync(join(tmp, f), join(out, f));
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
