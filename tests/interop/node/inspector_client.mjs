// The MCP Inspector in CLI mode (`mcp-inspector --cli URL --transport http|sse --method ...
// --header "Authorization: Bearer T"`), one process per method as a user would run it.
//   node inspector_client.mjs --url URL [--transport http|sse] [--token T] [--tool echo --args '{"text":"hi"}']
// Prints one JSON line: {ok, steps: [...], error}.
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import path from 'node:path';
import { Run, deadline, options, summarizeCall, summarizeTools } from './lib.mjs';

const opts = options();
const run = new Run();
const require = createRequire(import.meta.url);
const build = path.join(path.dirname(require.resolve('@modelcontextprotocol/inspector-cli/package.json')), 'build');
const children = new Set();

function inspector(extra) {
  const argv = [path.join(build, 'cli.js'), '--cli', opts.url, '--transport', opts.transport === 'sse' ? 'sse' : 'http', ...extra];
  if (opts.token) argv.push('--header', `Authorization: Bearer ${opts.token}`);
  return new Promise((resolve, reject) => {
    // cwd: the standalone package looks for "../package.json" relative to the working directory
    // but imports it relative to build/index.js; only build/ satisfies both (inspector-cli 1.0.3).
    const child = spawn(process.execPath, argv, { cwd: build, stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(child);
    let out = ''; let err = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { err = (err + d).slice(-2000); });
    child.on('exit', (code) => {
      children.delete(child);
      if (code !== 0) return reject(new Error(`inspector exited ${code}: ${err.replace(/⚠️[\s\S]*?security fixes only\.\s*/, '').trim().slice(-800)}`));
      try { resolve(JSON.parse(out)); } catch { reject(new Error(`inspector printed no JSON: ${out.slice(0, 300)}`)); }
    });
  });
}

function toolArgFlags(args) {
  // --tool-arg key=value; the CLI JSON-parses each value, so non-strings go as JSON text.
  return Object.entries(args).flatMap(([k, v]) => ['--tool-arg', `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`]);
}

const timer = deadline(run, opts.timeoutMs, async () => { for (const c of children) c.kill('SIGKILL'); });
try {
  await run.step('tools/list', async () => summarizeTools(await inspector(['--method', 'tools/list'])));
  await run.step('tools/call', async () => summarizeCall(await inspector(['--method', 'tools/call', '--tool-name', opts.tool, ...toolArgFlags(opts.toolArgs)])));
  await run.step('resources/list', async () => ({ count: (await inspector(['--method', 'resources/list'])).resources.length }));
  await run.step('prompts/list', async () => ({ count: (await inspector(['--method', 'prompts/list'])).prompts.length }));
  run.finish(null);
} catch (err) {
  run.finish(err);
} finally {
  clearTimeout(timer);
}
process.exit(0);
