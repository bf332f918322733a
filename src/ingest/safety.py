"""Hostile and broken input: machine-readable reason codes and the checks that produce them.

Everything a file can do to the pipeline (exhaust memory, fetch a URL, write outside the lake,
hang a parser) is refused here before a reader or a decompressor touches the bytes, and the refusal
carries a :class:`Code` a script can act on beside a sentence a person can act on. The checks are
cheap and structural (the zip central directory, the XML prologue, the FIT header chain) so they
cost nothing on good files; the streaming caps stay in place because headers can lie.

Readers keep raising ``ReadError`` for files they understand but cannot use; :func:`classify`
turns whatever a reader raised into a code, so every quarantine reason has one.
"""

from __future__ import annotations

import json
import re
import stat
import struct
import zipfile
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import IO, Any

from tunewell.ingest.base import ReadError

# Re-exported so callers of the ingest layer check ids in one place (the rule lives in the lake,
# which builds every path from an id).
from tunewell.lake.store import LakeWriteError, UnsafeUserIdError, check_user_id, is_disk_error
from tunewell.settings import IngestLimits, Settings

__all__ = [
    "Code",
    "Limits",
    "SafetyError",
    "UnsafeUserIdError",
    "check_user_id",
]


class Code(StrEnum):
    """Why a file (or an archive member) was refused; stable strings for scripts and reports."""

    XML_ENTITY_EXPANSION = "xml_entity_expansion"
    XML_EXTERNAL_ENTITY = "xml_external_entity"
    XML_SYNTAX = "xml_syntax_error"
    XML_TRUNCATED = "xml_truncated"
    INVALID_UTF8 = "invalid_utf8"
    ZIP_BOMB = "zip_bomb"
    ZIP_SLIP = "zip_slip"
    ZIP_ENCRYPTED = "zip_encrypted"
    ZIP_NESTED_TOO_DEEP = "zip_nested_too_deep"
    ZIP_SYMLINK = "zip_symlink"
    ZIP_DUPLICATE_MEMBER = "zip_duplicate_member"
    ZIP_TOO_MANY_MEMBERS = "zip_too_many_members"
    ZIP_BROKEN = "zip_broken"
    NOT_FIT = "not_fit"
    FIT_TRUNCATED = "fit_truncated"
    FIT_BAD_CRC = "fit_bad_crc"
    FIT_BAD_HEADER = "fit_bad_header"
    FIT_CHAIN_TOO_LONG = "fit_chain_too_long"
    FIT_DECODE_ERROR = "fit_decode_error"
    JSON_PARSE_ERROR = "json_parse_error"
    JSON_TOO_DEEP = "json_too_deep"
    CSV_BAD_COLUMNS = "csv_bad_columns"
    CSV_BAD_TYPES = "csv_bad_types"
    BAD_VALUES = "bad_values"  # times or numbers that do not parse, in any format
    FILE_TOO_LARGE = "file_too_large"
    ROWS_FAILED_VALIDATION = "rows_failed_validation"
    UNSAFE_USER_ID = "unsafe_user_id"
    READ_ERROR = "read_error"


class SafetyError(ReadError):
    """A refusal with its code; ``details`` holds figures (sizes, ratios, bytes read)."""

    def __init__(self, code: Code, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.details = details or {}


# The bounds are settings (``[limits]`` in tunewell.toml), so they are defined there, once.
Limits = IngestLimits


DEFAULT_LIMITS = Limits()


def limits_for(settings: Settings) -> Limits:
    """The limits a run uses: the settings' ``[limits]``, else the defaults."""
    return settings.ingest_limits


# ------------------------------------------------------------------------------------ archives


@dataclass(frozen=True)
class Refusal:
    member: str
    code: Code
    reason: str


@dataclass
class ZipPlan:
    """What may be extracted from an archive, and what was refused member by member."""

    members: list[zipfile.ZipInfo] = field(default_factory=list)
    refused: list[Refusal] = field(default_factory=list)
    declared_bytes: int = 0
    bytes_read: int = 0  # of the archive, to read its central directory


class _CountingFile:
    """A read-only file that counts the bytes handed out (the figure for 'read before refusal')."""

    def __init__(self, fh: IO[bytes]) -> None:
        self._fh = fh
        self.count = 0

    def read(self, n: int = -1) -> bytes:
        data = self._fh.read(n)
        self.count += len(data)
        return data

    def seek(self, *a: int) -> int:
        return self._fh.seek(*a)

    def tell(self) -> int:
        return self._fh.tell()

    def seekable(self) -> bool:
        return True


def unsafe_member_name(name: str) -> str | None:
    """Why a member name could escape the extraction folder, or None when it cannot."""
    if "\x00" in name:
        return "contains a NUL byte"
    win = PureWindowsPath(name)
    if name.startswith(("/", "\\")) or win.drive or PurePosixPath(name).is_absolute():
        return "is an absolute path"
    parts = re.split(r"[\\/]+", name)
    if ".." in parts:
        return "climbs out with '..'"
    return None


def _is_symlink(info: zipfile.ZipInfo) -> bool:
    return info.create_system == 3 and stat.S_ISLNK(info.external_attr >> 16)


def inspect_zip(path: Path, display: str, limits: Limits = DEFAULT_LIMITS) -> ZipPlan:
    """Decide from the central directory alone what may be inflated.

    A bomb (total or per-member size, or compression ratio, over the limits) refuses the whole
    archive before one byte is inflated. Dangerous members (zip slip, symlinks, encrypted,
    duplicates of an earlier name) are refused one by one; the rest of the archive is usable.
    """
    plan = ZipPlan()
    with Path(path).open("rb") as raw:
        counting = _CountingFile(raw)
        try:
            zf = zipfile.ZipFile(counting)
        except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
            raise SafetyError(Code.ZIP_BROKEN, f"{display}: broken zip archive ({exc})") from exc
        with zf:
            infos = zf.infolist()
            plan.bytes_read = counting.count
    if len(infos) > limits.max_members:
        raise SafetyError(
            Code.ZIP_TOO_MANY_MEMBERS,
            f"{display}: archive lists {len(infos):,} members (limit {limits.max_members:,})",
            {"members": len(infos), "bytes_read": plan.bytes_read},
        )
    total = sum(i.file_size for i in infos)
    plan.declared_bytes = total
    figures = {"declared_bytes": total, "bytes_read": plan.bytes_read}
    if total > limits.max_total_bytes:
        raise SafetyError(
            Code.ZIP_BOMB,
            f"{display}: zip bomb refused before inflating: members would inflate to "
            f"{total:,} bytes (limit {limits.max_total_bytes:,})",
            figures,
        )
    seen: set[str] = set()
    for info in infos:
        name = info.filename
        if info.file_size > limits.max_member_bytes:
            raise SafetyError(
                Code.ZIP_BOMB,
                f"{display}: zip bomb refused before inflating: member {name!r} would inflate to "
                f"{info.file_size:,} bytes (limit {limits.max_member_bytes:,})",
                figures,
            )
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size >= limits.ratio_floor_bytes and ratio > limits.max_ratio:
            raise SafetyError(
                Code.ZIP_BOMB,
                f"{display}: zip bomb refused before inflating: member {name!r} compresses "
                f"{ratio:,.0f}:1 (limit {limits.max_ratio:,.0f}:1)",
                {**figures, "ratio": round(ratio, 1)},
            )
        why = unsafe_member_name(name)
        if why:
            plan.refused.append(Refusal(name, Code.ZIP_SLIP, f"member {name!r} {why}"))
        elif _is_symlink(info):
            plan.refused.append(Refusal(name, Code.ZIP_SYMLINK, f"member {name!r} is a symlink"))
        elif info.flag_bits & 0x1:
            plan.refused.append(Refusal(name, Code.ZIP_ENCRYPTED, f"member {name!r} is encrypted"))
        elif name in seen:
            plan.refused.append(
                Refusal(
                    name,
                    Code.ZIP_DUPLICATE_MEMBER,
                    f"member {name!r} appears more than once (only the first is read)",
                )
            )
        else:
            seen.add(name)
            plan.members.append(info)
    return plan


class CappedStream:
    """Inflated bytes of a member, cut off once past its declared size or the limit: a lying
    local header cannot make a stream larger than the central directory promised."""

    def __init__(self, fh: IO[bytes], display: str, cap: int) -> None:
        self._fh = fh
        self._display = display
        self._cap = cap
        self.count = 0

    def read(self, n: int = -1) -> bytes:
        want = self._cap + 1 - self.count if n is None or n < 0 else n
        data = self._fh.read(max(0, min(want, self._cap + 1 - self.count)) or 1)
        self.count += len(data)
        if self.count > self._cap:
            raise SafetyError(
                Code.ZIP_BOMB,
                f"{self._display}: inflated past {self._cap:,} bytes; refused as a zip bomb",
                {"bytes_inflated": self.count},
            )
        return data

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> CappedStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_member(
    zf: zipfile.ZipFile, info: zipfile.ZipInfo | str, display: str, limits: Limits = DEFAULT_LIMITS
) -> CappedStream:
    info = zf.getinfo(info) if isinstance(info, str) else info
    if info.flag_bits & 0x1:
        raise SafetyError(Code.ZIP_ENCRYPTED, f"{display}: member {info.filename!r} is encrypted")
    cap = min(limits.max_member_bytes, max(info.file_size, 0))
    return CappedStream(zf.open(info), f"{display}!{info.filename}", cap)


def copy_member(
    zf: zipfile.ZipFile,
    info: zipfile.ZipInfo,
    dest: Path,
    display: str,
    limits: Limits = DEFAULT_LIMITS,
) -> int:
    try:
        with open_member(zf, info, display, limits) as src, dest.open("wb") as out:
            while block := src.read(1 << 20):
                out.write(block)
            return src.count
    except OSError as exc:
        if is_disk_error(exc):
            raise LakeWriteError(dest, exc) from exc
        raise


# ------------------------------------------------------------------------------------ XML

_ENTITY = re.compile(rb"<!ENTITY\s+(%\s+)?([^\s>]+)\s+(.*?)>", re.S)
_DOCTYPE_EXTERNAL = re.compile(rb"<!DOCTYPE\s+[^\s\[>]+\s+(SYSTEM|PUBLIC)\b", re.S)


def check_xml_prologue(prologue: bytes, display: str) -> None:
    """Refuse DTD tricks before a parser sees them: an external DTD or entity (XXE: a file or URL
    read at parse time) and entity declarations (billion laughs). No health export declares an
    entity, so any declaration is refused rather than judged harmless."""
    head = xml_prologue_of(prologue)
    if _DOCTYPE_EXTERNAL.search(head):
        raise SafetyError(
            Code.XML_EXTERNAL_ENTITY,
            f"{display}: XML names an external DTD (a file or URL read at parse time); "
            "refused unread",
        )
    decls = _ENTITY.findall(head)
    if not decls:
        return
    external = [n.decode(errors="replace") for p, n, body in decls if _is_external(body) or p]
    if external:
        raise SafetyError(
            Code.XML_EXTERNAL_ENTITY,
            f"{display}: XML declares external entities ({', '.join(external[:3])}): "
            "a file or URL read at parse time; refused unresolved",
            {"entities": len(decls)},
        )
    nested = sum(1 for _, _, body in decls if b"&" in body)
    raise SafetyError(
        Code.XML_ENTITY_EXPANSION,
        f"{display}: XML declares {len(decls)} entities"
        + (f", {nested} built from other entities (a 'billion laughs' bomb)" if nested else "")
        + "; refused unexpanded",
        {"entities": len(decls), "nested": nested},
    )


def _is_external(body: bytes) -> bool:
    return re.match(rb"\s*(SYSTEM|PUBLIC)\b", body) is not None


def _strip_decls(prologue: bytes) -> bytes:
    """The prologue with declarations and comments blanked (same length), so the first '<x' found
    is the root element."""

    def blank(m: re.Match[bytes]) -> bytes:
        return b" " * (m.end() - m.start())

    out = re.sub(rb"<!--.*?-->", blank, prologue, flags=re.S)
    out = re.sub(rb"<\?.*?\?>", blank, out, flags=re.S)
    return re.sub(rb"<!DOCTYPE[^\[>]*(\[.*?\]\s*)?>", blank, out, flags=re.S)


def xml_prologue_of(head: bytes) -> bytes:
    """The bytes before the root element (the whole head if the root is not in it)."""
    m = re.search(rb"<[A-Za-z_]", _strip_decls(head))
    return head if m is None else head[: m.start()]


def xml_code(message: str) -> Code:
    low = message.lower()
    if "utf-8" in low or "encoding" in low or "not proper" in low:
        return Code.INVALID_UTF8
    if "entity" in low and ("loop" in low or "amplification" in low or "explosion" in low):
        return Code.XML_ENTITY_EXPANSION
    if any(s in low for s in ("premature end", "no element found", "end of data", "eof")):
        return Code.XML_TRUNCATED
    if "extra content" not in low and "not closed" in low:
        return Code.XML_TRUNCATED
    return Code.XML_SYNTAX


# ------------------------------------------------------------------------------------ FIT


def check_fit(data: bytes, display: str, limits: Limits = DEFAULT_LIMITS) -> None:
    """Bound what a FIT file may cost before the SDK runs: its size, and the length of its chain
    of concatenated files (the SDK decodes every link, so an endless chain is an endless decode).
    A first header that is no FIT header is ``not_fit``. Truncation, lying sizes and bad CRCs are
    left to the decode, whose diagnosis (:func:`fit_code`) names them with the messages read."""
    if len(data) > limits.max_fit_bytes:
        raise SafetyError(
            Code.FILE_TOO_LARGE,
            f"{display}: {len(data):,} bytes is more than a FIT file holds "
            f"(limit {limits.max_fit_bytes:,})",
        )
    if len(data) < 12 or data[0] not in (12, 14) or data[8:12] != b".FIT":
        raise SafetyError(Code.NOT_FIT, f"{display}: content is not FIT (no FIT file header)")
    pos, index = 0, 0
    while pos + 12 <= len(data) and data[pos] in (12, 14) and data[pos + 8 : pos + 12] == b".FIT":
        index += 1
        if index > limits.max_fit_chain:
            raise SafetyError(
                Code.FIT_CHAIN_TOO_LONG,
                f"{display}: more than {limits.max_fit_chain:,} FIT files chained in one file",
            )
        (dsize,) = struct.unpack_from("<I", data, pos + 4)
        pos += data[pos] + dsize + 2


def fit_code(diagnosis: str | None) -> Code:
    if not diagnosis:
        return Code.FIT_DECODE_ERROR
    if diagnosis.startswith("unexpected end"):
        return Code.FIT_TRUNCATED
    if diagnosis.startswith("CRC mismatch") or "CRC mismatch" in diagnosis:
        return Code.FIT_BAD_CRC
    if diagnosis.startswith("corrupt header"):
        return Code.FIT_BAD_HEADER
    return Code.FIT_DECODE_ERROR


# ------------------------------------------------------------------------------------ unclaimed


def check_unclaimed(path: Path, head: bytes, display: str, limits: Limits = DEFAULT_LIMITS) -> None:
    """A file no reader claims is skipped, unless its name or content says what it should be and
    it is not: a ``.fit`` that is no FIT file, a ``.json`` that does not parse, an XML with DTD
    tricks. Those are refused with their code instead of vanishing as 'skipped'."""
    suffix = Path(path).suffix.lower()
    lead = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if suffix == ".fit" or head[8:12] == b".FIT":
        check_fit(Path(path).read_bytes()[: limits.max_fit_bytes + 1], display, limits)
        raise SafetyError(Code.FIT_DECODE_ERROR, f"{display}: FIT file no reader could decode")
    if lead[:1] == b"<" or suffix == ".xml":
        check_xml_prologue(xml_prologue_of(head), display)
    if suffix == ".json" or lead[:1] in (b"{", b"["):
        check_json(path, display, limits)


def check_json(path: Path, display: str, limits: Limits = DEFAULT_LIMITS) -> None:
    if Path(path).stat().st_size > limits.max_json_bytes:
        return  # too big to parse just for a verdict on a file no reader wants: skipped as is
    try:
        with Path(path).open("rb") as fh:
            json.load(fh)
    except RecursionError:
        raise SafetyError(
            Code.JSON_TOO_DEEP, f"{display}: JSON nested too deeply to parse"
        ) from None
    except UnicodeDecodeError as exc:
        raise SafetyError(Code.INVALID_UTF8, f"{display}: JSON is not valid UTF-8 ({exc})") from exc
    except json.JSONDecodeError as exc:
        raise SafetyError(
            Code.JSON_PARSE_ERROR,
            f"{display}: JSON does not parse: {exc.msg} at line {exc.lineno} column {exc.colno}",
        ) from exc


# ------------------------------------------------------------------------------------ classify


def classify(exc: BaseException, source: str = "", path: Path | None = None) -> Code:
    """The code for whatever a reader raised (``path``: to tell a truncated XML from a broken
    one, by whether the document's end is there at all)."""
    if isinstance(exc, SafetyError):
        return exc.code
    text = str(exc)
    name = type(exc.__cause__ or exc).__name__
    if name == "XMLSyntaxError" and path is not None and not zipfile.is_zipfile(path):
        code = xml_code(text)
        if code == Code.XML_SYNTAX and not _ends_with_close_tag(path):
            return Code.XML_TRUNCATED
        return code
    if isinstance(exc, RecursionError):
        return Code.JSON_TOO_DEEP
    if isinstance(exc, UnicodeDecodeError) or "utf-8" in text.lower():
        return Code.INVALID_UTF8
    if isinstance(exc, json.JSONDecodeError) or "invalid JSON" in text or "valid JSON" in text:
        return Code.JSON_PARSE_ERROR
    if name == "XMLSyntaxError" or "export.xml" in text:
        return xml_code(text)
    if isinstance(exc, zipfile.BadZipFile) or "broken zip" in text:
        return Code.ZIP_BROKEN
    if source == "garmin_fit":
        return fit_code(text.split(": ", 1)[-1])
    low = text.lower()
    if any(k in low for k in ("unparseable", "could not parse", "conversion")) or re.search(
        r"not in '[^']+' form", text
    ):
        return Code.BAD_VALUES
    if name in ("ColumnNotFoundError", "SchemaFieldNotFoundError") or "column" in text.lower():
        return Code.CSV_BAD_COLUMNS
    if name in ("ComputeError", "InvalidOperationError", "SchemaError", "ValueError"):
        return Code.CSV_BAD_TYPES
    return Code.READ_ERROR


def _ends_with_close_tag(path: Path) -> bool:
    with Path(path).open("rb") as fh:
        fh.seek(0, 2)
        fh.seek(max(fh.tell() - 256, 0))
        return re.search(rb"</[A-Za-z_][^>]*>\s*$", fh.read()) is not None
