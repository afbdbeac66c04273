/**
 * The weldpulse TypeScript client: typed calls to the analytics API over
 * gRPC (HTTP/2, Node only) or over the public JSON routes (any fetch).
 */
import { createClient, type Client, type Interceptor, type Transport } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { AnalyticsService } from "./gen/weldpulse/v1/analytics_pb.js";
import { FunnelService } from "./gen/weldpulse/v1/funnels_pb.js";
import { IngestService } from "./gen/weldpulse/v1/ingest_pb.js";
import type { MessageInitShape } from "@bufbuild/protobuf";
import {
  LiveService,
  type StreamRealtimeResponse,
  type StreamRealtimeRequestSchema,
} from "./gen/weldpulse/v1/live_pb.js";
import { SitesService } from "./gen/weldpulse/v1/sites_pb.js";
import { createJsonTransport } from "./json.js";

export * from "./gen/weldpulse/v1/analytics_pb.js";
export * from "./gen/weldpulse/v1/funnels_pb.js";
export * from "./gen/weldpulse/v1/ingest_pb.js";
export * from "./gen/weldpulse/v1/live_pb.js";
export { createJsonTransport, httpRoute, type JsonTransportOptions } from "./json.js";
export { Code, ConnectError } from "@connectrpc/connect";

export interface WeldpulseOptions {
  /** The JSON API (`http://127.0.0.1:8080`) or, with `protocol: "grpc"`, the gRPC port. */
  baseUrl: string;
  /** An `ak_live_...` key; sent as `authorization: Bearer ...`. */
  apiKey: string;
  /** `"json"` (default): the public /v1 routes; `"grpc"`: native gRPC. */
  protocol?: "json" | "grpc";
  /** Per-call timeout in milliseconds unless a call passes `{ timeoutMs }`; default none. */
  timeoutMs?: number;
}

/** A Transport with the API key, for `createClient(AnyService, transport)`. */
export function createWeldpulseTransport(options: WeldpulseOptions): Transport {
  const auth: Interceptor = (next) => (req) => {
    req.header.set("authorization", `Bearer ${options.apiKey}`);
    return next(req);
  };
  const common = { baseUrl: options.baseUrl, interceptors: [auth], defaultTimeoutMs: options.timeoutMs };
  return options.protocol === "grpc" ? createGrpcTransport(common) : createJsonTransport(common);
}

/** A typed client of IngestService: `collect` (public) and `import` (scope `events:write`). */
export function createIngestClient(options: WeldpulseOptions): Client<typeof IngestService> {
  return createClient(IngestService, createWeldpulseTransport(options));
}

/** A typed client of AnalyticsService: `await client.getStats({ start, end })`. */
export function createWeldpulseClient(options: WeldpulseOptions): Client<typeof AnalyticsService> {
  return createClient(AnalyticsService, createWeldpulseTransport(options));
}

/**
 * A typed client of FunnelService: `runFunnel` and `listFunnels` (scope `stats:read`),
 * `createFunnel` and `deleteFunnel` (scope `sites:write`).
 */
export function createFunnelClient(options: WeldpulseOptions): Client<typeof FunnelService> {
  return createClient(FunnelService, createWeldpulseTransport(options));
}

/**
 * Live visitors as an async iterator of updates (the first at once, then one
 * every `intervalSeconds`, 1-60, default 5), over gRPC or as Server-Sent
 * Events through the JSON routes. Leaving the loop, or aborting `signal`,
 * closes the stream (connect's own iterators need the signal for that). The
 * stream has no timeout. A revoked key ends it with Unauthenticated over
 * gRPC; through the JSON routes the iteration simply ends.
 *
 * `for await (const update of streamRealtime(options, { intervalSeconds: 5 })) ...`
 */
export async function* streamRealtime(
  options: WeldpulseOptions,
  request: MessageInitShape<typeof StreamRealtimeRequestSchema> = {},
  signal?: AbortSignal,
): AsyncGenerator<StreamRealtimeResponse> {
  const controller = new AbortController();
  const abort = () => controller.abort();
  signal?.addEventListener("abort", abort);
  const client = createClient(LiveService, createWeldpulseTransport({ ...options, timeoutMs: undefined }));
  try {
    yield* client.streamRealtime(request, { signal: controller.signal });
  } finally {
    signal?.removeEventListener("abort", abort);
    controller.abort();
  }
}

/**
 * A typed client of SitesService: `createSite`, `updateSite` and the goals of a site
 * (`createGoal`, `listGoals`, `deleteGoal`). Changes need scope `sites:write`.
 */
export function createSitesClient(options: WeldpulseOptions): Client<typeof SitesService> {
  return createClient(SitesService, createWeldpulseTransport(options));
}
