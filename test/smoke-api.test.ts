/**
 * `pose-storage smoke --api <url> --token <token>` as an operator runs it after a deploy: a child process that
 * knows nothing but the URL and the token, against the local server (the same handlers as the deployed
 * functions) over real HTTP as the "deployed API". The pass, and failures named by step, status and message.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, type CliRun } from './support/cli-process.ts';
import { freePort } from './support/dev-process.ts';
import { listFiles, startTestServer, type TestServer } from './support/local-server.ts';

const TOKEN = 'smoke-api-token-0123456789abcdef';

function smoke(args: string[], env: Record<string, string> = {}): Promise<CliRun> {
  return runCli(['smoke', ...args], { env: { HOME: process.env.HOME ?? '/tmp', ...env } });
}

const STEPS = ['presign', 'upload', 'ready', 'image', 'thumbnail', 'delete', 'gone'];

describe('pose-storage smoke --api', () => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startTestServer({ env: { API_TOKEN: TOKEN } });
  });

  afterAll(async () => {
    await server?.stop();
  });

  it('proves the API end to end, step by step with times, and leaves nothing behind', async () => {
    const result = await smoke(['--api', server.url, '--token', TOKEN]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(new RegExp(`^Smoke test of ${server.url} \\(with a bearer token\\)$`, 'm'));
    for (const step of STEPS) expect(result.stdout).toMatch(new RegExp(`^ {2}ok {4}${step} +\\d+ ms {2}\\S`, 'm'));
    expect(result.stdout).toMatch(/^ {2}ok {4}presign .* smoke_\d+\/pose_[0-9a-f]{8}, URL valid until /m);
    expect(result.stdout).toMatch(/^ {2}ok {4}ready .* after \d+ poll\(s\): 640x480, \d+ bytes$/m);
    expect(result.stdout).toMatch(/^ {2}ok {4}image .*\/uploads\/poses\/smoke_\d+\/pose_[0-9a-f]{8}\.png: PNG 640x480, \d+ bytes$/m);
    expect(result.stdout).toMatch(/^ {2}ok {4}thumbnail .*_thumb\.png: PNG 400x400, \d+ bytes$/m);
    expect(result.stdout).toMatch(/^ {2}ok {4}gone .* status 404, image 404, thumbnail 404$/m);
    expect(result.stdout).toMatch(/^Passed: 7 steps in /m);
    expect(result.stdout).not.toContain(TOKEN);
    // Everything it made is gone: no pose, no upload, no record.
    expect(await listFiles(server.dir)).toEqual([]);
    // The server saw a real client: a presign, a PUT, a publication and a delete.
    expect(server.logs.map((entry) => entry.message)).toEqual(
      expect.arrayContaining([expect.stringMatching(/^\[Storage\] Saved local files: /), expect.stringMatching(/^\[Storage\] Deleted pose: pose_/)]),
    );
  });

  it('takes the token from API_TOKEN when --token is not given', async () => {
    const result = await smoke(['--api', server.url], { API_TOKEN: `${TOKEN},another-token-0123456789` });
    expect(result.code).toBe(0);
  });

  it('a wrong token fails at presign with the status and the API message, in one line', async () => {
    const result = await smoke(['--api', server.url, '--token', 'wrong-token-0123456789abcdef']);
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/^ {2}FAIL {2}presign +\d+ ms {2}HTTP 401 unauthorized: A valid "Authorization: Bearer <token>" header is required$/m);
    expect(result.stderr).toBe('pose-storage smoke: failed at step "presign": HTTP 401 unauthorized: A valid "Authorization: Bearer <token>" header is required\n');
    expect(result.stdout).not.toMatch(/^ {2}ok/m);
  });

  it('an API that cannot be reached fails at presign, naming the host', async () => {
    const port = await freePort(); // nothing listens there
    const result = await smoke(['--api', `http://127.0.0.1:${port}`, '--token', TOKEN]);
    expect(result.code).toBe(1);
    expect(result.stderr).toBe(`pose-storage smoke: failed at step "presign": could not reach http://127.0.0.1:${port} (ECONNREFUSED)\n`);
  });

  it('an API that refuses the upload says why (413 too_large, the contract message)', async () => {
    const small = await startTestServer({ env: { API_TOKEN: TOKEN, UPLOAD_MAX_BYTES: '100' } });
    try {
      const result = await smoke(['--api', small.url, '--token', TOKEN]);
      expect(result.code).toBe(1);
      expect(result.stderr).toBe('pose-storage smoke: failed at step "presign": HTTP 413 too_large: contentLength must be at most 100 bytes.\n');
    } finally {
      await small.stop();
    }
  });

  it('bad usage is exit status 2 with one line', async () => {
    expect(await smoke(['--api', 'ftp://example.com'])).toEqual({
      code: 2,
      stdout: '',
      stderr: 'pose-storage smoke: --api must be an http(s) URL (got "ftp://example.com"). See "pose-storage smoke --help".\n',
    });
    expect((await smoke(['--token', TOKEN])).stderr).toBe('pose-storage smoke: --token goes with --api. See "pose-storage smoke --help".\n');
    expect((await smoke(['--api', server.url, '--timeout', '0'])).stderr).toContain('--timeout must be a whole number from 1 to 900 (got "0")');
  });
});
