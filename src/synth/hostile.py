"""A folder of hostile and broken files, each with the reason code the pipeline must give it.

Used by the reliability tests and the README's figures: every case is a real vendor format (an
Apple Health export, a Garmin FIT file, a Fitbit JSON, a WHOOP CSV) or a real attack on one
(billion laughs, XXE, zip bombs, zip slip), written small enough to build in a second. ``expect``
is the ``safety.Code`` value its quarantine reason must carry; ``None`` means the file is valid
enough to be ingested (its damage is repaired or its bad rows dropped) and must not crash the run.
"""

from __future__ import annotations

import io
import stat
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path

from garmin_fit_sdk import Encoder
from garmin_fit_sdk.crc_calculator import CrcCalculator

from tunewell.synth.garmin_fit import M, _fit

T0 = 1_777_600_000  # 2026-05-01 UTC


@dataclass(frozen=True)
class Case:
    name: str
    kind: str  # xml | zip | fit | json | csv
    expect: str | None  # quarantine code, or None: ingested (repaired / bad rows dropped)
    what: str


def apple_xml(n: int = 5, extra: str = "", prolog: str = "") -> bytes:
    """A minimal Apple Health export.xml with ``n`` heart-rate records."""
    recs = "".join(
        f' <Record type="HKQuantityTypeIdentifierHeartRate" sourceName="Watch" unit="count/min" '
        f'startDate="2026-05-01 08:{i:02d}:00 +0000" endDate="2026-05-01 08:{i:02d}:00 +0000" '
        f'value="{60 + i}"/>\n'
        for i in range(n)
    )
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n{prolog}<HealthData locale="en_US">\n'
        f"{recs}{extra}</HealthData>\n"
    ).encode()


def fit_file(records: int = 20) -> bytes:
    """A small valid Garmin activity FIT file with heart-rate records."""
    enc = Encoder()
    enc.write_mesg(
        {
            "mesg_num": M["FILE_ID"],
            "type": 4,
            "manufacturer": "garmin",
            "product": 3906,
            "serial_number": 1234,
            "time_created": _fit(T0),
        }
    )
    for i in range(records):
        enc.write_mesg({"mesg_num": M["RECORD"], "timestamp": _fit(T0 + i), "heart_rate": 100 + i})
    return bytes(enc.close())


def _fit_with_crc(body: bytes) -> bytes:
    header = bytearray(struct.pack("<BBHI4s", 14, 0x20, 2100, len(body), b".FIT") + b"\0\0")
    struct.pack_into("<H", header, 12, CrcCalculator.calculate_crc(header, 0, 12))
    data = bytes(header) + body
    return data + struct.pack("<H", CrcCalculator.calculate_crc(data, 0, len(data)))


def fitbit_hr(values: list[tuple[str, str]]) -> bytes:
    """Fitbit heart_rate-*.json entries ``(dateTime, bpm literal)``; bpm may be NaN/Infinity."""
    body = ",".join(f'{{"dateTime":"{d}","value":{{"bpm":{b},"confidence":2}}}}' for d, b in values)
    return f"[{body}]".encode()


def _zip(members: list[tuple[str | zipfile.ZipInfo, bytes]]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members:
            zf.writestr(name, data)
    return buf.getvalue()


def zip_bomb(path: Path, inflated: int, name: str = "apple_health_export/export.xml") -> Path:
    """One member of ``inflated`` zero bytes (deflate packs ~1000:1); written in a stream."""
    block = b"\0" * (4 << 20)
    with (
        zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf,
        zf.open(name, "w", force_zip64=True) as out,
    ):
        left = inflated
        while left > 0:
            out.write(block[: min(left, len(block))])
            left -= len(block)
    return path


def _lying_zip(real: bytes, declared: int) -> bytes:
    """A zip whose headers claim ``declared`` bytes for a member that inflates to ``real``."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("data.json", real)
    data = bytearray(buf.getvalue())
    size = struct.pack("<I", len(real))
    for sig, off in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        at = data.find(sig)
        assert data[at + off : at + off + 4] == size
        data[at + off : at + off + 4] = struct.pack("<I", declared)
    return bytes(data)


def _encrypted_flag(data: bytes) -> bytes:
    """Set the 'encrypted' bit of every member (zipfile cannot write encrypted members)."""
    out = bytearray(data)
    for sig, off in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        at = out.find(sig)
        while at >= 0:
            out[at + off] |= 0x1
            at = out.find(sig, at + 4)
    return bytes(out)


def write_hostile(out: Path, *, bomb_bytes: int = 300 << 20) -> list[Case]:
    """Write every case into ``out`` (one flat folder) and return what each must produce."""
    out.mkdir(parents=True, exist_ok=True)
    cases: list[Case] = []

    def put(name: str, kind: str, expect: str | None, what: str, data: bytes | None) -> None:
        if data is not None:
            (out / name).write_bytes(data)
        cases.append(Case(name, kind, expect, what))

    # --- XML
    lol = '<!ENTITY lol "lol">' + "".join(
        f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">'
        for i in range(1, 10)
    )
    put(
        "billion_laughs.xml",
        "xml",
        "xml_entity_expansion",
        "entity expansion",
        apple_xml(extra='<Record type="&lol9;"/>\n', prolog=f"<!DOCTYPE HealthData [{lol}]>\n"),
    )
    put(
        "xxe_file.xml",
        "xml",
        "xml_external_entity",
        "external entity (file)",
        apple_xml(
            extra='<Record type="&xxe;"/>\n',
            prolog='<!DOCTYPE HealthData [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n',
        ),
    )
    put(
        "xxe_param.xml",
        "xml",
        "xml_external_entity",
        "external parameter entity (URL)",
        apple_xml(
            prolog='<!DOCTYPE HealthData [<!ENTITY % r SYSTEM "http://127.0.0.1:9/x.dtd"> %r;]>\n'
        ),
    )
    put(
        "dtd_fetch.xml",
        "xml",
        "xml_external_entity",
        "external DTD fetch",
        apple_xml(prolog='<!DOCTYPE HealthData SYSTEM "http://127.0.0.1:9/health.dtd">\n'),
    )
    good = apple_xml(50)
    put("truncated.xml", "xml", "xml_truncated", "truncated", good[: len(good) * 2 // 3])
    put(
        "bad_utf8.xml",
        "xml",
        "invalid_utf8",
        "invalid UTF-8",
        good.replace(b'sourceName="Watch"', b'sourceName="W\xff\xfeatch"', 1),
    )
    put(
        "long_line.xml",
        "xml",
        None,
        "10 MB single line",
        apple_xml(extra=f'<Note text="{"A" * (10 << 20)}"/>\n'),
    )
    put(
        "control_chars.xml",
        "xml",
        None,
        "control characters",
        good.replace(b'sourceName="Watch"', b'sourceName="Wa\x0b\x01tch"'),
    )
    # --- archives
    zip_bomb(out / "zip_bomb.zip", bomb_bytes)
    cases.append(Case("zip_bomb.zip", "zip", "zip_bomb", "zip bomb (ratio)"))
    put(
        "zip_lying_header.zip",
        "zip",
        "zip_broken",
        "member inflating past its declared size",
        _lying_zip(b"[" + b"0," * 400_000 + b"0]", 1000),
    )
    put(
        "zip_slip.zip",
        "zip",
        "zip_slip",
        "zip slip (../, absolute, backslash)",
        _zip(
            [
                ("../../evil.xml", good),
                ("/tmp/tunewell-evil.xml", good),
                ("..\\..\\evil-win.xml", good),
                ("export.xml", good),
            ]
        ),
    )
    link = zipfile.ZipInfo("link.xml")
    link.create_system = 3
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    put("zip_symlink.zip", "zip", "zip_symlink", "symlink member", _zip([(link, b"/etc/passwd")]))
    put(
        "zip_encrypted.zip",
        "zip",
        "zip_encrypted",
        "encrypted member",
        _encrypted_flag(_zip([("secret.xml", good)])),
    )
    dup = _zip([("export.xml", good), ("export.xml", apple_xml(3))])
    put("zip_duplicate.zip", "zip", "zip_duplicate_member", "duplicate member names", dup)
    nested = _zip([("export.xml", good)])
    for i in range(4):
        nested = _zip([(f"level{i}.zip", nested)])
    put("zip_nested.zip", "zip", "zip_nested_too_deep", "nested 5 deep", nested)
    put("zip_broken.zip", "zip", "zip_broken", "broken archive", b"PK\x03\x04" + b"\x00" * 200)
    # --- FIT
    fit = fit_file()
    put("not_fit.fit", "fit", "not_fit", ".fit whose content is not FIT", b"hello, I am text\n" * 9)
    put("truncated.fit", "fit", "fit_truncated", "truncated", fit[: len(fit) - 40])
    bad = bytearray(fit)
    bad[len(bad) // 2] ^= 0xFF
    put("bad_crc.fit", "fit", "fit_bad_crc", "bad CRC", bytes(bad))
    lie = bytearray(fit)
    struct.pack_into("<I", lie, 4, 50_000_000)
    struct.pack_into("<H", lie, 12, 0)  # header CRC 0 = "not computed"
    put("lying_header.fit", "fit", "fit_truncated", "header lying about its size", bytes(lie))
    # a definition message of 255 fields of 255 bytes each, with correct CRCs
    absurd = bytes([0x40, 0, 0]) + struct.pack("<H", 20) + bytes([255])
    absurd += bytes([1, 255, 13]) * 255
    put(
        "absurd_definition.fit",
        "fit",
        None,
        "definition with absurd sizes",
        _fit_with_crc(absurd),
    )
    put(
        "endless_chain.fit",
        "fit",
        "fit_chain_too_long",
        "endless chained files",
        _fit_with_crc(b"") * 5000,
    )
    # --- JSON and CSV
    put(
        "heart_rate-broken.json",
        "json",
        "json_parse_error",
        "JSON that does not parse",
        b'[{"dateTime":"05/01/26 08:00:00","value":{"bpm":60,',
    )
    put("deep.json", "json", "json_too_deep", "50 MB of nested brackets", b"[" * (50 << 20))
    put(
        "heart_rate-nan.json",
        "json",
        "json_parse_error",
        "NaN and Infinity literals (not JSON)",
        fitbit_hr([("05/01/26 08:00:00", "NaN"), ("05/01/26 08:00:01", "Infinity")]),
    )

    def rec(start: str, value: str) -> str:
        return (
            f'<Record type="HKQuantityTypeIdentifierHeartRate" sourceName="Watch" '
            f'unit="count/min" startDate="{start}" endDate="{start}" value="{value}"/>\n'
        )

    day = "2026-05-02 08:00:0{} +0000"
    put(
        "values_nan_inf.xml",
        "xml",
        "rows_failed_validation",
        "NaN, inf and huge values",
        apple_xml(
            0,
            extra="".join(
                rec(day.format(i), v) for i, v in enumerate(["NaN", "inf", "-inf", "1e308"])
            ),
        ),
    )
    put(
        "dates_1970_2100.xml",
        "xml",
        "rows_failed_validation",
        "dates in 1970 and 2100",
        apple_xml(
            0, extra=rec("1970-01-01 00:00:00 +0000", "60") + rec("2100-01-01 00:00:00 +0000", "61")
        ),
    )
    put(
        "heart_rate-types.json",
        "json",
        "json_parse_error",
        "wrong types",
        fitbit_hr([("05/01/26 08:00:00", '"sixty"'), ("05/01/26 08:00:01", "[1,2]")]),
    )
    put(
        "whoop_cycles_bad.csv",
        "csv",
        "bad_values",
        "wrong types in a CSV",
        b"Cycle start time,Cycle end time,Cycle timezone,Recovery score %\n"
        b"yesterday,tomorrow,UTC-04:00,lots\n",
    )
    return cases
