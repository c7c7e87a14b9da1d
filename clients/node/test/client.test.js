// The official KurrentDB Node client against annals serve: append with an
// expected revision, the wrong-expected-version error, reads, and a live
// $all subscription. ANNALS_BIN names the annals binary (scripts/node-client
// builds it).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  KurrentDBClient, jsonEvent, NO_STREAM, START, WrongExpectedVersionError, StreamDeletedError, excludeSystemEvents,
} from "@kurrent/kurrentdb-client";

let server, client, dir;

function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}

async function waitHealthy(port) {
  for (let i = 0; i < 100; i++) {
    try {
      const r = await fetch(`http://127.0.0.1:${port}/health/live`);
      if (r.status === 204) return;
    } catch { /* not up yet */ }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error("annals serve did not come up");
}

before(async () => {
  const bin = process.env.ANNALS_BIN;
  assert.ok(bin, "set ANNALS_BIN to the annals binary");
  dir = mkdtempSync(join(tmpdir(), "annals-node-"));
  const port = await freePort();
  server = spawn(bin, ["serve", "--db", join(dir, "db"), "--listen", `127.0.0.1:${port}`], { stdio: ["ignore", "inherit", "pipe"] });
  server.stderr.on("data", () => {});
  await waitHealthy(port);
  client = KurrentDBClient.connectionString`kurrentdb://127.0.0.1:${port}?tls=false`;
});

after(async () => {
  await client?.dispose();
  if (server) {
    const exited = new Promise((r) => server.once("exit", r));
    server.kill("SIGTERM");
    assert.equal(await exited, 0, "annals serve exits 0 on SIGTERM");
  }
  rmSync(dir, { recursive: true, force: true });
});

test("append at an expected revision, and the conflict error", async () => {
  const first = await client.appendToStream("order-1", jsonEvent({ type: "OrderPlaced", data: { seats: 5 } }), { streamState: NO_STREAM });
  assert.equal(first.success, true);
  assert.equal(first.nextExpectedRevision, 0n);
  await client.appendToStream("order-1", jsonEvent({ type: "OrderPaid", data: {} }), { streamState: 0n });
  await assert.rejects(
    client.appendToStream("order-1", jsonEvent({ type: "OrderPlaced", data: {} }), { streamState: NO_STREAM }),
    (err) => err instanceof WrongExpectedVersionError && err.streamName === "order-1" && err.actualState === 1n,
  );
});

// Without credentials the Node client appends through BatchAppend, which
// annals advertises: many appends share one call, and a large one goes in
// chunks.
test("appends pipelined on one BatchAppend call", async () => {
  const appends = [];
  for (let i = 0; i < 200; i++) {
    appends.push(client.appendToStream(`pipe-${i % 5}`, jsonEvent({ type: "Booked", data: { i } })));
  }
  const results = await Promise.all(appends);
  assert.ok(results.every((r) => r.success));
  for (let s = 0; s < 5; s++) {
    let n = 0;
    for await (const e of client.readStream(`pipe-${s}`, { fromRevision: START })) n += e.event ? 1 : 0;
    assert.equal(n, 40);
  }
});

test("an append sent in chunks is written whole", async () => {
  const events = [];
  for (let i = 0; i < 50; i++) events.push(jsonEvent({ type: "Line", data: { i, text: "x".repeat(100) } }));
  const r = await client.appendToStream("chunked", events, { streamState: NO_STREAM, batchAppendSize: 1024 });
  assert.equal(r.nextExpectedRevision, 49n);
  const read = [];
  for await (const e of client.readStream("chunked", { fromRevision: START })) read.push(e.event.data.i);
  assert.deepEqual(read, events.map((_, i) => i));
});

test("appending to a tombstoned stream raises StreamDeletedError", async () => {
  await client.appendToStream("closed", jsonEvent({ type: "Opened", data: {} }));
  await client.tombstoneStream("closed");
  await assert.rejects(
    client.appendToStream("closed", jsonEvent({ type: "Reopened", data: {} })),
    (err) => err instanceof StreamDeletedError,
  );
});

test("read a stream", async () => {
  const events = [];
  for await (const e of client.readStream("order-1", { fromRevision: START })) events.push(e.event);
  assert.deepEqual(events.map((e) => e.type), ["OrderPlaced", "OrderPaid"]);
  assert.deepEqual(events[0].data, { seats: 5 });
  assert.equal(events[1].revision, 1n);
});

test("subscribe to $all and receive live events", async () => {
  let history = 0;
  for await (const e of client.readAll({ fromPosition: START, filter: excludeSystemEvents() })) history += e.event ? 1 : 0;
  const subscription = client.subscribeToAll({ fromPosition: START, filter: excludeSystemEvents() });
  const seen = [];
  let appended = false;
  for await (const e of subscription) {
    seen.push(e.event.streamId);
    if (!appended && seen.length === history) { // history delivered: now a live one
      appended = true;
      await client.appendToStream("order-2", jsonEvent({ type: "OrderPlaced", data: {} }));
    }
    if (seen.length === history + 1) break;
  }
  await subscription.unsubscribe();
  assert.deepEqual(seen.slice(0, 2), ["order-1", "order-1"]);
  assert.equal(seen[history], "order-2");
});
