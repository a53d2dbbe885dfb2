import { httpHandler, json, parseInput } from '../http-handler.ts';
import { uploadRequestSchema } from '../../pose-uploads.ts';
import type { Services } from '../../services.ts';

/** `POST /uploads`: a presigned PUT into the staging area (the client never chooses the key). */
export function createHandler(services: Services) {
  return httpHandler(services, { function: 'presign', jsonBody: true }, async (event) => {
    const request = parseInput(uploadRequestSchema, event.body);
    return json(200, await services.uploads.createUpload(request));
  });
}
