import { readFileSync } from 'node:fs';
import { parseEnv } from 'node:util';
import { ConfigError } from '../errors.ts';

/**
 * Loads `.env` from the working directory when there is one, as `node --env-file-if-exists=.env` would, but
 * without the "not found" notice Node prints on every start without it. Variables already set in the
 * environment (even to an empty value) win over the file. Every entry point of lib/cli calls it first.
 *
 * Node's parser skips what it cannot read without a word: a line that is no assignment is dropped, a byte
 * order mark becomes part of the first name, and a quote never closed either becomes part of the value or
 * swallows the lines up to the next quote. So the file is checked first, and each such line is a ConfigError
 * naming the file and the line (never its content, which may hold a secret). What passes is read by Node's parser.
 */
export function loadDotEnv(file = '.env', env: NodeJS.ProcessEnv = process.env): void {
  // `env` is where the variables go: the process's own environment, or another for a test.
  let content: string;
  try {
    content = readFileSync(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return;
    throw new ConfigError(file, `cannot be read (${code ?? String(error)})`);
  }
  const problems = envFileProblems(content).map(({ line, problem }) => ({ variable: `${file}:${line}`, problem }));
  if (problems.length > 0) throw new ConfigError(problems);
  for (const [name, value] of Object.entries(parseEnv(content))) env[name] ??= value;
}

const QUOTES = ['"', "'", '`'];

/** `NAME=value` or `export NAME=value`, spaces allowed around the `=`, as Node reads it. */
const ASSIGNMENT = /^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/;

/** Nothing, or a comment: what may follow a closing quote. */
const isBlankOrComment = (text: string): boolean => /^\s*(?:#.*)?$/.test(text);

interface EnvFileProblem {
  /** From 1. */
  line: number;
  problem: string;
}

/** What is wrong with the file, line by line. */
function envFileProblems(content: string): EnvFileProblem[] {
  const problems: EnvFileProblem[] = [];
  if (content.startsWith('\uFEFF')) {
    problems.push({ line: 1, problem: 'starts with a byte order mark (U+FEFF, which some Windows editors write): save the file as UTF-8 without BOM' });
  }
  const lines = content.replace(/^\uFEFF/, '').split('\n').map((line) => line.replace(/\r$/, ''));
  for (let index = 0; index < lines.length; index++) {
    const line = lines[index]!;
    const number = index + 1;
    if (isBlankOrComment(line)) continue;
    const assignment = ASSIGNMENT.exec(line);
    if (!assignment) {
      problems.push({ line: number, problem: 'is neither NAME=value (a NAME of letters, digits and "_", not starting with a digit) nor a # comment' });
      continue;
    }
    const [, name, value] = assignment as unknown as [string, string, string];
    const quote = value[0];
    if (quote === undefined || !QUOTES.includes(quote)) continue;
    const closing = value.indexOf(quote, 1);
    if (closing > 0) {
      if (!isBlankOrComment(value.slice(closing + 1))) {
        problems.push({ line: number, problem: `has text after the closing ${quote} of the value of ${name} (only a # comment may follow it)` });
      }
      continue;
    }
    // A value may go on over several lines, up to the line its quote closes, which must end there: a quote
    // never closed would otherwise run on to the next quote of the file, taking the lines in between.
    const end = lines.findIndex((later, at) => at > index && later.includes(quote));
    if (end > 0 && isBlankOrComment(lines[end]!.slice(lines[end]!.indexOf(quote) + 1))) {
      index = end;
      continue;
    }
    problems.push({ line: number, problem: `opens a ${quote} quote in the value of ${name} that is never closed` });
  }
  return problems;
}
