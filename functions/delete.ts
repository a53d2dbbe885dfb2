import { httpHandler, noContent, parseInput, poseRoute } from '../lib/lambda/http-handler.ts';
import { generationRefSchema, poseRefSchema } from '../lib/pose-uploads.ts';
import { lambdaHandler } from '../lib/lambda/lambda-handler.ts';
import { createServices, type Services } from '../lib/services.ts';

/**
 * `DELETE /poses/{generationId}/{poseId}` and `DELETE /poses/{generationId}`: 204, also when there was
 * nothing to delete; 503 when the store fails (the library has logged it).
 */
export function createHandler(services: Services) {
  const { storage } = services;
  return httpHandler(services, { methods: ['DELETE'] }, async (event) => {
    const route = poseRoute(event);
    const result =
      route.poseId === undefined
        ? await storage.deleteGeneration(parseInput(generationRefSchema, route).generationId)
        : await storage.deletePose(parseInput(poseRefSchema, route));
    if (!result.ok) throw result.error;
    return noContent();
  });
}

export const handler = lambdaHandler(({ logger }) => createHandler(createServices({ logger })));
