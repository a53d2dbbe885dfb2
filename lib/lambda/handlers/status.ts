import { HttpError } from '../http-error.ts';
import { httpHandler, json, parseInput, poseRoute } from '../http-handler.ts';
import { poseRefSchema } from '../../pose-uploads.ts';
import type { Services } from '../../services.ts';

/** `GET /poses/{generationId}/{poseId}`: pending, ready (with URLs) or rejected (with a reason); 404 if unknown. */
export function createHandler(services: Services) {
  return httpHandler(services, { function: 'status' }, async (event) => {
    const pose = parseInput(poseRefSchema, poseRoute(event));
    const status = await services.uploads.getStatus(pose);
    if (!status) throw new HttpError(404, 'not_found', 'Nothing is known of this pose');
    return json(200, status);
  });
}
