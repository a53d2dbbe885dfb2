import { ConfigError } from '../lib/errors.ts';
import type { HttpHandler } from '../lib/lambda/http-handler.ts';
import { createHandler, createUnconfiguredHandler } from '../lib/lambda/handlers/health.ts';
import { lambdaHandler } from '../lib/lambda/lambda-handler.ts';
import { createServices } from '../lib/services.ts';

export const handler = lambdaHandler(({ logger }): HttpHandler => {
  try {
    return createHandler(createServices({ logger }));
  } catch (error) {
    if (error instanceof ConfigError) return createUnconfiguredHandler(error, logger);
    throw error;
  }
});
