/** Assertions on the HTTP handlers' results, shared by the function tests. */
import { expect } from 'vitest';
import type { HttpResult } from '../../lib/lambda/http-handler.ts';

/** A response header, whatever the case of its name. */
export function header(result: HttpResult, name: string): string | undefined {
  const entry = Object.entries(result.headers ?? {}).find(([key]) => key.toLowerCase() === name.toLowerCase());
  return entry === undefined ? undefined : String(entry[1]);
}

export function expectSecurityHeaders(result: HttpResult): void {
  expect(header(result, 'x-content-type-options')).toBe('nosniff');
  expect(header(result, 'strict-transport-security')).toMatch(/max-age=\d+/);
  expect(header(result, 'x-frame-options')).toBeDefined();
}

/** The contract's error, exactly: `{"error": {"code", "message"}}` and nothing else (no stack), as JSON. */
export function expectError(result: HttpResult, statusCode: number, code: string): void {
  expect(result.statusCode).toBe(statusCode);
  expect(header(result, 'content-type')).toBe('application/json');
  expect(JSON.parse(String(result.body))).toEqual({ error: { code, message: expect.stringMatching(/^\S.{4,}/) } });
  expect(String(result.body)).not.toMatch(/\n\s+at |stack|node_modules/);
  expectSecurityHeaders(result);
}
