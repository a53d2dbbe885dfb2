import { httpHandler, noContent, parseInput, poseRoute } from '../http-handler.ts';
import { generationRefSchema, poseRefSchema } from '../../pose-uploads.ts';
import type { Services } from '../../services.ts';

/**
 * `DELETE /poses/{generationId}/{poseId}` and `DELETE /poses/{generationId}`: 204, also when there was
 * nothing to delete; 503 when the store fails (the library has logged it).
 */
export function createHandler(services: Services) {
  const { storage } = services;
  return httpHandler(services, { function: 'delete' }, async (event) => {
    const route = poseRoute(event);
    const result =
      route.poseId === undefined
        ? await storage.deleteGeneration(parseInput(generationRefSchema, route).generationId)
        : await storage.deletePose(parseInput(poseRefSchema, route));
    if (!result.ok) throw result.error;
    return noContent();
  });
}
