import { lambdaHandler } from '../lib/lambda/lambda-handler.ts';
import { createHandler } from '../lib/lambda/handlers/delete.ts';
import { createServices } from '../lib/services.ts';

export const handler = lambdaHandler(({ logger }) => createHandler(createServices({ logger })));
