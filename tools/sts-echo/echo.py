#!/usr/bin/env python3
"""An echo STS peer: the speech-to-speech service's Socket.IO protocol,
answering every fragment with its own audio.

The audio goes back as it came, in its format (``aac`` or ``pcm_s16le``)
with its sample rate and channels; ``pcm_s16le`` that is not whole 16-bit
frames is answered with an ``INVALID_AUDIO`` error instead, as a real STS
would refuse it. With ``--tone-hz HZ`` every answer is a sine tone of HZ
instead (``pcm_s16le``, the fragment's length), so whoever reads the dubbed
output can tell the dub from the original audio.

It stands in for the real STS in the sts crate's tests and benchmark, the
way the original media-service's E2E tests used an echo server. Started as
a child process, it listens on a free loopback port and prints
``listening on 127.0.0.1:PORT`` as its first stdout line, so callers wait on
that line instead of sleeping. Every later stdout line is one JSON record of
what it saw or did (the same records ``--log`` appends to a file), so a
test can wait on an exact record too.

Faults are switched on by flags: a slow STS (--delay-ms), backpressure
(--backpressure-every), an error for one sequence number (--error-on), a
dropped connection (--drop-after), refused connections (--refuse-connections),
a hung server that stops answering and pinging (--freeze-on),
a session-level error (--session-error-on) and malformed answers
(--malformed-on, --garbage-on). With --exit-with-stdin it exits when its
stdin closes, so a peer never outlives the test process that started it,
however that process ends.
"""

import argparse
import asyncio
import base64
import array
import binascii
import functools
import json
import math
import os
import socket
import sys
import threading
import time
import uuid

import socketio
from aiohttp import web

# A 6-s segment is ~130 kB of base64; leave room for high bitrates.
MAX_MESSAGE_BYTES = 16 * 1024 * 1024


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0,
                   help="listen here (default: a free port); a restarted peer takes its old one")
    p.add_argument("--max-inflight", type=int, default=3, help="announced in stream:ready")
    p.add_argument("--delay-ms", type=int, default=0, help="processing delay per fragment")
    p.add_argument("--backpressure-every", type=int, default=0, metavar="N",
                   help="emit backpressure after every N-th fragment received")
    p.add_argument("--backpressure-delay-ms", type=int, default=200,
                   help="recommended_delay_ms of those backpressure events")
    p.add_argument("--error-on", type=int, action="append", default=[], metavar="K",
                   help="answer sequence number K with an error, every time it comes")
    p.add_argument("--drop-after", type=int, default=0, metavar="N",
                   help="drop the connection on the N-th fragment, unanswered, once")
    p.add_argument("--refuse-connections", type=int, default=0, metavar="N",
                   help="refuse the first N Socket.IO connections")
    p.add_argument("--malformed-on", type=int, default=None, metavar="K",
                   help="once, answer K with a fragment:processed whose data is not an object")
    p.add_argument("--garbage-on", type=int, default=None, metavar="K",
                   help="once, answer K with a Socket.IO packet that is not JSON")
    p.add_argument("--session-error-on", type=int, default=None, metavar="K",
                   help="once, answer K with an error naming no fragment (a session-level error)")
    p.add_argument("--freeze-on", type=int, default=None, metavar="K",
                   help="once, on K, block the whole server (no answers, no pings) for --freeze-ms")
    p.add_argument("--freeze-ms", type=int, default=3000)
    p.add_argument("--ping-interval", type=float, default=25.0, help="Engine.IO pingInterval, seconds")
    p.add_argument("--ping-timeout", type=float, default=20.0, help="Engine.IO pingTimeout, seconds")
    p.add_argument("--tone-hz", type=float, default=0, metavar="HZ",
                   help="answer with a sine tone of HZ (pcm_s16le, the fragment's duration) "
                        "instead of the audio sent, so a dub is told from the original")
    p.add_argument("--exit-with-stdin", action="store_true",
                   help="exit when stdin reaches end of file (the parent is gone)")
    p.add_argument("--log", default=None, metavar="FILE", help="append every record here too")
    return p.parse_args()


class Recorder:
    """One JSON record per line, to stdout and the --log file, flushed at
    once so a reader waiting on a line never waits on a buffer."""

    def __init__(self, path):
        self.file = open(path, "a", encoding="utf-8") if path else None

    def __call__(self, event, **fields):
        line = json.dumps({"event": event, "t": time.monotonic(), **fields})
        if self.file:
            self.file.write(line + "\n")
            self.file.flush()
        print(line, flush=True)


def audio_problem(audio):
    """Why the audio of a fragment:data is unusable, or None. Whatever the
    format, it is echoed as it came (format, rate and channels included);
    pcm_s16le is first checked to be whole 16-bit frames of its channel
    count, which is all a PCM consumer needs to be true."""
    if audio.get("format") != "pcm_s16le":
        return None
    channels = audio.get("channels")
    rate = audio.get("sample_rate_hz")
    if not isinstance(channels, int) or channels < 1 or not isinstance(rate, int) or rate < 1:
        return f"pcm_s16le needs sample_rate_hz and channels, got {rate!r} Hz, {channels!r} channels"
    try:
        size = len(base64.b64decode(audio["data_base64"], validate=True))
    except (binascii.Error, ValueError) as e:
        return f"data_base64 is not base64: {e}"
    if size == 0 or size % (2 * channels):
        return f"{size} bytes are not whole {channels}-channel 16-bit frames"
    return None


TONE_RATE_HZ = 48000
TONE_CHANNELS = 2


@functools.lru_cache(maxsize=8)
def tone_second(hz, rate, channels):
    """One second of a sine of hz at half scale, as pcm_s16le bytes. A whole
    number of hertz repeats exactly every second, so longer tones are this
    second tiled: the samples are computed once per stream format, and an
    answer costs a copy, not a loop in Python (which took seconds on a
    loaded machine and made dubs late)."""
    samples = array.array("h")
    step = 2 * math.pi * hz / rate
    for n in range(rate):
        value = int(16383 * math.sin(step * n))
        samples.extend([value] * channels)
    if sys.byteorder != "little":
        samples.byteswap()
    return samples.tobytes()


@functools.lru_cache(maxsize=8)
def tone(hz, duration_ms, rate, channels):
    """A sine of hz, duration_ms long, as base64 pcm_s16le: what --tone-hz
    answers in place of the speech. Cached: fragments of a stream have a
    few lengths only."""
    second = tone_second(hz, rate, channels)
    size = round(rate * duration_ms / 1000) * 2 * channels
    data = (second * (size // len(second) + 1))[:size]
    return base64.b64encode(data).decode("ascii")


def answer_audio(args, audio):
    """The dubbed audio of a fragment:processed: the audio sent, or a tone."""
    if not args.tone_hz:
        return {
            "format": audio["format"],
            "sample_rate_hz": audio["sample_rate_hz"],
            "channels": audio["channels"],
            "duration_ms": audio["duration_ms"],
            "data_base64": audio["data_base64"],
        }
    rate = audio.get("sample_rate_hz") or TONE_RATE_HZ
    channels = audio.get("channels") or TONE_CHANNELS
    duration_ms = int(audio["duration_ms"])
    return {
        "format": "pcm_s16le",
        "sample_rate_hz": rate,
        "channels": channels,
        "duration_ms": duration_ms,
        "data_base64": tone(args.tone_hz, duration_ms, rate, channels),
    }


def build(args, record):
    sio = socketio.AsyncServer(
        async_mode="aiohttp",
        transports=["websocket"],
        max_http_buffer_size=MAX_MESSAGE_BYTES,
        ping_interval=args.ping_interval,
        ping_timeout=args.ping_timeout,
        logger=False,
        engineio_logger=False,
    )
    state = {
        "received": 0,
        "dropped": False,
        "refused": 0,
        "malformed_done": False,
        "garbage_done": False,
        "session_error_done": False,
        "freeze_done": False,
        "inflight": {},
    }

    @sio.event
    async def connect(sid, environ, auth=None):
        if state["refused"] < args.refuse_connections:
            state["refused"] += 1
            record("refused", sid=sid, count=state["refused"])
            raise socketio.exceptions.ConnectionRefusedError("refused by --refuse-connections")
        state["inflight"][sid] = 0
        record("connect", sid=sid)

    @sio.event
    async def disconnect(sid, *reason):
        state["inflight"].pop(sid, None)
        record("disconnect", sid=sid, reason=str(reason[0]) if reason else None)

    @sio.on("stream:init")
    async def stream_init(sid, data):
        session_id = uuid.uuid4().hex
        record("stream_init", sid=sid, stream_id=data.get("stream_id"), config=data.get("config"))
        await sio.emit("stream:ready", {"session_id": session_id, "max_inflight": args.max_inflight}, to=sid)

    @sio.on("stream:end")
    async def stream_end(sid, data):
        record("stream_end", sid=sid, stream_id=data.get("stream_id"))

    def settle(sid):
        if sid in state["inflight"]:
            state["inflight"][sid] -= 1

    @sio.on("fragment:data")
    async def fragment_data(sid, data):
        state["received"] += 1
        seq = data["sequence_number"]
        fragment_id = data["fragment_id"]
        state["inflight"][sid] = state["inflight"].get(sid, 0) + 1
        audio = data["audio"]
        record("fragment", sid=sid, fragment_id=fragment_id, sequence_number=seq,
               inflight=state["inflight"][sid], bytes=len(audio["data_base64"]),
               format=audio.get("format"), sample_rate_hz=audio.get("sample_rate_hz"),
               channels=audio.get("channels"))

        if args.drop_after and state["received"] == args.drop_after and not state["dropped"]:
            state["dropped"] = True
            record("drop", sid=sid, sequence_number=seq)
            await sio.disconnect(sid)
            return

        await sio.emit("fragment:ack", {"fragment_id": fragment_id, "sequence_number": seq,
                                        "status": "received"}, to=sid)

        if args.malformed_on == seq and not state["malformed_done"]:
            state["malformed_done"] = True
            settle(sid)
            record("malformed", sid=sid, sequence_number=seq)
            await sio.emit("fragment:processed", "this is not an object", to=sid)
            return
        if args.garbage_on == seq and not state["garbage_done"]:
            state["garbage_done"] = True
            settle(sid)
            record("garbage", sid=sid, sequence_number=seq)
            eio_sid = sio.manager.eio_sid_from_sid(sid, "/")
            await sio.eio.send(eio_sid, '2["fragment:processed",{"broken"')
            return

        if args.freeze_on == seq and not state["freeze_done"]:
            state["freeze_done"] = True
            settle(sid)
            record("freeze", sid=sid, sequence_number=seq, ms=args.freeze_ms)
            # Deliberately blocking: the event loop stops, pings included,
            # as a hung STS process would.
            time.sleep(args.freeze_ms / 1000)
            record("thaw", sid=sid, sequence_number=seq)
            return

        if args.session_error_on == seq and not state["session_error_done"]:
            state["session_error_done"] = True
            settle(sid)
            record("session_error", sid=sid, sequence_number=seq)
            await sio.emit("error", {"code": "SESSION_FAILED", "message": "--session-error-on"}, to=sid)
            return

        if args.backpressure_every and state["received"] % args.backpressure_every == 0:
            record("backpressure", sid=sid, sequence_number=seq, delay_ms=args.backpressure_delay_ms)
            await sio.emit("backpressure", {"severity": "medium", "action": "slow_down",
                                            "recommended_delay_ms": args.backpressure_delay_ms}, to=sid)

        started = time.monotonic()
        if args.delay_ms:
            await asyncio.sleep(args.delay_ms / 1000)

        # Settled before the answer goes out: once the client has it, it may
        # send the next fragment, which must not count this one as in flight.
        settle(sid)
        if seq in args.error_on:
            record("error", sid=sid, fragment_id=fragment_id, sequence_number=seq)
            await sio.emit("error", {"code": "PROCESSING_FAILED", "fragment_id": fragment_id,
                                     "message": f"--error-on {seq}"}, to=sid)
            return
        problem = audio_problem(audio)
        if problem:
            # A real STS could not use such audio either: say so rather
            # than echo it, so a client bug shows as an error.
            record("bad_audio", sid=sid, fragment_id=fragment_id, sequence_number=seq, reason=problem)
            await sio.emit("error", {"code": "INVALID_AUDIO", "fragment_id": fragment_id,
                                     "message": problem}, to=sid)
            return
        record("processed", sid=sid, fragment_id=fragment_id, sequence_number=seq)
        await sio.emit("fragment:processed", {
            "fragment_id": fragment_id,
            "sequence_number": seq,
            "status": "success",
            "dubbed_audio": answer_audio(args, audio),
            "transcript": f"echo transcript {seq}",
            "translated_text": f"echo translation {seq}",
            "processing_time_ms": (time.monotonic() - started) * 1000,
        }, to=sid)

    return sio


def exit_when_stdin_closes():
    sys.stdin.read()
    os._exit(0)


async def main():
    args = parse_args()
    if args.exit_with_stdin:
        threading.Thread(target=exit_when_stdin_closes, daemon=True).start()
    record = Recorder(args.log)
    sio = build(args, record)
    app = web.Application()
    sio.attach(app)
    runner = web.AppRunner(app, handle_signals=True, access_log=None)
    await runner.setup()
    # Bind first (port 0 unless told), so the port is ours before anyone is
    # told; SO_REUSEADDR so a restart need not wait out TIME_WAIT.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, args.port))
    site = web.SockSite(runner, sock)
    await site.start()
    host, port = sock.getsockname()
    print(f"listening on {host}:{port}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
