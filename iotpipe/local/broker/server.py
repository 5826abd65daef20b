"""The MQTT broker: mutual TLS, IoT Core's authorization and limits, topic rules on publish.

asyncio in one thread of the emulator process (no thread per connection), so a thousand
idle devices cost a socket and a coroutine each. What a device may do is asked of the
``authorizer`` (the emulator's: the IoT policies attached to the presenting certificate)
for every connect, publish, subscribe and delivery, as IoT Core does. An accepted publish
is handed to ``on_publish`` (the topic rules) before its PUBACK is sent, so a PUBACK means
the rules ran and what they stored is durable (the hook may return a blocking wait, run
off the loop). A connection keeps being read while its publishes wait to be durable, and
their PUBACKs, refusals included, go out in the order the publishes came (`Session.acks`,
as MQTT requires). IoT Core's limits hold: QoS 0 and 1 only, 128 KB payloads, keep-alive
clamped to 30-1200 s, one connection per client id (a second one closes the first).
A client's mistake closes that client's connection and is logged in one line.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import threading
from collections.abc import Callable

import iotpipe.local.broker.codec as codec
from iotpipe.local.broker.codec import MalformedPacket, Publish
from iotpipe.local.broker.session import KEEP_ALIVE_BOUNDS, Session
from iotpipe.local.broker.waits import DurableWaits

LOG = logging.getLogger("iotpipe.local.broker")
MAX_PAYLOAD = 128 * 1024
MAX_PACKET = MAX_PAYLOAD + 64 * 1024  # a payload at the limit plus its topic and properties
MAX_FILTERS = 8  # per SUBSCRIBE
MAX_CLIENT_ID = 128
UNSPECIFIED_ERROR = 0x80
MAX_BACKLOG = 1024 * 1024  # bytes queued toward one subscriber before deliveries are dropped
PACKET_TIMEOUT_S = 30.0  # the rest of a packet, once its first byte arrived
CLOSE_TIMEOUT_S = 2.0
# QoS 1 publishes of one connection read ahead of their PUBACKs. Why: reading the next
# publish only after the last one's fsync left each device one message per fsync; reading
# on lets a device's in-flight window (paho: 20) share the stores' group commits.
MAX_UNACKED = 100

# (certificate DER, client id, action "iot:Connect" | "iot:Publish" | ..., topic or None)
Authorizer = Callable[[bytes, str, str, str | None], bool]
# (client id, topic, payload) -> None or what must finish (off the loop) before the
# PUBACK; runs the topic rules, raises to refuse the message
PublishHook = Callable[[str, str, bytes], Callable[[], None] | None]


class Refused(Exception):
    """Close this connection; ``reason`` is the MQTT 5 reason code sent first."""

    def __init__(self, reason: int, why: str) -> None:
        super().__init__(why)
        self.reason = reason


def _not_accepted(msg: Publish, exc: Exception) -> Refused:
    LOG.warning("mqtt publish to %s not accepted: %s", msg.topic, exc)
    return Refused(UNSPECIFIED_ERROR, f"publish to {msg.topic!r} failed")


class MqttBroker:
    """Start with :meth:`start` (returns once listening), stop with :meth:`stop`."""

    def __init__(
        self,
        ssl_context: ssl.SSLContext,
        authorizer: Authorizer,
        on_publish: PublishHook,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.host, self.port = host, port
        self._ssl, self._authorize, self._on_publish = ssl_context, authorizer, on_publish
        self._sessions: dict[str, Session] = {}
        self._retained: dict[str, Publish] = {}
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        self._thread: threading.Thread | None = None
        self.accepted = 0  # publishes handed to the rules
        self._durable = DurableWaits()

    # --- lifecycle ------------------------------------------------------------------------
    def start(self) -> None:
        ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(ready,), daemon=True)
        self._thread.start()
        if not ready.wait(10) or self._server is None:
            raise RuntimeError(f"the MQTT broker could not listen on {self.host}:{self.port}")

    def _run(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._server = self._loop.run_until_complete(
                asyncio.start_server(
                    self._serve, self.host, self.port, ssl=self._ssl, limit=MAX_PACKET
                )
            )
            self.port = self._server.sockets[0].getsockname()[1]
        except OSError as exc:
            LOG.error("MQTT broker cannot listen on %s:%s: %s", self.host, self.port, exc)
            ready.set()
            return
        ready.set()
        self._loop.run_forever()

    def stop(self) -> None:
        if self._server is None:
            return

        async def close() -> None:
            assert self._server is not None
            self._server.close()
            for s in list(self._sessions.values()):
                s.writer.transport.abort()  # a silent device must not hold up the stop
            others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in others:
                task.cancel()
            await asyncio.gather(*others, return_exceptions=True)

        with contextlib.suppress(RuntimeError, TimeoutError):
            asyncio.run_coroutine_threadsafe(close(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread:
            self._thread.join(5)
        self._server = None

    @property
    def connections(self) -> int:
        return len(self._sessions)

    # --- one connection -------------------------------------------------------------------
    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sslobj = writer.get_extra_info("ssl_object")
        cert = sslobj.getpeercert(binary_form=True) if sslobj else None
        session = Session(writer, cert or b"")
        clean_exit = False
        try:
            if not cert:
                raise Refused(codec.NOT_AUTHORIZED, "no client certificate")
            await self._connect(session, reader)
            clean_exit = await self._loop_packets(session, reader)
        except Refused as exc:
            LOG.info("mqtt %s closed: %s", session.client_id or "-", exc)
            if session.version == codec.V5 and session.client_id:
                session.send(codec.disconnect(codec.V5, exc.reason))
        except (MalformedPacket, asyncio.IncompleteReadError, OSError) as e:  # TLS, resets
            LOG.info("mqtt %s closed: %s", session.client_id or "-", e or type(e).__name__)
        except asyncio.CancelledError:
            clean_exit = True  # the broker is stopping: no will, no traceback
        finally:
            await self._close(session, clean_exit)

    async def _close(self, session: Session, clean_exit: bool) -> None:
        if session.acker is not None and not session.acker.done():
            assert session.acks is not None  # what the rules took is counted and delivered
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(session.acks.join(), CLOSE_TIMEOUT_S)
            session.acker.cancel()
        if self._sessions.get(session.client_id) is session:
            del self._sessions[session.client_id]
            if session.will and not clean_exit:
                with contextlib.suppress(Refused):
                    await self._accept_publish(session, session.will)
        with contextlib.suppress(Exception, asyncio.CancelledError):
            session.writer.close()
            await asyncio.wait_for(session.writer.wait_closed(), CLOSE_TIMEOUT_S)

    async def _read(
        self, reader: asyncio.StreamReader, timeout: float | None
    ) -> tuple[int, int, bytes]:
        head = await asyncio.wait_for(reader.readexactly(1), timeout)
        length, shift = 0, 0
        for _ in range(4):
            b = (await asyncio.wait_for(reader.readexactly(1), PACKET_TIMEOUT_S))[0]
            length |= (b & 0x7F) << shift
            if not b & 0x80:
                break
            shift += 7
        else:
            raise MalformedPacket("bad remaining length")
        if length > MAX_PACKET:
            raise Refused(codec.PACKET_TOO_LARGE, f"packet of {length} bytes")
        body = await asyncio.wait_for(reader.readexactly(length), PACKET_TIMEOUT_S)
        return head[0] >> 4, head[0] & 0x0F, body

    async def _connect(self, session: Session, reader: asyncio.StreamReader) -> None:
        kind, _, body = await self._read(reader, 10.0)
        if kind != codec.CONNECT:
            raise MalformedPacket("first packet is not CONNECT")
        req = codec.parse_connect(body)
        session.version = req.version if req.version in (codec.V311, codec.V5) else codec.V311
        if req.version not in (codec.V311, codec.V5):
            session.send(codec.connack(codec.V311, codec.UNSUPPORTED_VERSION))
            raise Refused(codec.UNSUPPORTED_VERSION, f"MQTT protocol level {req.version}")
        if not req.client_id or len(req.client_id.encode()) > MAX_CLIENT_ID:
            session.send(codec.connack(session.version, codec.BAD_CLIENT_ID))
            raise Refused(codec.BAD_CLIENT_ID, "client id empty or over 128 bytes")
        if not await self._allowed(session.cert, req.client_id, "iot:Connect", None):
            session.send(codec.connack(session.version, codec.NOT_AUTHORIZED))
            raise Refused(codec.NOT_AUTHORIZED, f"connect as {req.client_id!r} denied")
        low, high = KEEP_ALIVE_BOUNDS
        session.keep_alive = min(max(req.keep_alive or high, low), high)
        told = session.keep_alive if session.keep_alive != req.keep_alive else None
        session.client_id, session.will = req.client_id, req.will
        old = self._sessions.get(req.client_id)
        self._sessions[req.client_id] = session
        if old is not None:  # IoT Core: a second connection with the same id closes the first
            old.send(codec.disconnect(old.version, codec.SESSION_TAKEN_OVER))
            old.will = None
            old.writer.close()
        session.send(codec.connack(session.version, keep_alive=told))

    async def _loop_packets(self, session: Session, reader: asyncio.StreamReader) -> bool:
        """Handle packets until DISCONNECT (True) or the connection ends (raises)."""
        timeout = 1.5 * session.keep_alive
        while True:
            kind, flags, body = await self._read(reader, timeout)
            if kind == codec.PUBLISH:
                await self._publish(session, flags, body)
            elif kind == codec.SUBSCRIBE:
                await self._subscribe(session, body)
            elif kind == codec.UNSUBSCRIBE:
                pid, filters = codec.parse_unsubscribe(body, session.version)
                for f in filters:
                    session.filters.pop(f, None)
                session.send(codec.unsuback(session.version, pid, len(filters)))
            elif kind == codec.PINGREQ:
                session.send(codec.PINGRESP_BYTES)
            elif kind == codec.DISCONNECT:
                session.will = None
                return True
            elif kind != codec.PUBACK:  # acks of our QoS 1 deliveries need no action
                raise Refused(codec.PROTOCOL_ERROR, f"packet type {kind} not supported")
            await session.writer.drain()

    async def _publish(self, session: Session, flags: int, body: bytes) -> None:
        msg = codec.parse_publish(flags, body, session.version)
        if msg.qos == 2:
            raise Refused(codec.QOS_NOT_SUPPORTED, "QoS 2 is not supported by AWS IoT Core")
        if len(msg.payload) > MAX_PAYLOAD:
            raise Refused(codec.PACKET_TOO_LARGE, f"payload of {len(msg.payload)} bytes > 128 KB")
        loop = asyncio.get_running_loop()
        try:
            durable = await self._take_publish(session, msg)
            waiting = self._durable.submit(durable) if durable is not None else None
        except Refused as exc:
            if not session.unacked or session.version != codec.V5:
                self._refuse(session, msg, exc)  # nothing ahead, or closing: order is moot
                return
            waiting = loop.create_future()  # its PUBACK with the reason, after those ahead
            waiting.set_exception(exc)
        if waiting is None and not session.unacked:
            await self._finish_publish(session, msg)  # nothing to wait for, nothing ahead
            return
        if session.acks is None:
            session.acks = asyncio.Queue(MAX_UNACKED)
            session.acker = loop.create_task(self._acknowledge(session))
        session.unacked += 1
        await session.acks.put((msg, waiting))  # a full window stops reading this connection

    async def _acknowledge(self, session: Session) -> None:
        """Finish a connection's waiting publishes in order. A failure closes a 3.1.1
        connection (later publishes go unacknowledged: resent); MQTT 5 gets a reason code."""
        acks = session.acks
        assert acks is not None
        while True:
            msg, waiting = await acks.get()
            try:
                if waiting is not None:
                    try:
                        await waiting
                    except Refused:
                        raise
                    except Exception as exc:
                        raise _not_accepted(msg, exc) from exc
                await self._finish_publish(session, msg)
            except Refused as exc:
                try:
                    self._refuse(session, msg, exc)
                except Refused:
                    LOG.info("mqtt %s closed: %s", session.client_id or "-", exc)
                    session.writer.close()
                    while not acks.empty():  # not acknowledged, so not counted either
                        acks.get_nowait()
                        acks.task_done()
                        session.unacked -= 1
                    return
            finally:
                acks.task_done()
                session.unacked -= 1

    @staticmethod
    def _refuse(session: Session, msg: Publish, exc: Refused) -> None:
        """Say no to one publish, or raise ``exc`` where only closing can say it."""
        if session.version != codec.V5 or exc.reason == codec.PROTOCOL_ERROR:
            raise exc  # 3.1.1 has no way to say "denied" but closing the connection
        if msg.qos == 1 and msg.packet_id is not None:
            session.send(codec.puback(codec.V5, msg.packet_id, exc.reason))

    async def _accept_publish(self, session: Session, msg: Publish) -> None:
        """Take, wait and finish in one go (a will, sent when its connection is gone)."""
        durable = await self._take_publish(session, msg)
        if durable is not None:
            try:
                await self._durable.wait(durable)
            except Exception as exc:
                raise _not_accepted(msg, exc) from exc
        await self._finish_publish(None, msg)

    async def _take_publish(self, session: Session, msg: Publish) -> Callable[[], None] | None:
        """Check and run the rules on ``msg``; what must be durable before it is acknowledged."""
        action = "iot:RetainPublish" if msg.retain else "iot:Publish"
        if "+" in msg.topic or "#" in msg.topic or not msg.topic:
            raise Refused(codec.PROTOCOL_ERROR, f"invalid topic name {msg.topic!r}")
        if not await self._allowed(session.cert, session.client_id, action, msg.topic):
            raise Refused(codec.NOT_AUTHORIZED, f"publish to {msg.topic!r} denied")
        try:
            # Inline, not on a thread: the rules are in-memory work (~0.1 ms) and a thread
            # hop per message cost more than the work itself.
            return self._on_publish(session.client_id, msg.topic, msg.payload)
        except Exception as exc:  # the rules could not take it: not acknowledged
            raise _not_accepted(msg, exc) from exc

    async def _finish_publish(self, session: Session | None, msg: Publish) -> None:
        """``msg`` is taken and durable: count it, retain it, deliver it, acknowledge it."""
        self.accepted += 1
        if msg.retain:
            if msg.payload:
                self._retained[msg.topic] = msg
            else:
                self._retained.pop(msg.topic, None)
        await self._deliver(msg)
        if session is not None and msg.qos == 1 and msg.packet_id is not None:
            session.send(codec.puback(session.version, msg.packet_id))

    async def _subscribe(self, session: Session, body: bytes) -> None:
        sub = codec.parse_subscribe(body, session.version)
        if len(sub.filters) > MAX_FILTERS:
            raise Refused(codec.PROTOCOL_ERROR, f"{len(sub.filters)} filters in one SUBSCRIBE")
        failure = codec.NOT_AUTHORIZED if session.version == codec.V5 else codec.SUB_FAILURE_311
        codes: list[int] = []
        for topic_filter, qos in sub.filters:
            if qos == 2:
                codes.append(codec.QOS_NOT_SUPPORTED if session.version == codec.V5 else failure)
            elif await self._allowed(
                session.cert, session.client_id, "iot:Subscribe", topic_filter
            ):
                session.filters[topic_filter] = qos
                codes.append(qos)
            else:
                codes.append(failure)
        session.send(codec.suback(session.version, sub.packet_id, codes))
        for topic, kept in list(self._retained.items()):
            if topic in session.filters:  # retained messages: exact-topic subscriptions only
                await self._send_to(session, kept, session.filters[topic])

    async def _deliver(self, msg: Publish) -> None:
        for s in list(self._sessions.values()):
            granted = [q for f, q in s.filters.items() if codec.topic_matches(f, msg.topic)]
            if granted:
                await self._send_to(s, msg, max(granted))

    async def _send_to(self, session: Session, msg: Publish, qos: int) -> None:
        if not await self._allowed(session.cert, session.client_id, "iot:Receive", msg.topic):
            return
        if session.writer.transport.get_write_buffer_size() > MAX_BACKLOG:
            session.dropped += 1  # a subscriber that does not read loses messages, not memory
            return
        qos = min(qos, msg.qos)
        out = Publish(msg.topic, msg.payload, qos, False, session.packet_id() if qos else None)
        session.send(codec.publish(session.version, out))

    async def _allowed(self, cert: bytes, client_id: str, action: str, topic: str | None) -> bool:
        try:
            return bool(self._authorize(cert, client_id, action, topic))
        except Exception:  # an authorizer fault denies; it never opens the broker
            LOG.exception("authorizer failed for %s %s", action, client_id)
            return False
