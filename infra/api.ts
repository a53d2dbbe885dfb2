import { FUNCTION_DEFAULTS } from './environment.ts';
import { HTTP_TIMEOUT_SECONDS } from './function-timing.ts';
import { API_PATHS, API_ROUTES } from '../lib/lambda/routes.ts';
import type { Settings } from './settings.ts';

/**
 * The HTTP API: four small functions behind an API Gateway HTTP API, routed by lib/lambda/routes.ts:
 *
 *   POST   /uploads                          -> functions/presign  (presigned PUT into staging/)
 *   GET    /poses/{generationId}/{poseId}    -> functions/status
 *   DELETE /poses/{generationId}[/{poseId}]  -> functions/delete
 *   GET    /health                           -> functions/health
 */
export function createApi(environment: $util.Output<Record<string, string>>, settings: Settings): sst.aws.ApiGatewayV2 {
  // lib/pose-image.ts loads sharp (native, not bundleable) only when it decodes an image, which these
  // functions never do: they leave it out entirely.
  const httpFunction = (name: string, handler: string) =>
    new sst.aws.Function(name, {
      ...FUNCTION_DEFAULTS,
      environment,
      handler,
      memory: '256 MB',
      timeout: `${HTTP_TIMEOUT_SECONDS} seconds`,
      // Split: the S3 SDK (and its Node built-ins) become a chunk loaded by the first store request, so an
      // import stays under 60 ms (BENCHMARKS.md, cold start); presign never loads it.
      nodejs: { esbuild: { external: ['sharp'] }, splitting: true },
    });

  const presign = httpFunction('Presign', 'functions/presign.handler');
  const status = httpFunction('Status', 'functions/status.handler');
  const remove = httpFunction('Delete', 'functions/delete.handler');
  const health = httpFunction('Health', 'functions/health.handler');

  const origins = settings.allowedOrigins;
  const api = new sst.aws.ApiGatewayV2('Api', {
    // The handlers answer CORS from ALLOWED_ORIGINS, but one path can be served by two handlers (GET and
    // DELETE /poses/{generationId}/{poseId}) and a preflight reaches only one of them, whose answer lists
    // its own method only. So when origins are allowed, the gateway answers preflights with the same
    // origins, for every route (it then ignores the handlers' CORS headers); when none are, CORS is off.
    cors:
      origins.length === 0
        ? false
        : { allowOrigins: [...origins], allowMethods: ['GET', 'POST', 'DELETE'], allowHeaders: ['authorization', 'content-type'], maxAge: '10 minutes' },
  });
  const functions = { presign, status, delete: remove, health };
  for (const route of API_ROUTES) api.route(`${route.method} ${route.path}`, functions[route.function].arn);
  // Any other method on a known path reaches a handler that answers the contract's 405 JSON (with
  // `Allow`), instead of API Gateway's own 404 {"message":"Not Found"}.
  for (const { path, function: name } of API_PATHS) api.route(`ANY ${path}`, functions[name].arn);
  return api;
}

