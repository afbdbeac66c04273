/**
 * A connect Transport that calls the public JSON routes (`/v1/...`) that
 * Envoy transcodes to gRPC, using each RPC's `google.api.http` annotation.
 */
import {
  create,
  fromJson,
  getOption,
  hasOption,
  toJson,
  type DescMessage,
  type DescMethod,
  type JsonObject,
  type JsonValue,
} from "@bufbuild/protobuf";
import { Code, ConnectError, type Interceptor, type Transport } from "@connectrpc/connect";
import { createContextValues } from "@connectrpc/connect";
import { runStreamingCall, runUnaryCall } from "@connectrpc/connect/protocol";
import { http } from "./gen/google/api/annotations_pb.js";

export interface JsonTransportOptions {
  /** Where Envoy serves the JSON routes, e.g. `http://127.0.0.1:8080`. */
  baseUrl: string;
  interceptors?: Interceptor[];
  /** Per-call timeout when the call gives none; none by default. */
  defaultTimeoutMs?: number;
  fetch?: typeof globalThis.fetch;
}

/** The REST error codes of `{"error": ..., "code": ...}` bodies, as gRPC codes. */
const REST_CODES: Record<string, Code> = {
  BAD_REQUEST: Code.InvalidArgument,
  UNAUTHORIZED: Code.Unauthenticated,
  FORBIDDEN: Code.PermissionDenied,
  NOT_FOUND: Code.Unimplemented,
  RATE_LIMITED: Code.ResourceExhausted,
  INTERNAL_ERROR: Code.Internal,
  SERVICE_UNAVAILABLE: Code.Unavailable,
};

/** The verb and path of an RPC, and which request field (or `*`) is the body. */
export function httpRoute(method: DescMethod): { verb: string; path: string; body: string } {
  if (!hasOption(method, http)) {
    throw new ConnectError(`${method.parent.typeName}.${method.name} has no JSON route`, Code.Unimplemented);
  }
  const rule = getOption(method, http);
  if (rule.pattern.case === undefined || rule.pattern.case === "custom") {
    throw new ConnectError(`${method.name}: unsupported google.api.http rule`, Code.Unimplemented);
  }
  return { verb: rule.pattern.case.toUpperCase(), path: rule.pattern.value, body: rule.body };
}

/** Fills `{field}` path variables and puts the other set fields in the query or body. */
function buildRequest(method: DescMethod, input: DescMessage, message: unknown, baseUrl: string) {
  const { verb, path, body } = httpRoute(method);
  const fields = toJson(input, message as never, { useProtoFieldName: true }) as JsonObject;
  const url = new URL(
    path.replace(/\{([\w.]+)(=[^}]*)?\}/g, (_, name: string) => {
      const value = fields[name];
      delete fields[name];
      return encodeURIComponent(String(value ?? ""));
    }),
    baseUrl,
  );
  let payload: JsonValue | undefined;
  if (body === "*") {
    payload = fields;
  } else {
    if (body !== "") {
      payload = fields[body];
      delete fields[body];
    }
    for (const [name, value] of Object.entries(fields)) {
      for (const item of Array.isArray(value) ? value : [value]) {
        url.searchParams.append(name, typeof item === "object" ? JSON.stringify(item) : String(item));
      }
    }
  }
  return { verb, url, payload };
}

async function errorFrom(response: Response): Promise<ConnectError> {
  const text = await response.text();
  let code = response.status === 429 ? Code.ResourceExhausted : Code.Unknown;
  let message = text || response.statusText;
  try {
    const body = JSON.parse(text) as { error?: string; code?: string };
    message = body.error ?? message;
    code = REST_CODES[body.code ?? ""] ?? code;
  } catch {
    // Not our JSON error body (e.g. a proxy's page): keep the raw text.
  }
  return new ConnectError(message, code, response.headers);
}

/**
 * The messages of a Server-Sent Events body: each event's `data:` lines, as
 * JSON of `output`. Ends when the server ends the response (a stream the
 * server ended with an error status also ends cleanly through Envoy).
 */
async function* sseMessages<O extends DescMessage>(output: O, body: ReadableStream<Uint8Array>) {
  const decoder = new TextDecoder();
  let buffered = "";
  let data: string[] = [];
  for await (const chunk of body as unknown as AsyncIterable<Uint8Array>) {
    buffered += decoder.decode(chunk, { stream: true });
    let newline: number;
    while ((newline = buffered.indexOf("\n")) >= 0) {
      const line = buffered.slice(0, newline).replace(/\r$/, "");
      buffered = buffered.slice(newline + 1);
      if (line === "") {
        if (data.length) yield fromJson(output, JSON.parse(data.join("\n")) as JsonValue, { ignoreUnknownFields: true });
        data = [];
      } else if (line.startsWith("data:")) {
        data.push(line.slice(5).replace(/^ /, ""));
      }
    }
  }
  if (data.length) yield fromJson(output, JSON.parse(data.join("\n")) as JsonValue, { ignoreUnknownFields: true });
}

/** A Transport over the JSON routes; server-streaming RPCs are read as Server-Sent Events. */
export function createJsonTransport(options: JsonTransportOptions): Transport {
  const doFetch = options.fetch ?? globalThis.fetch;
  return {
    async unary(method, signal, timeoutMs, header, input, contextValues) {
      return await runUnaryCall({
        interceptors: options.interceptors,
        signal,
        timeoutMs: timeoutMs ?? options.defaultTimeoutMs,
        req: {
          stream: false,
          service: method.parent,
          method,
          requestMethod: "GET",
          url: "",
          header: new Headers(header),
          contextValues: contextValues ?? createContextValues(),
          message: input,
        },
        next: async (req) => {
          const { verb, url, payload } = buildRequest(method, method.input, req.message, options.baseUrl);
          const headers = new Headers(req.header);
          headers.set("accept", "application/json");
          if (payload !== undefined) headers.set("content-type", "application/json");
          const response = await doFetch(url, {
            method: verb,
            headers,
            body: payload === undefined ? undefined : JSON.stringify(payload),
            signal: req.signal,
          });
          if (!response.ok) throw await errorFrom(response);
          const json = (await response.json()) as JsonValue;
          return {
            stream: false,
            service: method.parent,
            method,
            header: response.headers,
            message: fromJson(method.output, json, { ignoreUnknownFields: true }),
            trailer: new Headers(),
          };
        },
      });
    },
    async stream(method, signal, timeoutMs, header, input, contextValues) {
      if (method.methodKind !== "server_streaming") {
        throw new ConnectError(`${method.name}: client streaming is not served as JSON`, Code.Unimplemented);
      }
      return await runStreamingCall({
        interceptors: options.interceptors,
        signal,
        timeoutMs: timeoutMs ?? options.defaultTimeoutMs,
        req: {
          stream: true,
          service: method.parent,
          method,
          requestMethod: "GET",
          url: "",
          header: new Headers(header),
          contextValues: contextValues ?? createContextValues(),
          message: input,
        },
        next: async (req) => {
          let request: unknown;
          for await (const message of req.message) request = message;
          const { verb, url } = buildRequest(method, method.input, request, options.baseUrl);
          const headers = new Headers(req.header);
          headers.set("accept", "text/event-stream");
          const response = await doFetch(url, { method: verb, headers, signal: req.signal });
          if (!response.ok || response.body === null) throw await errorFrom(response);
          return {
            stream: true,
            service: method.parent,
            method,
            header: response.headers,
            message: sseMessages(method.output, response.body),
            trailer: new Headers(),
          };
        },
      });
    },
  };
}
