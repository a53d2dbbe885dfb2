/**
 * The HTTP API (the contract of the README's HTTP API section), once: the deploy (infra/api.ts), the 405 answers
 * (middleware/allow-methods.ts), each handler's methods, the local server's router and the import test are all
 * derived from this table. Plain data, no imports: infra/ type-checks it against SST's platform types.
 */
export const HTTP_FUNCTIONS = ['presign', 'status', 'delete', 'health'] as const;
export type HttpFunction = (typeof HTTP_FUNCTIONS)[number];
export type HttpMethod = 'GET' | 'POST' | 'DELETE';

export interface ApiRoute {
  method: HttpMethod;
  /** In API Gateway's form: `{name}` is one path segment. */
  path: string;
  /** The function serving it: `functions/<name>.ts`, its handler in `lib/lambda/handlers/<name>.ts`. */
  function: HttpFunction;
}

export const API_ROUTES: readonly ApiRoute[] = [
  { method: 'POST', path: '/uploads', function: 'presign' },
  { method: 'GET', path: '/poses/{generationId}/{poseId}', function: 'status' },
  { method: 'DELETE', path: '/poses/{generationId}/{poseId}', function: 'delete' },
  { method: 'DELETE', path: '/poses/{generationId}', function: 'delete' },
  { method: 'GET', path: '/health', function: 'health' },
];

/** Each path once, with the function that answers its other methods (405 with `Allow`): its first route's. */
export const API_PATHS: readonly { path: string; function: HttpFunction; methods: readonly HttpMethod[] }[] = [
  ...new Set(API_ROUTES.map((route) => route.path)),
].map((path) => {
  const routes = API_ROUTES.filter((route) => route.path === path);
  return { path, function: routes[0]!.function, methods: routes.map((route) => route.method) };
});

/** The methods a function serves. */
export const methodsOf = (name: HttpFunction): readonly HttpMethod[] => [
  ...new Set(API_ROUTES.filter((route) => route.function === name).map((route) => route.method)),
];

/**
 * The path of the table a request path is, if any. A parameter matches any one segment, an empty one too
 * (`/poses//p` is the status route with an invalid, empty generationId: a 400, not a 404); one trailing slash is
 * ignored.
 */
function pathOf(requestPath: string): (typeof API_PATHS)[number] | undefined {
  const segments = requestPath.replace(/(.)\/$/, '$1').split('/');
  return API_PATHS.find(({ path }) => {
    const template = path.split('/');
    return template.length === segments.length && template.every((part, i) => part.startsWith('{') || part === segments[i]);
  });
}

/** The methods a request path serves across the API (`Allow`), or undefined for a path the API does not have. */
export const methodsOnPath = (requestPath: string): readonly HttpMethod[] | undefined => pathOf(requestPath)?.methods;

/** The function a request reaches: its route's, or for another method on a known path the one that answers 405. */
export function functionFor(requestPath: string, method: string): HttpFunction | undefined {
  const path = pathOf(requestPath);
  if (!path) return undefined;
  return API_ROUTES.find((route) => route.path === path.path && route.method === method)?.function ?? path.function;
}
