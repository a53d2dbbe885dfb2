import { lambdaHandler } from '../lib/lambda/lambda-handler.ts';
import { createHandler } from '../lib/lambda/handlers/presign.ts';
import { createServices } from '../lib/services.ts';

export const handler = lambdaHandler(({ logger }) => createHandler(createServices({ logger })));
