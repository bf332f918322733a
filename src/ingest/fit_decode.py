"""Decode a FIT file into its messages in file order, or say precisely why it cannot be read.

Decoders (measured on the 56 real files in ``../shared/data/fit``):

- ``garmin_fit_sdk`` 21.218 is the primary decoder: it knows the modern sleep/HRV messages
  (sleep_level 275, sleep_assessment 346, hrv_status_summary 370, hrv_value 371), applies scales
  (``hrv_value.value`` comes out in ms, ``monitoring.cycles`` in cycles = steps / 2) and returns
  tz-aware UTC datetimes. It reads chained files (several FIT files concatenated) to the end and
  checks each one's file CRC. It refuses compressed-timestamp record headers (``antfs-dump.63.fit``,
  ``compressed-speed-distance.fit``: 6 and 16 messages, then "Compressed timestamp messages are not
  currently supported"); only those files go to ``fitparse`` 1.2, which reads them whole (696 and
  780 messages) but returns naive datetimes, which are UTC and are made aware here.
- ``Decoder.check_integrity()`` is NOT used: it reports False for six valid files
  (``2013-02-06-12-11-14``, ``2015-10-13-08-43-15``, ``Edge810-Vector…``, ``Settings``,
  ``nametest.FIT``, ``sample-activity-indoor-trainer``) because their 14-byte header stores CRC 0,
  which the FIT protocol defines as "not computed", and it checks only the first file of a chain
  (it passes ``activity-activity-filecrc.fit``, whose second file has a bad CRC). The errors
  returned by ``Decoder.read`` are the verdict instead.

Partial files: ``Decoder.read`` returns the messages decoded before an error (14,412 from
``nick.fit``, whose file CRC is wrong and whose last record runs past the end). Such a file is
refused whole: rows from a file that is known to be damaged could be wrong anywhere, a partial
night or workout would be mistaken for a complete one, and a re-export of the fixed file would then
have to replace rows instead of simply adding them. The error names the defect (found by walking
the chain of headers and CRCs), where it is, and how many messages were readable, so a person can
decide to recover the file by hand.
"""

from __future__ import annotations

import struct
import warnings
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from garmin_fit_sdk import Decoder, Profile, Stream

from tunewell.ingest import safety

FIT_EPOCH = datetime(1989, 12, 31, tzinfo=UTC)
# date_time values below this are seconds since the device was switched on (FIT "system time").
SYSTEM_TIME_MAX = 0x10000000
_COMPRESSED_TS = "Compressed timestamp"


@dataclass
class FitMessages:
    """Messages in file order as ``(name, fields)``; unknown messages are named by number."""

    decoder: str
    ordered: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    _by_name: dict[str, list[dict[str, Any]]] | None = field(default=None, repr=False)

    def of(self, name: str) -> list[dict[str, Any]]:
        """The messages of one kind, in file order (indexed once: a reader asks for ~15 kinds)."""
        if self._by_name is None:
            index: dict[str, list[dict[str, Any]]] = {}
            for n, m in self.ordered:
                index.setdefault(n, []).append(m)
            self._by_name = index
        return self._by_name.get(name, [])

    def first(self, name: str) -> dict[str, Any] | None:
        found = self.of(name)
        return found[0] if found else None


def fit_seconds(value: datetime) -> int:
    return int((value - FIT_EPOCH).total_seconds())


def from_fit_seconds(value: int) -> datetime:
    return FIT_EPOCH + timedelta(seconds=value)


def decode(path: Path, display: str | None = None) -> FitMessages:
    data = Path(path).read_bytes()
    # Structure first (size, header chain, lying sizes): the SDK would walk an endless chain.
    safety.check_fit(data, display or Path(path).name)
    ordered: list[tuple[str, dict[str, Any]]] = []
    names = {num: m["name"] for num, m in Profile["messages"].items()}

    def listen(num: int, mesg: dict[str, Any]) -> None:
        ordered.append((names.get(num, str(num)), mesg))

    # The SDK checks the file CRC byte by byte as it reads (~1/7 of its decode time). When our
    # own walk of the chain finds every header and CRC sound, that check is done: the SDK skips
    # it. A file with a defect is decoded with the SDK's check on, as before, so its verdict and
    # message are unchanged.
    sound = diagnose(data) is None
    _, errors = Decoder(Stream.from_byte_array(bytearray(data))).read(
        mesg_listener=listen, enable_crc_check=not sound
    )
    if not errors:
        return FitMessages("garmin_fit_sdk", ordered)
    message = str(errors[0])
    if _COMPRESSED_TS in message:
        return _decode_fitparse(path)
    found = diagnose(data)
    raise safety.SafetyError(
        safety.fit_code(found),
        f"{found or 'undecodable FIT record'} ({_sdk_text(message)}); "
        f"{len(ordered)} messages were readable before the error: the file is quarantined whole, "
        "no partial rows are kept",
    )


def _sdk_text(message: str) -> str:
    return message.replace("FIT Runtime Error", "decoder:").strip()


def _crc_table() -> tuple[int, ...]:
    table = []
    for i in range(256):
        crc = i
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


_CRC16 = _crc_table()


def crc16(data: bytes, start: int, end: int) -> int:
    """The FIT file CRC (CRC-16/ARC, as ``CrcCalculator``) a byte per table step, not two
    nibble steps through a function call: ~6x faster, which matters as it runs on every file."""
    crc, table = 0, _CRC16
    for b in data[start:end]:
        crc = (crc >> 8) ^ table[(crc ^ b) & 0xFF]
    return crc


def diagnose(data: bytes) -> str | None:
    """The first structural defect in a (possibly chained) FIT file, or None if there is none."""
    pos, index = 0, 1
    while pos < len(data):
        where = f"FIT file #{index} of the chain at byte {pos}" if index > 1 else "FIT file"
        if len(data) - pos < 12:
            return f"unexpected end of file: {len(data) - pos} stray bytes after {where}"
        hsize = data[pos]
        if hsize not in (12, 14) or data[pos + 8 : pos + 12] != b".FIT":
            return f"corrupt header in {where}: not a FIT header"
        (dsize,) = struct.unpack_from("<I", data, pos + 4)
        if hsize == 14:
            (hcrc,) = struct.unpack_from("<H", data, pos + 12)
            if hcrc and hcrc != crc16(data, pos, pos + 12):
                return f"corrupt header in {where}: header CRC mismatch"
        end = pos + hsize + dsize
        if end + 2 > len(data):
            return (
                f"unexpected end of file: {where} declares {dsize} data bytes + 2 CRC bytes, "
                f"only {len(data) - pos - hsize} bytes follow its header"
            )
        (stored,) = struct.unpack_from("<H", data, end)
        computed = crc16(data, pos, end)
        if stored != computed:
            return f"CRC mismatch in {where}: stored 0x{stored:04X}, computed 0x{computed:04X}"
        pos, index = end + 2, index + 1
    return None


def _decode_fitparse(path: Path) -> FitMessages:
    import fitparse

    out = FitMessages("fitparse")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for msg in fitparse.FitFile(str(path), check_crc=True).get_messages():
                out.ordered.append((msg.name, _fitparse_values(msg.get_values())))
    except fitparse.FitParseError as exc:
        found = diagnose(Path(path).read_bytes())
        raise safety.SafetyError(
            safety.fit_code(found),
            f"{found or 'undecodable FIT record'} "
            f"(fitparse: {exc}); the file is quarantined whole, no partial rows are kept",
        ) from exc
    return out


def _fitparse_values(values: dict[str, Any]) -> dict[str, Any]:
    """Match the SDK's conventions: aware UTC datetimes, local_timestamp as FIT seconds."""
    out: dict[str, Any] = {}
    for k, v in values.items():
        if isinstance(v, datetime):
            v = v.replace(tzinfo=UTC)
            if k == "local_timestamp":
                v = fit_seconds(v)
        out[k] = v
    return out
