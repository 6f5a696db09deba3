"""corral's ASGI driver: the asyncio side of a `-k asgi` worker.

The worker's Rust event loop owns every socket; it parses requests, receives
their bodies and writes responses. This module runs on the worker's main
thread, in one asyncio loop: it takes complete requests from the Rust side
(`bridge.take()`, when the bridge's eventfd is readable), runs the
application on each as a task, and hands every message the application
sends back to Rust (`Exchange.send`), which frames it. Rust tells it when a
client left or a slow client's buffer drained through the same eventfd.

Lifespan (startup before the worker serves, shutdown after its last
request), per-request timeouts (`--timeout`: the task's stack is logged and
the client gets a 504) and the heartbeat the master watches live here too.
The worker calls `Driver(app, bridge, options)`, `startup()` (before its
event loop accepts anything), `serve()` (until the event loop has drained)
and `shutdown()`.
"""

import asyncio
import time
import traceback

class LifespanFailed(Exception):
    """The application failed its lifespan startup (one line for the log)."""


def new_loop(kind):
    if kind in ("auto", "uvloop"):
        try:
            import uvloop
        except ImportError:
            if kind == "uvloop":
                raise LifespanFailed("--asgi-loop uvloop: the uvloop package is not installed")
        else:
            return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def summary(exc):
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class Lifespan:
    """The ASGI lifespan protocol, one task for the worker's whole life."""

    def __init__(self, driver):
        self.driver = driver
        self.mode = driver.options["lifespan"]
        self.loop = driver.loop
        self.events = asyncio.Queue()
        self.started = self.loop.create_future()
        self.stopped = self.loop.create_future()
        self.supported = True
        self.task = None

    async def receive(self):
        return await self.events.get()

    async def send(self, message):
        kind = message["type"]
        if kind == "lifespan.startup.complete":
            self._settle(self.started, None)
        elif kind == "lifespan.startup.failed":
            why = message.get("message") or "lifespan.startup.failed"
            self._settle(self.started, LifespanFailed(why))
        elif kind == "lifespan.shutdown.complete":
            self._settle(self.stopped, None)
        elif kind == "lifespan.shutdown.failed":
            why = message.get("message") or "lifespan.shutdown.failed"
            self.driver.bridge.log_error(f"ASGI lifespan shutdown failed: {why}")
            self._settle(self.stopped, None)
        else:
            raise RuntimeError(f"Unexpected ASGI lifespan message type {kind!r}")

    @staticmethod
    def _settle(future, error):
        if future.done():
            return
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(error)

    async def run(self):
        scope = {
            "type": "lifespan",
            "asgi": {"version": "3.0", "spec_version": "2.0"},
            "state": self.driver.state,
        }
        try:
            await self.driver.app(scope, self.receive, self.send)
        except BaseException as exc:
            if not self.started.done():
                if self.mode == "auto":
                    # What uvicorn says too: an app without lifespan support
                    # raises on the scope it does not know.
                    self.supported = False
                    self.driver.bridge.log_info(
                        "ASGI 'lifespan' protocol appears unsupported.")
                    self._settle(self.started, None)
                else:
                    self._settle(self.started, LifespanFailed(
                        "exception in 'lifespan' startup: " + summary(exc)))
                self.driver.bridge.log_debug("".join(traceback.format_exception(exc)))
            else:
                self.driver.bridge.log_error(
                    "Exception in 'lifespan' protocol\n" + "".join(traceback.format_exception(exc)))
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
        finally:
            if not self.started.done():
                if self.mode == "on":
                    self._settle(self.started, LifespanFailed(
                        "the application returned before lifespan startup completed"))
                else:
                    self.supported = False
                    self._settle(self.started, None)
            self._settle(self.stopped, None)

    async def startup(self):
        self.task = self.loop.create_task(self.run())
        await self.events.put({"type": "lifespan.startup"})
        await self.started

    async def shutdown(self):
        if not self.supported or self.task is None or self.task.done():
            return
        await self.events.put({"type": "lifespan.shutdown"})
        try:
            # A quarter of the graceful timeout: work left after the last
            # response had up to half (Driver.finish).
            budget = self.driver.options["graceful_timeout"] / 4
            await asyncio.wait_for(asyncio.shield(self.stopped), budget)
        except asyncio.TimeoutError:
            self.driver.bridge.log_error("ASGI lifespan shutdown did not complete in time")
            self.task.cancel()


class Cycle:
    """One request: the application's receive and send, bound to an
    `Exchange` (the Rust side of the request)."""

    __slots__ = ("x", "driver", "waiters", "task", "started_at", "timed_out")

    def __init__(self, exchange, driver):
        self.x = exchange
        self.driver = driver
        # One future per waiting receive or send (several tasks of one app
        # may wait at once, and any of them may be cancelled); `wake`
        # resolves them all and each caller looks again.
        self.waiters = []
        self.task = None
        self.started_at = time.monotonic()
        self.timed_out = False

    async def run(self):
        x = self.x
        try:
            await self.driver.app(x.scope, self.receive, self.send)
        except asyncio.CancelledError:
            x.cancelled(self.timed_out)
        except BaseException as exc:
            x.failed("".join(traceback.format_exception(exc)))
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
        else:
            x.returned()
        finally:
            self.driver.cycles.pop(x.id, None)
            # Another task of the app may still wait in receive().
            self.wake()

    async def wait(self):
        future = self.driver.loop.create_future()
        self.waiters.append(future)
        try:
            await future
        finally:
            if future in self.waiters:
                self.waiters.remove(future)

    async def receive(self):
        x = self.x
        while True:
            # The body, WebSocket messages, or the disconnect once the
            # response is over or the client left; None: wait for a note.
            message = x.receive()
            if message is not None:
                return message
            await self.wait()

    async def send(self, message):
        x = self.x
        if x.send(message):
            # Over the high-water mark for a slow client: wait for the
            # event loop to write some, or for the client to leave.
            while x.full and not x.over:
                await self.wait()
        elif x.over:
            self.wake()

    def wake(self):
        waiters, self.waiters = self.waiters, []
        for future in waiters:
            if not future.done():
                future.set_result(None)

    def abandon(self):
        if self.task is not None and not self.task.done():
            self.task.cancel()

    def stack(self):
        """Where the request's task waits: every coroutine it awaits, down
        the chain (a task's own stack shows only its outermost frame)."""
        frames = []
        coro = self.task.get_coro()
        while coro is not None:
            frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
            if frame is None:
                break
            frames.append((frame, frame.f_lineno))
            coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
        lines = traceback.format_list(traceback.StackSummary.extract(frames))
        return "the request's task, most recent call last:\n" + "".join(lines)


class Driver:
    def __init__(self, app, bridge, options):
        self.app = app
        self.bridge = bridge
        self.options = options
        self.loop = new_loop(options["loop"])
        asyncio.set_event_loop(self.loop)
        self.state = {}
        self.cycles = {}
        self.lifespan = None
        self.closing = None
        # Each request's scope gets a copy of the lifespan state, unless
        # lifespan is off.
        self.scope_state = None if options["lifespan"] == "off" else self.state

    # --- lifespan, around serving -------------------------------------

    def startup(self):
        """Run lifespan startup; raises LifespanFailed."""
        if self.options["lifespan"] == "off":
            return
        self.lifespan = Lifespan(self)
        self.loop.run_until_complete(self.lifespan.startup())

    def shutdown(self):
        try:
            if self.lifespan is not None:
                self.loop.run_until_complete(self.lifespan.shutdown())
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        finally:
            self.loop.close()

    # --- serving -----------------------------------------------------

    def serve(self):
        """Serve until the event loop has drained and closed the queue."""
        self.closing = self.loop.create_future()
        self.loop.add_reader(self.bridge.fileno(), self.on_wake)
        self.loop.call_soon(self.on_wake)
        self.loop.call_later(0.5, self.tick)
        self.loop.run_until_complete(self.finish())
        self.loop.remove_reader(self.bridge.fileno())

    async def finish(self):
        await self.closing
        # Responses are all written; what runs on is work the application
        # started after answering (background tasks). It gets half the
        # graceful timeout (the master's SIGKILL comes at the whole, and
        # lifespan shutdown needs its turn), then is cancelled.
        tasks = [c.task for c in self.cycles.values() if c.task is not None]
        if tasks:
            done, pending = await asyncio.wait(tasks, timeout=self.options["graceful_timeout"] / 2)
            for t in pending:
                t.cancel()
            if pending:
                await asyncio.wait(pending, timeout=1)

    def on_wake(self):
        exchanges, notes, closed = self.bridge.take(self.scope_state)
        cycles = self.cycles
        loop = self.loop
        grace = self.options["disconnect_grace"]
        # New requests first: a note may be about one of them (a client
        # that left while its request was queued).
        for x in exchanges:
            cycle = Cycle(x, self)
            cycles[x.id] = cycle
            cycle.task = loop.create_task(cycle.run())
        for id_, what in notes:
            cycle = cycles.get(id_)
            if cycle is not None:
                cycle.wake()
                if what == "gone":
                    # The app heard (http.disconnect, or OSError from
                    # send); after the grace period its task is cancelled.
                    loop.call_later(grace, cycle.abandon)
        if exchanges or notes:
            # The master times the loop from here: an app that blocks it
            # at once (time.sleep in an async view or a WebSocket handler)
            # is caught too.
            self.bridge.beat(True)
        if closed and not self.closing.done():
            self.closing.set_result(None)

    def tick(self):
        """Twice a second: tell the master the loop turns, and time out
        requests that ran past --timeout."""
        busy = False
        limit = self.options["timeout"]
        now = time.monotonic()
        for cycle in list(self.cycles.values()):
            # Any task still running (a WebSocket, work after a response)
            # keeps the master watching the loop turn.
            busy = True
            # The timeout is for an answer: a WebSocket lives as long as
            # its client, and a response that started may stream on.
            if cycle.x.over or cycle.x.websocket or cycle.x.started:
                continue
            # While the client still sends its body, the app waits on the
            # client (--body-timeout's business): the clock starts after.
            if cycle.x.receiving:
                cycle.started_at = now
                continue
            if limit and not cycle.timed_out and now - cycle.started_at > limit:
                cycle.timed_out = True
                self.bridge.log_error(
                    f"Request exceeded the timeout ({limit:g} s) before its response "
                    f"started; answering 504. " + cycle.stack().rstrip())
                cycle.task.cancel()
        self.bridge.beat(busy)
        if self.closing is not None and not self.closing.done():
            self.loop.call_later(0.5, self.tick)
