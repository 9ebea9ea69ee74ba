"""The daemon's frame codec, event arrays and protocol helpers, with property tests."""

from __future__ import annotations

import argparse
import dataclasses
import struct
from typing import Any

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crucible import Event, Kind, Priority, Source, SourceType, Stats
from crucible._core import CoreConfig
from crucible._daemon.client import Backoff
from crucible._daemon.codec import (
    FrameDecoder,
    SourceCache,
    WireEvent,
    decode_event,
    decode_trusted,
    encode_body,
    encode_frame,
    event_fields,
    new_packer,
)
from crucible._daemon.options import (
    add_arguments,
    configs_from_args,
    daemon_argv,
    default_core_config,
)
from crucible._daemon.protocol import (
    PUBLISH,
    DaemonLimits,
    ErrorCode,
    ProtocolError,
    stats_from_wire,
    stats_to_wire,
)
from crucible._events import validate

# ------------------------------------------------------------------------ strategies

_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=20)
    | st.binary(max_size=20)
)
# Maps survive a round trip as they are; arrays come back as tuples (use_list=False).
_values = st.recursive(
    _scalars,
    lambda inner: (
        st.dictionaries(st.text(max_size=8), inner, max_size=4)
        | st.lists(inner, max_size=4).map(tuple)
    ),
    max_leaves=6,
)
_payloads = st.binary(max_size=2048) | st.dictionaries(st.text(max_size=8), _values, max_size=5)


@st.composite
def events(draw: st.DrawFn) -> Event:
    return Event(
        id=draw(st.text(min_size=1, max_size=30)),
        kind=draw(st.sampled_from(Kind)),
        source=Source(draw(st.text(min_size=1, max_size=12)), draw(st.sampled_from(SourceType))),
        payload=draw(_payloads),
        priority=draw(st.sampled_from(Priority)),
        targets=tuple(draw(st.lists(st.text(min_size=1, max_size=8), max_size=3))),
        created_at=draw(st.floats(allow_nan=False, allow_infinity=False)),
        metadata=draw(st.dictionaries(st.text(max_size=8), _values, max_size=3)),
        correlation_id=draw(st.none() | st.text(max_size=10)),
        causation_id=draw(st.none() | st.text(max_size=10)),
        retry_count=draw(st.integers(0, 10)),
        max_retries=draw(st.integers(0, 10)),
        published_at=draw(st.floats(allow_nan=False, allow_infinity=False)),
    )


def _same(a: Event, b: Event) -> None:
    for f in dataclasses.fields(Event):
        assert getattr(a, f.name) == getattr(b, f.name), f.name


def _chunks(data: bytes, cuts: list[int]) -> list[bytes]:
    out, pos = [], 0
    for cut in cuts:
        out.append(data[pos : pos + cut])
        pos += cut
    out.append(data[pos:])
    return out


# ------------------------------------------------------------------------ frames


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=4096), st.lists(st.integers(1, 64), max_size=8))
def test_any_bytes_give_frames_or_a_protocol_error(data: bytes, cuts: list[int]) -> None:
    decoder = FrameDecoder(1024)
    try:
        for chunk in _chunks(data, cuts):
            for frame in decoder.feed(chunk):
                assert isinstance(frame, tuple) and isinstance(frame[0], int)
        decoder.check_eof()
    except ProtocolError as exc:
        assert exc.code in (ErrorCode.MALFORMED, ErrorCode.OVERSIZED, ErrorCode.TRUNCATED)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(min_size=0, max_size=300), min_size=1, max_size=5))
def test_any_bodies_in_valid_length_prefixes_give_frames_or_malformed(bodies: list[bytes]) -> None:
    # Past the length prefix, so msgpack itself sees arbitrary bytes.
    data = b"".join(struct.pack(">I", len(b)) + b for b in bodies)
    try:
        frames = FrameDecoder(4096).feed(data)
    except ProtocolError as exc:
        assert exc.code == ErrorCode.MALFORMED
    else:
        assert len(frames) == len(bodies)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(events(), min_size=1, max_size=4), st.lists(st.integers(1, 500), max_size=6))
def test_a_batch_round_trips_through_a_frame(batch: list[Event], cuts: list[int]) -> None:
    frame = encode_frame([PUBLISH, 7, [event_fields(e) for e in batch]])
    decoder = FrameDecoder(1 << 20)
    frames: list[Any] = []
    for chunk in _chunks(frame, cuts):
        frames += decoder.feed(chunk)
    decoder.check_eof()
    assert len(frames) == 1
    kind, first, wire = frames[0]
    assert (kind, first, len(wire)) == (PUBLISH, 7, len(batch))
    sources: SourceCache = {}
    for original, fields in zip(batch, wire, strict=True):
        checked = decode_event(fields, sources, wire=True)
        assert isinstance(checked, WireEvent)
        # The daemon measures a payload itself: a map by its msgpack encoding (a producer
        # declares its JSON length); the array it delivers carries the measured size.
        if isinstance(original.payload, bytes):
            measured = len(original.payload)
            assert checked.wire is fields and measured == original.size_bytes
        else:
            measured = len(encode_body(original.payload))
            assert checked.wire == (*fields[:13], measured, fields[14])
        _same(dataclasses.replace(original, size_bytes=measured), checked)
        _same(original, decode_trusted(fields, sources))
        _same(checked, decode_trusted(checked.wire, sources))


# Values of the right type for some field but not valid in it.
_EDGES: tuple[Any, ...] = ("", -1, -(2**40), ("file-0", 1), (None,), (), 0, {}, b"")
_BASE = event_fields(Event(id="e", kind=Kind.FILE_CREATED, source=Source("s", SourceType.API)))


@settings(max_examples=200, deadline=None)
@given(
    st.lists(_scalars, min_size=13, max_size=16).map(tuple)
    | _values
    | st.tuples(st.integers(0, 14), _values).map(
        lambda change: (*_BASE[: change[0]], change[1], *_BASE[change[0] + 1 :])
    )
)
def test_any_array_decodes_to_an_event_or_a_value_error(fields: Any) -> None:
    try:
        event = decode_event(fields, {})
    except ValueError:
        return
    assert isinstance(event, Event)
    # The daemon publishes what decode_event accepts with only its size checked: decoding
    # must have checked all the rest of what validate checks.
    assert validate(event, 2**63) is None


def test_a_length_over_the_limit_is_refused_before_the_body_arrives() -> None:
    decoder = FrameDecoder(4096)
    with pytest.raises(ProtocolError) as info:
        decoder.feed(struct.pack(">I", 4097))
    assert info.value.code == ErrorCode.OVERSIZED


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (struct.pack(">I", 0), ErrorCode.MALFORMED),  # empty body
        (struct.pack(">I", 1) + b"\xc1", ErrorCode.MALFORMED),  # reserved msgpack byte
        (encode_frame({"not": "an array"}), ErrorCode.MALFORMED),
        (encode_frame(["type is not an int"]), ErrorCode.MALFORMED),
        (encode_frame([]), ErrorCode.MALFORMED),
        (struct.pack(">I", 3) + msgpack.packb([1]) + b"\x00", ErrorCode.MALFORMED),  # extra
    ],
)
def test_bad_bodies_are_malformed(data: bytes, code: str) -> None:
    with pytest.raises(ProtocolError) as info:
        FrameDecoder(4096).feed(data)
    assert info.value.code == code


def test_a_stream_that_ends_inside_a_frame_is_truncated() -> None:
    decoder = FrameDecoder(4096)
    assert decoder.feed(encode_frame([1, 2])[:-1]) == []
    assert decoder.buffered > 0
    with pytest.raises(ProtocolError) as info:
        decoder.check_eof()
    assert info.value.code == ErrorCode.TRUNCATED


def test_a_first_frame_over_its_own_limit_is_refused_at_its_length() -> None:
    decoder = FrameDecoder(1 << 20, first_frame_bytes=64)
    with pytest.raises(ProtocolError) as info:
        decoder.feed(struct.pack(">I", 65))
    assert info.value.code == ErrorCode.HANDSHAKE
    assert "max_hello_bytes=64" in info.value.message


def test_only_the_first_frame_has_the_first_frame_limit() -> None:
    first, big = encode_frame([1, "hello"]), encode_frame([2, b"b" * 5000])
    data = first + big + big
    for step in (1, 7, len(data)):  # byte by byte, in pieces, all at once
        decoder = FrameDecoder(8192, first_frame_bytes=64)
        out = [f for i in range(0, len(data), step) for f in decoder.feed(data[i : i + step])]
        assert out == [(1, "hello"), (2, b"b" * 5000), (2, b"b" * 5000)]
        assert decoder.buffered == 0
    decoder = FrameDecoder(8192, first_frame_bytes=64)
    assert decoder.feed(first[:-1]) == []
    assert decoder.buffered == len(first) - 1  # held under its limit until whole
    with pytest.raises(ProtocolError) as info:
        decoder.check_eof()
    assert info.value.code == ErrorCode.TRUNCATED


def test_frames_split_anywhere_and_glued_together_come_out_whole() -> None:
    data = encode_frame([1, "a"]) + encode_frame([2, b"b" * 100]) + encode_frame([3])
    decoder = FrameDecoder(4096)
    out = [f for i in range(len(data)) for f in decoder.feed(data[i : i + 1])]
    assert out == [(1, "a"), (2, b"b" * 100), (3,)]
    assert decoder.buffered == 0


def test_what_decode_event_accepts_validate_accepts_too() -> None:
    # The daemon publishes a decoded event with only its size checked (checked=True).
    accepted = 0
    for index in range(len(_BASE)):
        for value in _EDGES:
            fields = (*_BASE[:index], value, *_BASE[index + 1 :])
            try:
                event = decode_event(fields, {})
            except ValueError:
                continue
            accepted += 1
            assert validate(event, 2**63) is None, (index, value)
    assert accepted > 0


@pytest.mark.parametrize(
    ("index", "value", "message"),
    [
        (1, "filesystem.nope", "unknown event kind"),
        (3, "carrier_pigeon", "unknown source type"),
        (4, 12, "payload"),
        (5, 9, "priority"),
        (6, "x", "targets"),
        (8, [], "metadata"),
        (11, 1.5, "retry_count"),
        (0, "", "event id"),
        (2, "", "source id"),
        (6, ("file-0", 3), "targets"),
        (11, -1, "retry_count"),
        (12, -2, "max_retries"),
        (14, "soon", "published_at"),
    ],
)
def test_a_wrong_field_says_which(index: int, value: Any, message: str) -> None:
    fields = list(event_fields(Event(id="e", kind=Kind.FILE_CREATED, source=_SOURCE)))
    fields[index] = value
    with pytest.raises(ValueError, match=message):
        decode_event(tuple(fields), {})


_SOURCE = Source("s", SourceType.FILE_WATCHER)


def test_the_wire_array_follows_the_event_fields_in_order() -> None:
    # event_fields / decode_event list the fields by position: a new Event field must be
    # added to the wire format (and the protocol version bumped) on purpose.
    names = [f.name for f in dataclasses.fields(Event) if f.init]
    assert names == [
        "id", "kind", "source", "payload", "priority", "targets", "created_at", "metadata",
        "correlation_id", "causation_id", "retry_count", "max_retries", "size_bytes",
        "published_at",
    ]  # fmt: skip


# ------------------------------------------------------------------------ protocol bits


def test_stats_round_trip() -> None:
    stats = Stats(1, 2, 3, 4, 5, 6, 7, extra={"x": 1.5})
    assert stats_from_wire(msgpack.unpackb(msgpack.packb(stats_to_wire(stats)))) == stats
    with pytest.raises(ProtocolError):
        stats_from_wire({"published": "many"})


def test_backoff_delays_double_up_to_the_cap() -> None:
    assert list(Backoff(attempts=6, base_s=0.1, max_s=0.5).delays()) == [0.1, 0.2, 0.4, 0.5, 0.5]
    assert list(Backoff(attempts=1).delays()) == []
    with pytest.raises(ValueError):
        Backoff(attempts=0)
    with pytest.raises(ValueError):
        Backoff(base_s=2.0, max_s=1.0)


@pytest.mark.parametrize(
    "bad",
    [
        {"max_frame_bytes": 100},
        {"max_events_per_frame": 0},
        {"handshake_timeout_s": 0},
        {"read_timeout_s": float("inf")},
        {"max_connections": True},
        {"drain_timeout_s": -1},
        {"frame_timeout_s": 0},
        {"idle_timeout_s": float("inf")},
        {"max_hello_bytes": 255},
        {"max_hello_bytes": 8192, "max_frame_bytes": 4096},
        {"max_output_bytes": 65535},
        {"max_output_bytes": 1 << 20, "max_frame_bytes": 1 << 20},  # one frame must fit
    ],
)
def test_limits_are_checked(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        DaemonLimits(**bad)


def test_daemon_options_round_trip_through_the_command_line() -> None:
    core = CoreConfig(max_queue=16, backpressure="reject", service_concurrency=3, seed=9)
    limits = DaemonLimits(
        max_frame_bytes=65536,
        read_timeout_s=0.5,
        frame_timeout_s=2.5,
        max_hello_bytes=1024,
        idle_timeout_s=7.0,
        max_output_bytes=1 << 20,
        max_connections=7,
    )
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--socket", "x", *daemon_argv(core, limits)])
    assert configs_from_args(args) == (core, limits)


def test_the_daemons_core_defaults_differ_from_in_process_in_three_settings() -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    core, _ = configs_from_args(parser.parse_args(["--socket", "x"]))
    expected = CoreConfig(service_concurrency=128, max_concurrent=4096, max_queue=256)
    assert core == expected == default_core_config() != CoreConfig()


def test_what_cannot_go_on_a_command_line_is_refused() -> None:
    from crucible._core import Rule

    with pytest.raises(ValueError, match="rules"):
        daemon_argv(CoreConfig(rules=(Rule("r", "file"),)), DaemonLimits())


def test_a_reused_packer_encodes_as_encode_body_and_recovers_from_a_failure() -> None:
    pack = new_packer()
    frame = [24, 7, [("e", b"x" * 3000, {"k": (1, 2)})], [1, 2, 3, 7]]
    assert pack(frame) == encode_body(frame)
    with pytest.raises(TypeError):
        pack([10, 1, [{1, 2}]])  # a set: msgpack cannot hold it
    # Nothing of the failed frame is left in the packer's buffer.
    assert pack([25, [1], []]) == encode_body([25, [1], []])
    assert pack(frame) == encode_body(frame)
