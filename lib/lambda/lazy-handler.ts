import type { Context } from 'aws-lambda';

/**
 * A Lambda handler built on its first invocation (then kept for the container's life), so importing a
 * function module has no side effects: the local server and the tests import `createHandler` with their
 * own services, and a configuration error surfaces as that invocation's logged error, naming the variable.
 */
export function lazyHandler<Event, Result>(
  build: () => (event: Event, context: Context) => Promise<Result>,
): (event: Event, context: Context) => Promise<Result> {
  let built: ((event: Event, context: Context) => Promise<Result>) | undefined;
  return (event, context) => {
    built ??= build();
    return built(event, context);
  };
}
