/**
 * Every RPC of every service in the protos, called through the TypeScript
 * client over gRPC and over the JSON routes, against a live seeded stack.
 * Started by tests/test_typescript_client.py, which passes the stack in env.
 */
import assert from "node:assert/strict";
import { readdirSync } from "node:fs";
import { describe, it } from "node:test";
import type { DescMethod, DescService } from "@bufbuild/protobuf";
import {
  Code,
  ConnectError,
  createFunnelClient,
  createIngestClient,
  createSitesClient,
  streamRealtime,
  createWeldpulseClient,
  httpRoute,
  type WeldpulseOptions,
} from "../src/index.js";

interface Fixture {
  key: string; // a fresh key of project A (tests/dataset.py)
  siteIds: [string, string]; // project A's two sites
  funnelKey: string; // a key of project A with stats:read and sites:write
  liveKey: string; // a project whose site has 2 visitors on /now (tests/conftest.py live_project)
  tenant: { siteId: string; siteKey: string; domain: string; readKey: string; writeKey: string };
  sites: { siteId: string; writeKey: string }; // a project of its own, key with sites:write
}

const grpcUrl = process.env.WELDPULSE_GRPC_URL;
const httpUrl = process.env.WELDPULSE_HTTP_URL;
const fixture = JSON.parse(process.env.WELDPULSE_FIXTURE ?? "null") as Fixture | null;
const skip = grpcUrl && httpUrl && fixture ? false : "needs a live stack: run tests/test_typescript_client.py (make test)";
const start = "2024-01-15T00:00:00Z";
const end = "2024-01-15T23:59:59Z";

type Protocol = "grpc" | "json";
type Case = (options: WeldpulseOptions, f: Fixture) => Promise<void>;

function options(protocol: Protocol, apiKey: string): WeldpulseOptions {
  return { baseUrl: (protocol === "grpc" ? grpcUrl : httpUrl) ?? "", apiKey, protocol, timeoutMs: 10_000 };
}

/** Plain objects of the rows, without the `$typeName` of protobuf-es messages. */
function rows<T extends object>(data: T[]): Record<string, unknown>[] {
  return data.map((row) => Object.fromEntries(Object.entries(row).filter(([k]) => k !== "$typeName")));
}

// Funnel steps over tests/dataset.py's 2024-01-15 (tests/test_python_client.py has the same).
const day15 = { start: "2024-01-15", end: "2024-01-15" };
const steps = [{ pagePath: "/" }, { pagePath: "/pricing" }, { eventName: "signup_click" }];
const unique = (o: WeldpulseOptions) => `ts-${o.protocol}-${Date.now()}-${Math.random()}`;

// Figures computed by hand in tests/test_metrics.py from tests/dataset.py.
const CASES: Record<string, Case> = {
  "weldpulse.v1.AnalyticsService.GetStats": async (o, f) => {
    const client = createWeldpulseClient(o);
    assert.deepEqual(rows((await client.getStats({ start, end })).data), [
      { visitors: 6, pageviews: 10, sessions: 7, avgDuration: 600, bounceRate: 0.4286 },
    ]);
    const one = await client.getStats({ start, end, siteId: f.siteIds[1] });
    assert.deepEqual(rows(one.data), [{ visitors: 1, pageviews: 1, sessions: 1, avgDuration: 0, bounceRate: 1 }]);
  },
  "weldpulse.v1.AnalyticsService.ListPages": async (o) => {
    const client = createWeldpulseClient(o);
    assert.deepEqual(rows((await client.listPages({ start, end })).data), [
      { pathname: "/", visitors: 5, pageviews: 5, avgDuration: 910, bounceRate: 0.5 },
      { pathname: "/pricing", visitors: 2, pageviews: 4, avgDuration: 735, bounceRate: 0.5 },
      { pathname: "/docs", visitors: 1, pageviews: 1, avgDuration: 0, bounceRate: 0 },
    ]);
    const top = await client.listPages({ start, end, limit: 1 });
    assert.deepEqual(top.data.map((r) => r.pathname), ["/"]);
  },
  "weldpulse.v1.AnalyticsService.ListReferrers": async (o) => {
    const { data } = await createWeldpulseClient(o).listReferrers({ start, end });
    assert.deepEqual(rows(data), [
      { referrerSource: "Google", visitors: 3, pageviews: 7, bounceRate: 0.3333 },
      { referrerSource: "GitHub", visitors: 1, pageviews: 2, bounceRate: 0 },
      { referrerSource: "Direct / None", visitors: 1, pageviews: 1, bounceRate: 1 },
      { referrerSource: "Hacker News", visitors: 1, pageviews: 1, bounceRate: 1 },
      { referrerSource: "Twitter", visitors: 1, pageviews: 0, bounceRate: 0 },
    ]);
  },
  "weldpulse.v1.AnalyticsService.GetTimeseries": async (o) => {
    const client = createWeldpulseClient(o);
    const hourly = (await client.getTimeseries({ start, end })).data;
    assert.equal(hourly.length, 24);
    assert.deepEqual(rows(hourly)[10], { t: "2024-01-15T10:00:00", visitors: 4, pageviews: 6, sessions: 4 });
    const daily = await client.getTimeseries({ start, end, interval: "1 day" });
    assert.deepEqual(rows(daily.data), [{ t: "2024-01-15T00:00:00", visitors: 6, pageviews: 10, sessions: 7 }]);
  },
  "weldpulse.v1.AnalyticsService.GetRealtime": async (o, f) => {
    const live = await createWeldpulseClient({ ...o, apiKey: f.liveKey }).getRealtime({});
    assert.deepEqual(rows(live.data), [
      { pathname: "/now", country: "CA", deviceType: "desktop", referrerSource: "Google", currentVisitors: 2 },
    ]);
    assert.deepEqual((await createWeldpulseClient(o).getRealtime({})).data, []);
  },
  "weldpulse.v1.LiveService.StreamRealtime": async (o, f) => {
    const updates = [];
    for await (const update of streamRealtime({ ...o, apiKey: f.liveKey }, { intervalSeconds: 1 })) {
      updates.push(update);
      if (updates.length === 2) break; // leaving the loop closes the stream
    }
    for (const update of updates) {
      assert.match(update.t, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
      assert.equal(update.currentVisitors, 2);
      assert.deepEqual(rows(update.data), [
        { pathname: "/now", country: "CA", deviceType: "desktop", referrerSource: "Google", currentVisitors: 2 },
      ]);
    }
    const bad = streamRealtime(o, { intervalSeconds: 61 });
    await assert.rejects(
      (async () => {
        for await (const _ of bad) break;
      })(),
      (err: unknown) => ConnectError.from(err).code === Code.InvalidArgument && ConnectError.from(err).rawMessage.includes("interval_seconds"),
    );
  },
  "weldpulse.v1.AnalyticsService.ListEvents": async (o) => {
    const { data } = await createWeldpulseClient(o).listEvents({ start, end });
    assert.deepEqual(rows(data), [
      { eventName: "signup_click", total: 2, uniqueVisitors: 1 },
      { eventName: "newsletter", total: 1, uniqueVisitors: 1 },
    ]);
  },
  "weldpulse.v1.AnalyticsService.ListGeo": async (o) => {
    const { data } = await createWeldpulseClient(o).listGeo({ start, end, limit: 3 });
    assert.deepEqual(rows(data), [
      { country: "US", region: "California", visitors: 2, pageviews: 5 },
      { country: "US", region: "New York", visitors: 1, pageviews: 3 },
      { country: "DE", region: "Berlin", visitors: 1, pageviews: 1 },
    ]);
  },
  "weldpulse.v1.AnalyticsService.ListDevices": async (o) => {
    const { data } = await createWeldpulseClient(o).listDevices({ start, end });
    assert.equal(data.length, 5);
    assert.deepEqual(rows(data)[3], { deviceType: "tablet", browser: "Safari", os: "iOS", visitors: 1, pageviews: 1 });
  },
  "weldpulse.v1.AnalyticsService.ListSites": async (o, f) => {
    const { data } = await createWeldpulseClient(o).listSites({});
    assert.deepEqual(data.map((s) => [s.id, s.domain, s.name]), [
      [f.siteIds[0], "example.com", "Main Site"],
      [f.siteIds[1], "blog.example.com", "blog.example.com"],
    ]);
    assert.ok(data.every((s) => s.siteKey.startsWith("sk_live_") && s.isActive));
  },
  "weldpulse.v1.AnalyticsService.Query": async (o) => {
    const client = createWeldpulseClient(o);
    const dateRange = { start, end };
    const whole = await client.query({ metrics: ["visitors", "pageviews", "sessions"], dateRange });
    assert.deepEqual(whole.results.map((r) => r.metrics), [[6, 10, 7]]); // as GetStats
    const pricing = await client.query({
      metrics: ["pageviews"],
      dateRange,
      dimensions: ["page"],
      filters: { and: [{ dimension: "page", op: "is", values: ["/PRICING"], caseSensitive: false }] },
    });
    assert.deepEqual(pricing.results.map((r) => [r.dimensions, r.metrics]), [[["/pricing"], [4]]]);
    const request = { metrics: ["pageviews"], dateRange, dimensions: ["page"] };
    const all = await client.query(request);
    const paged: unknown[] = [];
    let pageToken = "";
    do {
      const page = await client.query({ ...request, limit: 1, pageToken });
      paged.push(...page.results.map((r) => [r.dimensions, r.metrics]));
      pageToken = page.meta?.nextPageToken ?? "";
    } while (pageToken);
    assert.deepEqual(paged, all.results.map((r) => [r.dimensions, r.metrics]));
    assert.ok(paged.length > 1 && paged.length === all.meta?.totalRows);
  },
  "weldpulse.v1.FunnelService.RunFunnel": async (o, f) => {
    const reply = await createFunnelClient(o).runFunnel({ siteId: f.siteIds[0], dateRange: day15, steps });
    assert.deepEqual(reply.steps.map((s) => [s.label, s.visitors, s.dropoff]), [
      ["/", 4, 0],
      ["/pricing", 2, 2],
      ["signup_click", 1, 1],
    ]);
    assert.equal(reply.steps[2].conversionRate, 0.25);
  },
  "weldpulse.v1.FunnelService.CreateFunnel": async (o, f) => {
    const writer = createFunnelClient({ ...o, apiKey: f.funnelKey });
    const window = { mode: "minutes", minutes: 10 };
    const saved = await writer.createFunnel({ siteId: f.siteIds[0], name: unique(o), steps: steps.slice(0, 2), window });
    assert.deepEqual([saved.window?.mode, saved.window?.minutes, saved.steps.length], ["minutes", 10, 2]);
    const run = await createFunnelClient(o).runFunnel({ siteId: f.siteIds[0], dateRange: day15, funnelId: saved.id });
    assert.deepEqual(run.steps.map((s) => s.visitors), [4, 1]);
    await writer.deleteFunnel({ siteId: f.siteIds[0], funnelId: saved.id });
  },
  "weldpulse.v1.FunnelService.ListFunnels": async (o, f) => {
    const writer = createFunnelClient({ ...o, apiKey: f.funnelKey });
    const saved = await writer.createFunnel({ siteId: f.siteIds[0], name: unique(o), steps });
    const { data } = await createFunnelClient(o).listFunnels({ siteId: f.siteIds[0] });
    assert.ok(data.some((x) => x.id === saved.id && x.window?.mode === "session"));
    await writer.deleteFunnel({ siteId: f.siteIds[0], funnelId: saved.id });
  },
  "weldpulse.v1.FunnelService.DeleteFunnel": async (o, f) => {
    const writer = createFunnelClient({ ...o, apiKey: f.funnelKey });
    const saved = await writer.createFunnel({ siteId: f.siteIds[0], name: unique(o), steps });
    await writer.deleteFunnel({ siteId: f.siteIds[0], funnelId: saved.id });
    const { data } = await createFunnelClient(o).listFunnels({ siteId: f.siteIds[0] });
    assert.ok(!data.some((x) => x.id === saved.id));
  },
  "weldpulse.v1.IngestService.Collect": async (o, f) => {
    const day = new Date().toISOString().slice(0, 10);
    const reader = createWeldpulseClient({ ...o, apiKey: f.tenant.readKey });
    const pageviews = async () => (await reader.getStats({ start: day, end: day })).data[0].pageviews;
    const before = await pageviews();
    const url = `https://${f.tenant.domain}/ts-${o.protocol}`;
    await createIngestClient(o).collect({ siteKey: f.tenant.siteKey, name: "pageview", url });
    assert.equal(await pageviews(), before + 1);
  },
  "weldpulse.v1.IngestService.Import": async (o, f) => {
    const event = (clock: string, path: string) => ({
      timestamp: `2024-03-04T${clock}Z`,
      name: "pageview",
      url: path ? `https://${f.tenant.domain}${path}` : "",
      visitorId: `ts-${o.protocol}`,
    });
    const reader = createWeldpulseClient({ ...o, apiKey: f.tenant.readKey });
    const day = { start: "2024-03-04", end: "2024-03-04" };
    const before = (await reader.getStats(day)).data[0];
    const writer = createIngestClient({ ...o, apiKey: f.tenant.writeKey });
    const reply = await writer.import({
      siteId: f.tenant.siteId,
      events: [event("09:00:00", "/a"), event("09:01:00", "/b"), event("09:02:00", "")],
    });
    assert.equal(reply.accepted, 2);
    assert.deepEqual(reply.rejected.map((r) => [r.index, r.error]), [[2, "url: required"]]);
    const after = (await reader.getStats(day)).data[0];
    assert.deepEqual([after.visitors - before.visitors, after.pageviews - before.pageviews], [1, 2]);
  },
  "weldpulse.v1.SitesService.CreateSite": async (o, f) => {
    const client = createSitesClient({ ...o, apiKey: f.sites.writeKey });
    const domain = `ts-${o.protocol}-${Date.now()}.example`;
    const site = await client.createSite({ domain, timezone: "Europe/Berlin" });
    assert.deepEqual([site.domain, site.name, site.timezone], [domain, domain, "Europe/Berlin"]);
    await assert.rejects(client.createSite({ domain }), (e: ConnectError) => e.code === Code.InvalidArgument);
  },
  "weldpulse.v1.SitesService.UpdateSite": async (o, f) => {
    const client = createSitesClient({ ...o, apiKey: f.sites.writeKey });
    const site = await client.updateSite({ siteId: f.sites.siteId, name: `TS ${o.protocol}` });
    assert.equal(site.name, `TS ${o.protocol}`);
    await assert.rejects(
      createSitesClient(o).updateSite({ siteId: f.siteIds[0], name: "x" }), // key A: stats:read only
      (e: ConnectError) => e.code === Code.PermissionDenied,
    );
  },
  "weldpulse.v1.SitesService.CreateGoal": async (o, f) => {
    const client = createSitesClient({ ...o, apiKey: f.sites.writeKey });
    const goal = await client.createGoal({ siteId: f.sites.siteId, name: `Create ${o.protocol}`, pagePath: "/a/**" });
    assert.deepEqual([goal.siteId, goal.pagePath, goal.eventName], [f.sites.siteId, "/a/**", ""]);
  },
  "weldpulse.v1.SitesService.ListGoals": async (o, f) => {
    const client = createSitesClient({ ...o, apiKey: f.sites.writeKey });
    const goal = await client.createGoal({ siteId: f.sites.siteId, name: `List ${o.protocol}`, eventName: "e" });
    const { data } = await client.listGoals({ siteId: f.sites.siteId });
    assert.deepEqual(rows(data).at(-1), rows([goal])[0]);
  },
  "weldpulse.v1.SitesService.DeleteGoal": async (o, f) => {
    const client = createSitesClient({ ...o, apiKey: f.sites.writeKey });
    const goal = await client.createGoal({ siteId: f.sites.siteId, name: `Delete ${o.protocol}`, eventName: "e" });
    await client.deleteGoal({ siteId: f.sites.siteId, goalId: goal.id });
    const { data } = await client.listGoals({ siteId: f.sites.siteId });
    assert.ok(!data.some((g) => g.id === goal.id));
  },
};

/** Every service of every generated file, so a new RPC fails below until it has a case. */
async function services(): Promise<DescService[]> {
  const root = new URL("../src/gen/", import.meta.url);
  const found: DescService[] = [];
  for (const file of readdirSync(root, { recursive: true }) as string[]) {
    if (!file.endsWith("_pb.js") || file.startsWith("google")) continue;
    const module = (await import(new URL(file, root).href)) as Record<string, unknown>;
    for (const value of Object.values(module)) {
      if ((value as DescService | undefined)?.kind === "service") found.push(value as DescService);
    }
  }
  return found;
}

const methods: DescMethod[] = (await services()).flatMap((s) => s.methods);

for (const protocol of ["grpc", "json"] as const) {
  describe(`every RPC over ${protocol}`, { skip }, () => {
    it("finds the services in the generated code", () => assert.ok(methods.length >= 11, `${methods.length}`));
    for (const method of methods) {
      const name = `${method.parent.typeName}.${method.name}`;
      it(name, async () => {
        const run = CASES[name];
        if (!run) assert.fail(`${name} has no case in clients/typescript/test/client.test.ts CASES: add one`);
        if (protocol === "json") assert.ok(httpRoute(method).path.startsWith("/v1/"));
        await run(options(protocol, fixture!.key), fixture!);
      });
    }
  });

  describe(`errors over ${protocol}`, { skip }, () => {
    it("an invalid parameter is InvalidArgument naming it", async () => {
      const client = createWeldpulseClient(options(protocol, fixture!.key));
      await assert.rejects(client.listPages({ start, end, limit: 0 }), (err: unknown) => {
        const e = ConnectError.from(err);
        return e.code === Code.InvalidArgument && e.rawMessage.includes("limit");
      });
    });
    it("an unknown key is Unauthenticated", async () => {
      const client = createWeldpulseClient(options(protocol, "ak_live_wrong"));
      await assert.rejects(client.listSites({}), (err: unknown) => ConnectError.from(err).code === Code.Unauthenticated);
    });
  });
}
