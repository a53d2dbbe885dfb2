import { httpHandler, json, parseInput } from '../lib/lambda/http-handler.ts';
import { uploadRequestSchema } from '../lib/pose-uploads.ts';
import { lambdaHandler } from '../lib/lambda/lambda-handler.ts';
import { createServices, type Services } from '../lib/services.ts';

/** `POST /uploads`: a presigned PUT into the staging area (the client never chooses the key). */
export function createHandler(services: Services) {
  return httpHandler(services, { methods: ['POST'], jsonBody: true }, async (event) => {
    const request = parseInput(uploadRequestSchema, event.body);
    return json(200, await services.uploads.createUpload(request));
  });
}

export const handler = lambdaHandler(({ logger }) => createHandler(createServices({ logger })));
