import type { Logger as PowertoolsLogger } from '@aws-lambda-powertools/logger';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import { ConfigError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import { createPowertoolsLogger, toLogger } from './lambda-logger.ts';

export type LambdaHandler<Event, Result> = (event: Event, context: Context) => Promise<Result>;

export interface LambdaRuntime {
  /** The library's Logger over Powertools' (lib/lambda/lambda-logger.ts): the one to give the services. */
  logger: Logger;
  /** Powertools' own, for what only it does (keys appended to the lines of one invocation). */
  powertools: PowertoolsLogger;
}

/**
 * A function's Lambda entry. Importing it does nothing, so the local server and the tests import the
 * function's createHandler with their own services. The first invocation creates Powertools' logger and
 * builds the handler with it (kept for the container's life). Every invocation runs inside
 * injectLambdaContext, so each line, the build's included, carries the request id, the function's name and
 * the cold start flag; keys appended during an invocation are dropped at its end. A configuration error is
 * logged naming the variable and fails the invocation (the next one tries again).
 */
export function lambdaHandler<Event, Result>(build: (runtime: LambdaRuntime) => LambdaHandler<Event, Result>): LambdaHandler<Event, Result> {
  let wrapped: LambdaHandler<Event, Result> | undefined;
  return (event, context) => {
    wrapped ??= withLambdaContext(build);
    return wrapped(event, context);
  };
}

function withLambdaContext<Event, Result>(build: (runtime: LambdaRuntime) => LambdaHandler<Event, Result>): LambdaHandler<Event, Result> {
  const powertools = createPowertoolsLogger();
  const runtime: LambdaRuntime = { logger: toLogger(powertools), powertools };
  let built: LambdaHandler<Event, Result> | undefined;
  const handle = (event: Event, context: Context): Promise<Result> => {
    try {
      built ??= build(runtime);
    } catch (error) {
      if (error instanceof ConfigError) runtime.logger.error(`[Storage] Invalid configuration: ${error.message}`, { variable: error.variable });
      throw error;
    }
    return built(event, context);
  };
  // No early timeout of middy's here: the HTTP stack has its own, and the thumbnail's batch answers itself.
  // Events are never logged (POWERTOOLS_LOGGER_LOG_EVENT is overruled): an HTTP event carries the bearer token.
  return middy<Event, Result>({ timeoutEarlyInMillis: 0 })
    .use(injectLambdaContext(powertools, { resetKeys: true, logEvent: false }))
    .handler(handle) as unknown as LambdaHandler<Event, Result>;
}
