"""The live-bidding stream service: Server-Sent Events for the auction pages, fed by PostgreSQL
LISTEN/NOTIFY (the bid trigger's `market_auction` channel), or by Redis pub/sub when
`REDIS_URL` is set (then the bid endpoint publishes after commit).

Why a separate small service and not the app's workers: under gunicorn's gthread workers each
open stream holds a thread, so a few hundred watchers would take every thread and starve bids
and pages.  Here one asyncio loop holds every watcher's socket; one LISTEN connection (its own,
autocommit, as LISTEN needs) receives each bid once and fans it out.  No Flask, no session: it
only relays what the database published, to anyone (bidders are pseudonymous 竞买人N).

    python -m app.market.stream --port 5001        # `make run` starts it beside gunicorn
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import time
from collections import defaultdict

CHANNEL = "market_auction"
PATH = re.compile(r"^/auctions/(\d+)/events$")


class Hub:
    def __init__(self):
        self.watchers: dict[int, set[asyncio.Queue]] = defaultdict(set)
        self.sent = 0

    def publish(self, payload: str) -> None:
        try:
            auction = int(json.loads(payload)["auction"])
        except (ValueError, KeyError, TypeError):
            return
        for q in list(self.watchers.get(auction, ())):
            if q.qsize() < 1000:  # a stalled watcher loses events, never the service
                q.put_nowait(payload)
                self.sent += 1

    @property
    def count(self) -> int:
        return sum(len(v) for v in self.watchers.values())


def _pg_url(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


async def listen_pg(hub: Hub, url: str, listening: asyncio.Event) -> None:
    import psycopg

    while True:
        try:
            conn = await psycopg.AsyncConnection.connect(_pg_url(url), autocommit=True)
            async with conn:
                await conn.execute(f"LISTEN {CHANNEL}")
                listening.set()
                async for n in conn.notifies():
                    hub.publish(n.payload)
        except (OSError, psycopg.Error):
            await asyncio.sleep(1)


async def listen_redis(hub: Hub, url: str, listening: asyncio.Event) -> None:
    import redis.asyncio as aioredis

    while True:
        try:
            r = aioredis.from_url(url)
            ps = r.pubsub()
            await ps.subscribe(CHANNEL)
            listening.set()
            async for m in ps.listen():
                if m.get("type") == "message":
                    data = m["data"]
                    hub.publish(data.decode() if isinstance(data, bytes) else data)
        except (OSError, aioredis.RedisError):
            await asyncio.sleep(1)


async def handle(hub: Hub, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 heartbeat: float) -> None:
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
        writer.close()
        return
    line = head.split(b"\r\n", 1)[0].decode("latin-1").split()
    path = line[1].split("?", 1)[0] if len(line) >= 2 else ""
    if path == "/health":
        body = json.dumps({"watchers": hub.count, "sent": hub.sent}).encode()
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                     + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body)
        await writer.drain()
        writer.close()
        return
    m = PATH.match(path)
    if not m or line[0] != "GET":
        writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        await writer.drain()
        writer.close()
        return
    auction = int(m.group(1))
    q: asyncio.Queue = asyncio.Queue()
    hub.watchers[auction].add(q)
    try:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                     b"Cache-Control: no-cache\r\nAccess-Control-Allow-Origin: *\r\n"
                     b"X-Accel-Buffering: no\r\nConnection: keep-alive\r\n\r\n"
                     b"retry: 1000\n: connected\n\n")
        await writer.drain()
        while True:
            try:
                payload = await asyncio.wait_for(q.get(), heartbeat)
                writer.write(b"event: bid\ndata: " + payload.encode() + b"\n\n")
            except TimeoutError:
                writer.write(b": keep-alive " + str(int(time.time())).encode() + b"\n\n")
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        hub.watchers[auction].discard(q)
        writer.close()


async def serve(host: str, port: int, db_url: str, redis_url: str | None = None,
                heartbeat: float = 15.0, ready=None) -> None:
    hub = Hub()
    listening = asyncio.Event()
    source = (listen_redis(hub, redis_url, listening) if redis_url
              else listen_pg(hub, db_url, listening))
    task = asyncio.create_task(source)
    await asyncio.wait_for(listening.wait(), 30)  # serve once nothing published can be missed
    server = await asyncio.start_server(lambda r, w: handle(hub, r, w, heartbeat), host, port,
                                        backlog=2048)
    if ready:
        ready()
    async with server:
        try:
            await server.serve_forever()
        finally:
            task.cancel()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--host", default=os.environ.get("STREAM_HOST", "127.0.0.1"))
    ap.add_argument("--port", type=int, default=int(os.environ.get("STREAM_PORT", 5001)))
    a = ap.parse_args()
    db_url = os.environ.get("DATABASE_URL", "postgresql:///sanquan")
    print(f"market stream on http://{a.host}:{a.port}/auctions/ID/events "
          f"({'redis' if os.environ.get('REDIS_URL') else 'postgres LISTEN'})", flush=True)
    asyncio.run(serve(a.host, a.port, db_url, os.environ.get("REDIS_URL")))


if __name__ == "__main__":
    main()
