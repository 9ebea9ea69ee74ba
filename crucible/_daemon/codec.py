"""Length-prefixed msgpack frames, and events as msgpack arrays.

A frame is a 4-byte big-endian body length and a msgpack body (see ``protocol``). The
decoder is incremental: ``feed`` takes whatever bytes arrived and returns the bodies of the
frames they complete, already unpacked; anything it cannot read raises ``ProtocolError``
with a code, and nothing else. Arrays unpack as tuples (``use_list=False``): cheaper, and
the protocol never mutates them; so do arrays inside payloads and metadata.

Events travel as flat 15-item arrays (``event_fields``), so a frame of events unpacks in one
msgpack call with no per-event framing. The daemon keeps each event's array (``WireEvent``)
and packs it again to deliver it, without rebuilding it from the ``Event``.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import msgpack

from crucible._daemon.protocol import ErrorCode, ProtocolError
from crucible._events import Category, Event, Kind, Priority, Source, SourceType

__all__ = [
    "BACKREF_WINDOW",
    "CACHE_EVENT_BYTES",
    "EVENT_FIELDS",
    "EVENT_WINDOW",
    "FrameDecoder",
    "SourceCache",
    "WireEvent",
    "decode_event",
    "decode_trusted",
    "encode_body",
    "encode_frame",
    "event_fields",
    "new_packer",
    "pack_frame",
]

HEADER_BYTES: Final = 4
EVENT_FIELDS: Final = 15
# A DELIVER carries each event once per connection while it is recent: the first delivery
# includes it and gives it a token (the frame's first_token, +1 for the next event, ...);
# later deliveries (other targets, retries) name the token. A service client keeps the last
# EVENT_WINDOW tokens' events of at most CACHE_EVENT_BYTES (size_bytes, which the daemon
# measured: see decode_event; a producer's figure never reaches a service); the daemon names
# a token only if it is within BACKREF_WINDOW of the frame's first token, and puts at most
# BACKREF_WINDOW deliveries in one frame, so a named token is always still kept.
# The window covers the lag between one event's deliveries to the services of one client
# (their queues drain at different paces); events of up to 8 KiB are kept, so a client
# holds at most 32 MiB of them.
EVENT_WINDOW: Final = 4096
BACKREF_WINDOW: Final = EVENT_WINDOW // 2
CACHE_EVENT_BYTES: Final = 8 * 1024
assert EVENT_WINDOW & (EVENT_WINDOW - 1) == 0, "a service client indexes its ring by bits"
_HEADER = struct.Struct(">I")
_unpack_header = _HEADER.unpack_from
_unpackb = msgpack.unpackb
_packb = msgpack.packb
_KIND_INFO: Final[dict[str, tuple[Kind, Category]]] = {k.value: (k, k.category) for k in Kind}
_NUMBERS: Final = (float, int)
_new = object.__new__
_SOURCE_TYPES: Final[dict[str, SourceType]] = {t.value: t for t in SourceType}
_PRIORITIES: Final = tuple(Priority)
_SOURCE_CACHE_MAX: Final = 4096


def _default(obj: object) -> object:
    # Mappings that are not dicts (MappingProxyType, ...) go as maps; nothing else is coerced.
    if isinstance(obj, Mapping):
        return dict(obj)
    raise TypeError(f"cannot encode {type(obj).__name__} in a frame")


def encode_body(obj: object) -> bytes:
    """The msgpack body of a frame. Raises TypeError/ValueError for what msgpack cannot hold."""
    body: bytes = _packb(obj, use_bin_type=True, default=_default)
    return body


def new_packer() -> Callable[[object], bytes]:
    """``encode_body`` for one connection's hot path, reusing one msgpack Packer: a Packer
    per call (``msgpack.packb``) allocates a 1 MiB buffer each time, which in a busy process
    is fresh memory to fault in, frame after frame. Not for use from several threads."""
    packer = msgpack.Packer(use_bin_type=True, default=_default)
    pack: Callable[[object], bytes] = packer.pack
    return pack


def pack_frame(body: bytes) -> bytes:
    return _HEADER.pack(len(body)) + body


def encode_frame(obj: object) -> bytes:
    """Length prefix + msgpack body."""
    body: bytes = _packb(obj, use_bin_type=True, default=_default)
    return _HEADER.pack(len(body)) + body


class FrameDecoder:
    """Splits a byte stream into frames and unpacks each. ``buffered`` is how many bytes of
    an incomplete frame are held. A length over ``max_frame_bytes`` is refused as soon as the
    header arrives, before the body is read.

    ``first_frame_bytes``: a lower limit for the stream's first frame alone (the daemon's
    HELLO, sent before a peer has said who it is), refused with ``handshake``; the frames
    after it have ``max_frame_bytes``."""

    __slots__ = ("_buf", "_first", "_max")

    def __init__(self, max_frame_bytes: int, *, first_frame_bytes: int | None = None) -> None:
        self._buf = bytearray()
        self._max = max_frame_bytes
        self._first = first_frame_bytes

    @property
    def buffered(self) -> int:
        return len(self._buf)

    def feed(self, data: bytes | bytearray | memoryview) -> list[Any]:
        """The unpacked bodies of the frames completed by ``data``. Raises ProtocolError
        (``oversized``, ``malformed``, or ``handshake`` for a first frame over its limit);
        the decoder is then unusable."""
        if self._first is not None:
            return self._feed_first(data)
        buf = self._buf
        if buf:
            buf += data
            src: bytes | bytearray | memoryview = buf
        else:
            src = data
        end = len(src)
        pos = 0
        out: list[Any] = []
        limit = self._max
        with memoryview(src) as view:
            while end - pos >= HEADER_BYTES:
                (size,) = _unpack_header(view, pos)
                if size > limit:
                    raise ProtocolError(
                        ErrorCode.OVERSIZED,
                        f"frame of {size} bytes exceeds max_frame_bytes={limit}",
                    )
                start = pos + HEADER_BYTES
                stop = start + size
                if stop > end:
                    break
                if not size:
                    raise ProtocolError(ErrorCode.MALFORMED, "empty frame body")
                with view[start:stop] as body:
                    out.append(_unpack(body))
                pos = stop
        if src is buf:
            if pos:
                del buf[:pos]
        elif pos < end:
            buf += data[pos:]
        return out

    def _feed_first(self, data: bytes | bytearray | memoryview) -> list[Any]:
        """``feed`` until the first frame is whole: it is held under its own limit, then the
        bytes go through ``feed`` with the limit of every frame."""
        limit = self._first
        assert limit is not None
        buf = self._buf
        buf += data
        if len(buf) < HEADER_BYTES:
            return []
        (size,) = _unpack_header(buf, 0)
        if size > limit:
            raise ProtocolError(
                ErrorCode.HANDSHAKE,
                f"a first frame of {size} bytes exceeds max_hello_bytes={limit}",
            )
        if len(buf) < HEADER_BYTES + size:
            return []
        self._first = None
        held = bytes(buf)
        buf.clear()
        return self.feed(held)

    def check_eof(self) -> None:
        """Raise ProtocolError(``truncated``) if the stream ended inside a frame."""
        if self._buf:
            raise ProtocolError(
                ErrorCode.TRUNCATED,
                f"connection closed with {len(self._buf)} bytes of an incomplete frame",
            )


def _unpack(body: memoryview) -> Any:
    try:
        obj = _unpackb(body, use_list=False, raw=False)
    except Exception as exc:  # msgpack raises several types; all mean "not a frame"
        raise ProtocolError(
            ErrorCode.MALFORMED, f"frame body is not msgpack ({type(exc).__name__}: {exc})"
        ) from None
    if obj.__class__ is not tuple or not obj or obj[0].__class__ is not int:
        raise ProtocolError(ErrorCode.MALFORMED, "a frame body must be an array [type, ...]")
    return obj


# -------------------------------------------------------------------------------- events


@dataclass(slots=True, eq=False)
class WireEvent(Event):
    """An Event the daemon decoded, with the array it came in (to deliver it as it came)."""

    wire: tuple[Any, ...] = field(default=(), repr=False)


def event_fields(e: Event) -> tuple[Any, ...]:
    """The wire array of ``e``. Raises AttributeError/TypeError for an Event whose kind,
    source or priority are not the enums (``validate`` says why)."""
    s = e.source
    return (
        e.id,
        e.kind._value_,
        s.id,
        s.type._value_,
        e.payload,
        int(e.priority),
        e.targets,
        e.created_at,
        e.metadata,
        e.correlation_id,
        e.causation_id,
        e.retry_count,
        e.max_retries,
        e.size_bytes,
        e.published_at,
    )


SourceCache = dict[tuple[str, str], Source]


def _source(sources: SourceCache, sid: Any, stype: Any) -> Source:
    if sid.__class__ is not str or stype.__class__ is not str:
        raise ValueError("source id and type must be strings")
    key = (sid, stype)
    source = sources.get(key)
    if source is None:
        st = _SOURCE_TYPES.get(stype)
        if st is None:
            raise ValueError(f"unknown source type {stype!r}")
        if not sid:
            raise ValueError("source id must not be empty")
        if len(sources) >= _SOURCE_CACHE_MAX:
            sources.clear()
        source = sources[key] = Source(sid, st)
    return source


# decode_event is the hottest path of the daemon and its subscribers, tuned against
# instruction counts: one function, no helper calls. It builds the Event with
# ``object.__new__`` and slot assignments rather than ``Event(...)``: the dataclass
# ``__init__`` and ``__post_init__`` (an enum hash for the category) cost three times as
# much. ``tests/test_daemon_codec.py`` checks that every Event field survives the round trip.
#
# ``size_bytes`` is measured, never taken from the array: a bytes payload's length, or for a
# map the length of its msgpack encoding (``pack``; the daemon passes a connection's reused
# packer), which is what the payload occupies in a frame. The declared field is ignored: a
# producer's figure for a map is the length of its JSON form (``Event``) and differs anyway,
# and one that lies must not slip past ``max_event_bytes`` or make a service client keep a
# large event (``CACHE_EVENT_BYTES``). When the measured size differs from the declared one,
# the WireEvent's array carries the measured size, so its services see the daemon's figure.
def decode_event(
    t: Any,
    sources: SourceCache,
    wire: bool = False,
    pack: Callable[[object], bytes] = encode_body,
) -> Event:
    """The Event a wire array describes (a ``WireEvent`` holding ``t`` if ``wire``), its
    ``size_bytes`` measured (see above). Raises ValueError saying which field is wrong. It
    checks everything ``validate`` checks but the size limit, which is the core's (so the
    daemon publishes it with ``publish(event, checked=True)``; a test holds the two to that).
    """
    if t.__class__ is not tuple or len(t) != EVENT_FIELDS:
        raise ValueError(f"an event is an array of {EVENT_FIELDS} items")
    (eid, kind, sid, stype, payload, prio, targets, created, meta, corr, caus, retry, maxr,
     size, published) = t  # fmt: skip
    if eid.__class__ is not str or not eid:
        raise ValueError("event id must be a non-empty string")
    info = _KIND_INFO.get(kind) if kind.__class__ is str else None
    if info is None:
        raise ValueError(f"unknown event kind {kind!r}")
    source = sources.get((sid, stype)) if sid.__class__ is str and stype.__class__ is str else None
    if source is None:
        source = _source(sources, sid, stype)
    if payload.__class__ is bytes:
        measured = len(payload)
    elif payload.__class__ is dict:
        try:
            measured = len(pack(payload))
        except Exception as exc:  # nested too deep for msgpack: it cannot be delivered either
            raise ValueError(f"payload cannot be encoded ({type(exc).__name__}: {exc})") from None
    else:
        raise ValueError("payload must be bytes or a map")
    if measured != size or size.__class__ is not int:
        size = measured
        if wire:
            t = (eid, kind, sid, stype, payload, prio, targets, created, meta, corr, caus, retry,
                 maxr, measured, published)  # fmt: skip
    if prio.__class__ is not int or not 0 <= prio < 4:
        raise ValueError(f"priority must be 0..3, not {prio!r}")
    if targets.__class__ is not tuple or (targets and not all(t.__class__ is str for t in targets)):
        raise ValueError("targets must be an array of service names")
    if meta.__class__ is not dict:
        raise ValueError("metadata must be a map")
    if (corr is not None and corr.__class__ is not str) or (
        caus is not None and caus.__class__ is not str
    ):
        raise ValueError("correlation_id and causation_id must be strings or nil")
    if retry.__class__ is not int or maxr.__class__ is not int or retry < 0 or maxr < 0:
        raise ValueError("retry_count and max_retries must be integers >= 0")
    if created.__class__ not in _NUMBERS or published.__class__ not in _NUMBERS:
        raise ValueError("created_at and published_at must be numbers")
    e: Any = _new(WireEvent if wire else Event)
    e.id = eid
    e.kind, e.category = info
    e.source = source
    e.payload = payload
    e.priority = _PRIORITIES[prio]
    e.targets = targets
    e.created_at = created
    e.metadata = meta
    e.correlation_id = corr
    e.causation_id = caus
    e.retry_count = retry
    e.max_retries = maxr
    e.size_bytes = size
    e.published_at = published
    if wire:
        e.wire = t
    return e  # type: ignore[no-any-return]


def decode_trusted(t: Any, sources: SourceCache) -> Event:
    """``decode_event`` without the field checks, for events the daemon already checked.
    A wrong array still raises (TypeError, ValueError, KeyError, IndexError)."""
    (eid, kind, sid, stype, payload, prio, targets, created, meta, corr, caus, retry, maxr,
     size, published) = t  # fmt: skip
    source = sources.get((sid, stype))
    if source is None:
        source = _source(sources, sid, stype)
    e: Any = _new(Event)
    e.id = eid
    e.kind, e.category = _KIND_INFO[kind]
    e.source = source
    e.payload = payload
    e.priority = _PRIORITIES[prio]
    e.targets = targets
    e.created_at = created
    e.metadata = meta
    e.correlation_id = corr
    e.causation_id = caus
    e.retry_count = retry
    e.max_retries = maxr
    e.size_bytes = size
    e.published_at = published
    return e  # type: ignore[no-any-return]
