/**
 * Presigned URLs per second: `node test/bench/presign-case.ts [quick]`. The presign handler (functions/presign.ts,
 * the whole middy stack: auth, JSON body, validation, CORS and security headers) called directly with API
 * Gateway v2 events, in r2 mode against a dummy endpoint: presigning is local computation (SigV4 over the
 * request), nothing is sent. Sequential calls on one thread. Prints one JSON line.
 */
import { createHandler } from '../../lib/lambda/handlers/presign.ts';
import { parseConfig } from '../../lib/config.ts';
import { createLogger } from '../../lib/logger.ts';
import { createServices } from '../../lib/services.ts';
import { bearer, httpEvent, lambdaContext } from '../support/http-events.ts';
import { median, quantile, R2_ENV } from './common.ts';

export interface PresignFigures {
  perSecond: number;
  calls: number;
  p50Ms: number;
  p99Ms: number;
}

const quick = process.argv[2] === 'quick';
const services = createServices({ config: parseConfig(R2_ENV), logger: createLogger(() => undefined) });
const handler = createHandler(services);
const context = lambdaContext('presign');
let counter = 0;
const call = async () => {
  const event = httpEvent({
    method: 'POST',
    path: '/uploads',
    headers: bearer(R2_ENV.API_TOKEN!),
    json: { generationId: 'gen_bench', poseId: `pose_${counter++}`, contentType: 'image/png', contentLength: 1259976 },
  });
  const response = await handler(event, context);
  if (response.statusCode !== 200 || !response.body?.includes('X-Amz-Signature')) {
    throw new Error(`presign answered ${response.statusCode}: ${response.body}`);
  }
};

for (let i = 0; i < 300; i++) await call(); // warm-up (JIT, SDK middleware stack)
const times: number[] = [];
const budgetMs = quick ? 500 : 3000;
const started = performance.now();
while (performance.now() - started < budgetMs) {
  const start = performance.now();
  await call();
  times.push(performance.now() - start);
}
const elapsed = performance.now() - started;
const figures: PresignFigures = { perSecond: (times.length * 1000) / elapsed, calls: times.length, p50Ms: median(times), p99Ms: quantile(times, 0.99) };
process.stdout.write(`${JSON.stringify(figures)}\n`);
