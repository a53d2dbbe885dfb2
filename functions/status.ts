import { HttpError } from '../lib/lambda/http-error.ts';
import { httpHandler, json, parseInput, poseRoute } from '../lib/lambda/http-handler.ts';
import { poseRefSchema } from '../lib/pose-uploads.ts';
import { lambdaHandler } from '../lib/lambda/lambda-handler.ts';
import { createServices, type Services } from '../lib/services.ts';

/** `GET /poses/{generationId}/{poseId}`: pending, ready (with URLs) or rejected (with a reason); 404 if unknown. */
export function createHandler(services: Services) {
  return httpHandler(services, { methods: ['GET'] }, async (event) => {
    const pose = parseInput(poseRefSchema, poseRoute(event));
    const status = await services.uploads.getStatus(pose);
    if (!status) throw new HttpError(404, 'not_found', 'Nothing is known of this pose');
    return json(200, status);
  });
}

export const handler = lambdaHandler(({ logger }) => createHandler(createServices({ logger })));
