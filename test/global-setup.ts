import type { TestProject } from "vitest/node";
import { startSandbox } from "../fakes/sandbox.ts";
import { copyDocsAssets } from "../tools/docs-assets.ts";

/** The canary Village key (set in vitest.config.ts): no response, log line or audit entry may contain it. */
const CANARY_KEY = process.env.VILLAGE_EDGE_CANARY_KEY ?? `canary-village-key-${crypto.randomUUID()}`;

declare module "vitest" {
  export interface ProvidedContext {
    sandboxUrl: string;
    sandboxNetworkId: string;
    sandboxApiKey: string;
  }
}

/** Starts the local Village sandbox on loopback for the whole run. */
export default async function setup(project: TestProject) {
  copyDocsAssets(); // public/ (the static assets: the contract GET /openapi.json reads), as the build step does
  const sandbox = await startSandbox({ port: 0, apiKey: CANARY_KEY, log: () => {} });
  project.provide("sandboxUrl", sandbox.url);
  project.provide("sandboxNetworkId", sandbox.defaultNetwork.id);
  project.provide("sandboxApiKey", sandbox.defaultNetwork.apiKey);
  return async () => {
    await sandbox.close();
  };
}
