"""The results protocol: framed, checksummed text records the firmware sends over its console.

Frame::

    @SS,<seq>,<TYPE>[,<field>...]*<crc>\\r\\n

``crc`` is CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF) of the bytes between ``@`` and ``*``, as
four lowercase hex digits. ``seq`` counts frames from 0 so a lost frame is noticed.

Records (fields after the type):

=======  ==================================================================================
HELLO    proto_version, firmware_version, board, app, counter_kind, counter_hz
CYC      name, ticks (unsigned 64-bit counter ticks)
KV       name, value (signed 64-bit)
VEC      name, dtype, count, byte_offset, hex bytes (a vector may span several frames)
LOG      text
FAULT    kind, pc, lr, cfsr, hfsr
END      status (0 = success)
=======  ==================================================================================

Anything on the console that is not a frame (boot ROM chatter, a stray printf) is noise and is kept
for the log; a frame with a bad checksum or shape is rejected and counted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from generator.errors import ProtocolError

PROTO_VERSION = 1
MAX_LINE = 4096
#: largest vector a frame may announce (bytes): more than any board's RAM, checked before
#: anything is allocated, as is the total of vectors still being assembled
MAX_VECTOR_BYTES = 16 << 20
MAX_PENDING_BYTES = 64 << 20
#: LOG records kept per session (a firmware that loops on a log line cannot fill the host)
MAX_LOGS = 10_000

DTYPES = {"int8": np.int8, "uint8": np.uint8, "int16": np.int16, "int32": np.int32,
          "uint32": np.uint32, "float32": np.float32, "int64": np.int64}


def _crc16_table() -> list[int]:
    table = []
    for i in range(256):
        crc = i << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
            crc &= 0xFFFF
        table.append(crc)
    return table


_CRC16 = _crc16_table()


def crc16(data: bytes) -> int:
    """CRC-16/CCITT-FALSE (table-driven: the host checks every frame of a run)."""
    crc = 0xFFFF
    for b in data:
        crc = ((crc << 8) & 0xFFFF) ^ _CRC16[(crc >> 8) ^ b]
    return crc


def encode_frame(seq: int, rtype: str, *fields: Any) -> bytes:
    """Build a frame as the firmware does (used by tests and the host twin's tools)."""
    body = ",".join(["SS", str(seq), rtype] + [str(f) for f in fields]).encode("ascii")
    return b"@" + body + b"*" + f"{crc16(body):04x}".encode() + b"\r\n"


@dataclass(frozen=True)
class Record:
    seq: int
    type: str
    fields: tuple[str, ...]


@dataclass
class _VecBuf:
    dtype: str
    count: int
    data: bytearray
    filled: int = 0


@dataclass
class Session:
    """Everything one run sent: the parsed records, assembled vectors and stream statistics."""

    hello: dict[str, Any] | None = None
    cycles: dict[str, int] = field(default_factory=dict)
    metrics: dict[str, int] = field(default_factory=dict)
    vectors: dict[str, np.ndarray] = field(default_factory=dict)
    logs: list[str] = field(default_factory=list)
    faults: list[dict[str, Any]] = field(default_factory=list)
    status: int | None = None
    records: int = 0
    corrupt_frames: int = 0
    lost_frames: int = 0
    noise_bytes: int = 0
    noise: bytearray = field(default_factory=bytearray)

    @property
    def done(self) -> bool:
        return self.status is not None


class Parser:
    """Incremental parser: feed it bytes as they arrive, read :attr:`session`."""

    def __init__(self) -> None:
        self.session = Session()
        self._buf = bytearray()
        self._next_seq = 0
        self._vecs: dict[str, _VecBuf] = {}
        self._overlong = False  # inside a line longer than MAX_LINE (noise to its end)

    def feed(self, data: bytes) -> None:
        self._buf += data
        while True:
            nl = self._buf.find(b"\n")
            if nl < 0:
                if len(self._buf) > MAX_LINE:  # a line that never ends is noise ...
                    self._noise(bytes(self._buf))
                    self._buf.clear()
                    self._overlong = True  # ... up to its newline, however it arrives
                return
            line = bytes(self._buf[: nl + 1])
            del self._buf[: nl + 1]
            if self._overlong or len(line) > MAX_LINE:  # the same verdict in one piece or many
                self._overlong = False
                self._noise(line)
                continue
            self._line(line)

    def finish(self) -> Session:
        """Call at the end of the stream: leftover bytes are noise."""
        if self._buf:
            at = self._buf.find(b"@SS,")
            if at >= 0:
                self.session.corrupt_frames += 1  # a frame cut short
            self._noise(bytes(self._buf))
            self._buf.clear()
        return self.session

    def _noise(self, data: bytes) -> None:
        self.session.noise_bytes += len(data)
        if len(self.session.noise) < 64 * 1024:
            self.session.noise += data

    def _line(self, line: bytes) -> None:
        at = line.find(b"@SS,")
        if at < 0:
            self._noise(line)
            return
        if at > 0:
            self._noise(line[:at])
        frame = line[at:].rstrip(b"\r\n")
        rec = self._decode(frame)
        if rec is None:
            self.session.corrupt_frames += 1
            return
        if rec.seq != self._next_seq:
            if rec.seq > self._next_seq:
                self.session.lost_frames += rec.seq - self._next_seq
            else:
                self.session.corrupt_frames += 1
                return
        self._next_seq = rec.seq + 1
        try:
            self._apply(rec)
        except (ValueError, KeyError, IndexError):
            self.session.corrupt_frames += 1
            return
        self.session.records += 1

    @staticmethod
    def _decode(frame: bytes) -> Record | None:
        star = frame.rfind(b"*")
        if star < 0 or len(frame) - star != 5:
            return None
        body, crc_hex = frame[1:star], frame[star + 1:]
        try:
            if int(crc_hex, 16) != crc16(body):
                return None
            text = body.decode("ascii")
        except (ValueError, UnicodeDecodeError):
            return None
        parts = text.split(",")
        if len(parts) < 3 or parts[0] != "SS" or not parts[1].isdigit():
            return None
        return Record(int(parts[1]), parts[2], tuple(parts[3:]))

    def _apply(self, rec: Record) -> None:
        s, f = self.session, rec.fields
        if rec.type == "HELLO":
            s.hello = {"proto_version": int(f[0]), "firmware_version": f[1], "board": f[2],
                       "app": f[3], "counter_kind": f[4], "counter_hz": int(f[5])}
            if s.hello["proto_version"] != PROTO_VERSION:
                raise ProtocolError(
                    f"firmware speaks results protocol v{f[0]}, this host v{PROTO_VERSION}; "
                    "rebuild the firmware with this sweetspot")
        elif rec.type == "CYC":
            s.cycles[f[0]] = int(f[1])
        elif rec.type == "KV":
            s.metrics[f[0]] = int(f[1])
        elif rec.type == "VEC":
            name, dtype, count, off, hexdata = f[0], f[1], int(f[2]), int(f[3]), f[4]
            np_dtype = DTYPES[dtype]
            nbytes = count * np.dtype(np_dtype).itemsize
            if not 0 <= nbytes <= MAX_VECTOR_BYTES:  # bounded before anything is allocated
                raise ProtocolError(
                    f"vector '{name[:40]}' announces {count} {dtype} elements; a results "
                    f"vector holds 0 to {MAX_VECTOR_BYTES:,} bytes (a corrupt stream or a "
                    "model with an absurd output shape)")
            if nbytes == 0:  # an empty vector is one frame: offset 0, no data
                if off != 0 or hexdata:
                    raise ProtocolError(f"vector '{name[:40]}' is empty but its frame carries "
                                        f"data at byte offset {off}")
                s.vectors[name] = np.zeros(0, dtype=np_dtype)
                self._vecs.pop(name, None)
                return
            if off < 0 or off >= nbytes:
                raise ProtocolError(f"vector '{name[:40]}': chunk at byte offset {off} is "
                                    f"outside its {nbytes} bytes")
            chunk = bytes.fromhex(hexdata)
            vb = self._vecs.get(name)
            if vb is None or off == 0:
                pending = sum(len(v.data) for k, v in self._vecs.items() if k != name)
                if pending + nbytes > MAX_PENDING_BYTES:
                    raise ProtocolError(f"vectors being assembled would need more than "
                                        f"{MAX_PENDING_BYTES:,} bytes")
                vb = _VecBuf(dtype, count, bytearray(nbytes))
                self._vecs[name] = vb
            if off + len(chunk) > nbytes or vb.count != count or vb.dtype != dtype:
                raise ValueError("vector chunk out of range")
            vb.data[off: off + len(chunk)] = chunk
            vb.filled += len(chunk)
            if vb.filled >= nbytes:
                s.vectors[name] = np.frombuffer(bytes(vb.data), dtype=np_dtype).copy()
                del self._vecs[name]
        elif rec.type == "LOG":
            if len(s.logs) < MAX_LOGS:
                s.logs.append(",".join(f))
        elif rec.type == "FAULT":
            s.faults.append({"kind": f[0], "pc": int(f[1]), "lr": int(f[2]),
                             "cfsr": int(f[3]), "hfsr": int(f[4])})
        elif rec.type == "END":
            s.status = int(f[0])
        else:
            raise ValueError(f"unknown record {rec.type}")


def parse_stream(data: bytes) -> Session:
    p = Parser()
    p.feed(data)
    return p.finish()
