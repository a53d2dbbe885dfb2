/**
 * loadDotEnv on real files in a temporary directory: what Node's parser would skip without a word (a line that
 * is no assignment, a byte order mark, a quote never closed) is a ConfigError naming the file and each line at
 * fault, never a line's content; a valid file loads as Node reads it, and the environment wins over it.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../errors.ts';
import { loadDotEnv } from './env-file.ts';

let work: string;
beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'pose-env-file-'));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

let files = 0;
/** A file holding `content`, and what loading it into an empty environment gives (or the error). */
async function load(content: string | Buffer, env: NodeJS.ProcessEnv = {}): Promise<NodeJS.ProcessEnv | ConfigError> {
  const file = path.join(work, `${++files}.env`);
  await writeFile(file, content);
  try {
    loadDotEnv(file, env);
    return env;
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
}

/** The problems of a refused file, as `line: problem` (the file's name is checked once, below). */
async function problemsOf(content: string | Buffer): Promise<string[]> {
  const result = await load(content);
  expect(result).toBeInstanceOf(ConfigError);
  const { problems } = result as ConfigError;
  for (const { variable } of problems) expect(variable).toMatch(new RegExp(`^${work}/${files}\\.env:\\d+$`));
  return problems.map(({ variable, problem }) => `${variable.split(':').at(-1)}: ${problem}`);
}

describe('loadDotEnv', () => {
  it('loads what Node reads: comments, blank lines, export, spaces around =, quotes, several lines in quotes, CRLF', async () => {
    const content = [
      '# local settings',
      '',
      'PORT=3001',
      'export HOST = 127.0.0.1',
      'API_TOKEN="token with # and spaces"  # a comment',
      "SINGLE='a \"b\"'",
      'MULTI="line 1',
      'line 2"',
      'EMPTY=',
      'INLINE=value # a comment',
    ].join('\r\n');
    expect(await load(content)).toEqual({
      PORT: '3001',
      HOST: '127.0.0.1',
      API_TOKEN: 'token with # and spaces',
      SINGLE: 'a "b"',
      MULTI: 'line 1\nline 2',
      EMPTY: '',
      INLINE: 'value',
    });
  });

  it('lets the environment win, even with an empty value', async () => {
    expect(await load('PORT=3001\nHOST=0.0.0.0\nUPLOAD_PATH=./from-file\n', { PORT: '4000', HOST: '' })).toEqual({
      PORT: '4000',
      HOST: '',
      UPLOAD_PATH: './from-file',
    });
  });

  it('does nothing without a file', () => {
    const env = {};
    loadDotEnv(path.join(work, 'no-such.env'), env);
    expect(env).toEqual({});
  });

  it('accepts the repository\'s .env.example, which the README says to copy', async () => {
    const example = await readFile(new URL('../../.env.example', import.meta.url), 'utf8');
    expect(await load(example)).toMatchObject({ STORAGE_MODE: 'local', UPLOAD_PATH: './uploads', PORT: '3000' });
  });

  it('refuses a byte order mark (Windows editors), naming the file and line 1', async () => {
    expect(await problemsOf(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('PORT=3001\n')]))).toEqual([
      '1: starts with a byte order mark (U+FEFF, which some Windows editors write): save the file as UTF-8 without BOM',
    ]);
  });

  it('refuses every line that is not NAME=value, at once, without printing the line (it may hold a secret)', async () => {
    const problems = await problemsOf('PORT=3001\nR2_SECRET_ACCESS_KEY sup3r-s3cret\n1PORT=2\nHOST: 0.0.0.0\n=value\n# fine\n');
    const notAnAssignment = 'is neither NAME=value (a NAME of letters, digits and "_", not starting with a digit) nor a # comment';
    expect(problems).toEqual([2, 3, 4, 5].map((line) => `${line}: ${notAnAssignment}`));
    expect(problems.join('\n')).not.toContain('sup3r-s3cret');
  });

  it('refuses a quote never closed, on its line, also when a later quote would swallow the lines in between', async () => {
    expect(await problemsOf('API_TOKEN="abc\nPORT=3001\n')).toEqual(['1: opens a " quote in the value of API_TOKEN that is never closed']);
    // Node would read API_TOKEN as 'abc\nPORT=3001\nHOST=' and never set PORT.
    expect(await problemsOf("API_TOKEN='abc\nPORT=3001\nHOST='127.0.0.1'\n")).toEqual([
      "1: opens a ' quote in the value of API_TOKEN that is never closed",
    ]);
    expect(await problemsOf('A=`abc\n')).toEqual(['1: opens a ` quote in the value of A that is never closed']);
  });

  it('refuses text after a closing quote, which Node would drop', async () => {
    expect(await problemsOf('GREETING="hello" world\n')).toEqual(['1: has text after the closing " of the value of GREETING (only a # comment may follow it)']);
  });

  it('reports every problem of the file at once, each with its line', async () => {
    expect(await problemsOf('\uFEFFPORT=1\nnonsense\nA="open\n')).toEqual([
      '1: starts with a byte order mark (U+FEFF, which some Windows editors write): save the file as UTF-8 without BOM',
      '2: is neither NAME=value (a NAME of letters, digits and "_", not starting with a digit) nor a # comment',
      '3: opens a " quote in the value of A that is never closed',
    ]);
  });

  it('says so when the file cannot be read', async () => {
    const directory = path.join(work, 'a-directory.env');
    await mkdir(directory);
    expect(() => loadDotEnv(directory, {})).toThrow(new ConfigError(directory, 'cannot be read (EISDIR)'));
  });
});
