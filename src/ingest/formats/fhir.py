"""FHIR JSON lab results: one ``Observation``, a ``Bundle`` of any type, a ``DiagnosticReport``.

Patient portals export FHIR R4 Bundles and Apple Health writes one resource per file in
``clinical-records/`` (DSTU2 or R4, read here too, see ``clinical_records``). The fields this
reader needs are the same in DSTU2 and R4 except ``interpretation`` and ``category`` (one
CodeableConcept in DSTU2, a list in R4), so one reader takes both.

What becomes a ``lab_result`` row:
- an Observation whose category is laboratory or that has no category, and every Observation a
  DiagnosticReport lists in ``result`` (contained ``#id``, ``Type/id`` or a Bundle ``fullUrl``),
  each once however it is reached; a grouping Observation's ``hasMember`` likewise;
- its ``value[x]``: ``valueQuantity`` (UCUM code where the lab gave one, else its unit text; a
  ``comparator`` result such as ``<0.5`` is kept as text, not as the number 0.5),
  ``valueString``, ``valueCodeableConcept``, integer/boolean/range/ratio, or the
  ``dataAbsentReason`` as text;
- each ``component`` as its own row (panels such as a cortisol day curve), with the parent's time,
  specimen and status;
- the first ``referenceRange`` (low, high, text), the lab's ``interpretation`` codes as written,
  the specimen's type and collection time (contained or in the Bundle);
- time from ``effectiveDateTime``/``effectiveInstant``/``effectivePeriod`` (offsets kept), else
  the report's effective time, else ``issued``.

Observations of other categories (vital signs, social history, surveys) and other resource types
(Patient, Condition, medications …) have no lab table; they are skipped and counted in the file's
notes. An Observation with no time at all is skipped with a note as well.

Validation is against the spec's JSON shapes for the elements read (types of every element used,
required ``status`` and ``code``, the status value set, at most one ``value[x]``, reference
ranges with a low, a high or a text (obs-3), dateTime syntax), not with ``fhir.resources``: that
library (8.3) models R5/R4B/STU3 but neither R4 4.0.1 nor DSTU2 (it rejects Apple's DSTU2
records), coerces a JSON string ``"18"`` in ``valueQuantity.value`` to a number where the spec
requires a JSON number, and measured 0.55–1.2 s to import and 0.45 ms per Observation against
0.08 s and 0.04–0.11 ms here (``bench/fhir_validation.py``, 2,000 Observations). A file breaking
a shape is refused whole with the resource and element named, and quarantined by the runner.
"""

from __future__ import annotations

import json
import re
import zipfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

import polars as pl

from tunewell.ingest.base import FileContext, ReadError
from tunewell.ingest.lab_rows import (
    LOINC,
    UCUM,
    Instant,
    LabRow,
    TimeFormatError,
    frame,
    parse_time,
)
from tunewell.ingest.validate import LAB_STATUS

SOURCE = "fhir"
PRIORITY = 15

_RT = re.compile(rb'"resourceType"\s*:\s*"([A-Za-z]+)"')
COMPARATORS = frozenset({"<", "<=", ">=", ">"})
LAB_CATEGORY = "laboratory"
CLINICAL_DIR = "clinical-records"
# Resource types used as parts of a lab result rather than skipped.
_PARTS = frozenset({"Specimen"})


class FhirShapeError(ReadError):
    """A resource that does not have the JSON shape the FHIR spec gives it."""


def sniff(path: Path, head: bytes) -> bool:
    start = head.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    return start == b"{" and _RT.search(head) is not None


def load(data: bytes, where: str) -> Any:
    try:
        return json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FhirShapeError(f"{where}: not JSON ({exc})") from exc


def read(ctx: FileContext) -> Iterator[tuple[str, pl.DataFrame]]:
    doc = load(ctx.path.read_bytes(), ctx.display)
    ex = Extractor(ctx, _document_name(ctx.display))
    ex.document(doc)
    ctx.notes.extend(ex.notes())
    if ex.rows:
        yield "lab_result", frame(ctx, ex.rows, SOURCE)


def _document_name(display: str) -> str:
    """The member path inside an archive, else the file name (never the folders above it)."""
    if "!" in display:
        return display.rsplit("!", 1)[1]
    return Path(display).name


# ------------------------------------------------------------------------------ shape checks


def _fail(where: str, problem: str) -> NoReturn:
    raise FhirShapeError(f"{where}: {problem}")


def _obj(v: Any, where: str) -> dict:
    if not isinstance(v, dict):
        _fail(where, f"expected a JSON object, got {type(v).__name__}")
    return v


def _list(v: Any, where: str) -> list:
    if not isinstance(v, list):
        _fail(where, f"expected a JSON array, got {type(v).__name__}")
    return v


def _str(v: Any, where: str) -> str | None:
    if v is not None and not isinstance(v, str):
        _fail(where, f"expected a string, got {v!r}")
    return v


def _num(v: Any, where: str) -> float | None:
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int | float):
        _fail(where, f"expected a number, got {v!r}")
    return float(v)


def _cc(v: Any, where: str) -> dict:
    cc = _obj(v, where)
    for i, c in enumerate(_list(cc.get("coding", []), f"{where}.coding")):
        c = _obj(c, f"{where}.coding[{i}]")
        for k in ("system", "code", "display"):
            _str(c.get(k), f"{where}.coding[{i}].{k}")
    _str(cc.get("text"), f"{where}.text")
    return cc


def _ccs(v: Any, where: str) -> list[dict]:
    """DSTU2 has one CodeableConcept where R4 has a list (interpretation, category)."""
    if v is None:
        return []
    if isinstance(v, dict):
        return [_cc(v, where)]
    return [_cc(c, f"{where}[{i}]") for i, c in enumerate(_list(v, where))]


def _quantity(v: Any, where: str) -> dict:
    q = _obj(v, where)
    _num(q.get("value"), f"{where}.value")
    for k in ("unit", "system", "code"):
        _str(q.get(k), f"{where}.{k}")
    comp = _str(q.get("comparator"), f"{where}.comparator")
    if comp is not None and comp not in COMPARATORS:
        _fail(f"{where}.comparator", f"not one of < <= >= >: {comp!r}")
    return q


# ------------------------------------------------------------------------------ value helpers


def pick_code(cc: dict) -> tuple[str | None, str | None, str | None]:
    """(code, system, name): the LOINC coding where there is one, else the first coding."""
    codings = [c for c in cc.get("coding", []) if c.get("code")]
    loinc = [c for c in codings if c.get("system") == LOINC]
    chosen = (loinc or codings or [{}])[0]
    displays = [c.get("display") for c in cc.get("coding", []) if c.get("display")]
    name = cc.get("text") or chosen.get("display") or (displays[0] if displays else None)
    return chosen.get("code"), chosen.get("system"), name or chosen.get("code")


def cc_text(cc: dict) -> str | None:
    if cc.get("text"):
        return cc["text"]
    for c in cc.get("coding", []):
        if c.get("display"):
            return c["display"]
    for c in cc.get("coding", []):
        if c.get("code"):
            return c["code"]
    return None


def _unit(q: dict) -> str | None:
    if q.get("system") == UCUM and q.get("code"):
        return q["code"]
    return q.get("unit") or q.get("code")


def _fmt(x: float) -> str:
    return f"{x:g}"


def _value(obj: dict, where: str) -> tuple[float | None, str | None, str | None]:
    """(value, unit, value_text) of an Observation or component."""
    keys = [k for k in obj if k.startswith("value")]
    if len(keys) > 1:
        _fail(where, f"more than one value[x]: {', '.join(keys)}")
    if not keys:
        if obj.get("dataAbsentReason") is not None:
            return None, None, cc_text(_cc(obj["dataAbsentReason"], f"{where}.dataAbsentReason"))
        return None, None, None
    k = keys[0]
    v = obj[k]
    w = f"{where}.{k}"
    if k == "valueQuantity":
        q = _quantity(v, w)
        num = _num(q.get("value"), f"{w}.value")
        unit = _unit(q)
        if q.get("comparator") and num is not None:
            return None, unit, f"{q['comparator']}{_fmt(num)}"
        return num, unit, None
    if k == "valueString":
        return None, None, _str(v, w)
    if k == "valueCodeableConcept":
        return None, None, cc_text(_cc(v, w))
    if k == "valueInteger":
        if isinstance(v, bool) or not isinstance(v, int):
            _fail(w, f"expected an integer, got {v!r}")
        return float(v), None, None
    if k == "valueBoolean":
        if not isinstance(v, bool):
            _fail(w, f"expected true or false, got {v!r}")
        return None, None, "true" if v else "false"
    if k == "valueRange":
        r = _obj(v, w)
        lo = _quantity(r["low"], f"{w}.low") if "low" in r else {}
        hi = _quantity(r["high"], f"{w}.high") if "high" in r else {}
        unit = _unit(lo) or _unit(hi)
        text = f"{_fmt(lo['value']) if 'value' in lo else ''}–"
        text += _fmt(hi["value"]) if "value" in hi else ""
        return None, unit, text
    if k == "valueRatio":
        r = _obj(v, w)
        n = _quantity(r.get("numerator", {}), f"{w}.numerator")
        d = _quantity(r.get("denominator", {}), f"{w}.denominator")
        return None, None, f"{_fmt(n.get('value', 0))}/{_fmt(d.get('value', 1))}"
    if isinstance(v, str | int | float):
        return None, None, str(v)  # valueTime, valueDateTime …: kept as written
    return None, None, json.dumps(v, sort_keys=True)


def _range(obj: dict, where: str) -> tuple[float | None, float | None, str | None]:
    ranges = _list(obj.get("referenceRange", []), f"{where}.referenceRange")
    checked = []
    for i, r in enumerate(ranges):
        w = f"{where}.referenceRange[{i}]"
        r = _obj(r, w)
        if not any(k in r for k in ("low", "high", "text")):
            _fail(w, "a reference range needs a low, a high or a text (obs-3)")
        low = _quantity(r["low"], f"{w}.low").get("value") if "low" in r else None
        high = _quantity(r["high"], f"{w}.high").get("value") if "high" in r else None
        checked.append((r, low, high, _str(r.get("text"), f"{w}.text")))
    if not checked:
        return None, None, None
    # The lab's general range: one not limited to an age or population, else the first.
    general = [c for c in checked if "appliesTo" not in c[0] and "age" not in c[0]]
    _, low, high, text = (general or checked)[0]
    return (
        None if low is None else float(low),
        None if high is None else float(high),
        text,
    )


def _interpretation(obj: dict, where: str) -> str | None:
    flags = []
    for cc in _ccs(obj.get("interpretation"), f"{where}.interpretation"):
        codes = [c["code"] for c in cc.get("coding", []) if c.get("code")]
        flags.append(codes[0] if codes else cc_text(cc))
    return ",".join(f for f in flags if f) or None


# ------------------------------------------------------------------------------ extraction

# The time given to a result that carries none, so its components are still parsed and checked;
# such results are counted in ``undated`` (and noted) and never written to the lake.
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class _ReportContext:
    """What a DiagnosticReport lends the results it lists."""

    label: str
    time: tuple[Instant, Instant | None] | None
    specimen: tuple[str | None, Instant | None]


class Extractor:
    """Walks one FHIR document (a resource or a Bundle) and collects lab rows and notes."""

    def __init__(self, ctx: FileContext, document: str) -> None:
        self.ctx = ctx
        self.document_name = document
        self.rows: list[LabRow] = []
        self.skipped: Counter[str] = Counter()
        self.skipped_category: Counter[str] = Counter()
        self.undated: list[str] = []
        self.missing_refs: list[str] = []
        self._done: set[int] = set()

    def notes(self) -> list[str]:
        out = []
        if self.skipped:
            kinds = ", ".join(f"{k} ×{n}" for k, n in sorted(self.skipped.items()))
            out.append(f"{self.document_name}: skipped resources without a lab table: {kinds}")
        if self.skipped_category:
            kinds = ", ".join(f"{k} ×{n}" for k, n in sorted(self.skipped_category.items()))
            out.append(f"{self.document_name}: skipped non-laboratory Observations: {kinds}")
        if self.undated:
            out.append(
                f"{self.document_name}: skipped Observations with no time: "
                + ", ".join(self.undated[:5])
            )
        if self.missing_refs:
            out.append(
                f"{self.document_name}: results referenced but not in the file: "
                + ", ".join(self.missing_refs[:5])
            )
        return out

    # -- documents

    def document(self, doc: Any, where: str = "") -> None:
        res = _obj(doc, where or "document")
        rt = _str(res.get("resourceType"), f"{where}resourceType")
        if not rt:
            _fail(where or "document", "no resourceType: not a FHIR resource")
        label = f"{where}{rt}/{res.get('id', '?')}"
        if rt == "Bundle":
            self.bundle(res, label)
        elif rt == "DiagnosticReport":
            self.report(res, label, {})
        elif rt == "Observation":
            self.observation(res, label, {}, None)
        elif rt not in _PARTS:
            self.skipped[rt] += 1

    def bundle(self, b: dict, where: str) -> None:
        entries = _list(b.get("entry", []), f"{where}.entry")
        resources: list[tuple[str, dict]] = []
        index: dict[str, dict] = {}
        for i, e in enumerate(entries):
            e = _obj(e, f"{where}.entry[{i}]")
            if "resource" not in e:
                continue  # a history/transaction entry that only carries a request
            r = _obj(e["resource"], f"{where}.entry[{i}].resource")
            rt = _str(r.get("resourceType"), f"{where}.entry[{i}].resource.resourceType")
            if not rt:
                _fail(f"{where}.entry[{i}]", "resource without resourceType")
            full = _str(e.get("fullUrl"), f"{where}.entry[{i}].fullUrl")
            if full:
                index[full] = r
            if r.get("id"):
                index[f"{rt}/{r['id']}"] = r
            resources.append((f"{where}.entry[{i}] {rt}/{r.get('id', '?')}", r))
        # Reports first, so that their results carry the report's time and specimen and are
        # kept whatever their category; the Observations left are read on their own after.
        order = sorted(resources, key=lambda x: x[1]["resourceType"] != "DiagnosticReport")
        for label, r in order:
            rt = r["resourceType"]
            if rt == "DiagnosticReport":
                self.report(r, label, index)
            elif rt == "Observation":
                self.observation(r, label, index, None)
            elif rt == "Bundle":
                self.bundle(r, label)
            elif rt not in _PARTS:
                self.skipped[rt] += 1

    @staticmethod
    def _contained(res: dict, where: str) -> dict[str, dict]:
        out = {}
        for i, c in enumerate(_list(res.get("contained", []), f"{where}.contained")):
            c = _obj(c, f"{where}.contained[{i}]")
            if c.get("id"):
                out[f"#{c['id']}"] = c
        return out

    def _resolve(self, ref: Any, where: str, *scopes: dict[str, dict]) -> dict | None:
        r = _obj(ref, where)
        target = _str(r.get("reference"), f"{where}.reference")
        if not target:
            return None
        for scope in scopes:
            if target in scope:
                return scope[target]
        # An absolute reference to a resource that the Bundle lists by Type/id.
        tail = "/".join(target.rstrip("/").split("/")[-2:])
        for scope in scopes:
            if tail in scope:
                return scope[tail]
        return None

    def report(self, dr: dict, where: str, index: dict[str, dict]) -> None:
        status = _str(dr.get("status"), f"{where}.status")
        if not status:
            _fail(where, "status is required")
        if "code" not in dr:
            _fail(where, "code is required")
        _cc(dr["code"], f"{where}.code")
        contained = self._contained(dr, where)
        ctx = _ReportContext(
            label=f"DiagnosticReport/{dr.get('id', '?')}",
            time=self._effective(dr, where),
            specimen=self._specimen(dr, where, contained, index),
        )
        for i, ref in enumerate(_list(dr.get("result", []), f"{where}.result")):
            w = f"{where}.result[{i}]"
            obs = self._resolve(ref, w, contained, index)
            if obs is None:
                self.missing_refs.append(str(ref.get("reference") or ref.get("display")))
                continue
            if obs.get("resourceType") != "Observation":
                _fail(w, f"result is a {obs.get('resourceType')}, not an Observation")
            self.observation(obs, f"{w} Observation/{obs.get('id', '?')}", index, ctx, contained)

    # -- observations

    def _effective(self, res: dict, where: str) -> tuple[Instant, Instant | None] | None:
        keys = [k for k in res if k.startswith("effective")]
        if len(keys) > 1:
            _fail(where, f"more than one effective[x]: {', '.join(keys)}")
        for k in ("effectiveDateTime", "effectiveInstant"):
            if k in res:
                return self._time(res[k], f"{where}.{k}"), None
        if "effectivePeriod" in res:
            p = _obj(res["effectivePeriod"], f"{where}.effectivePeriod")
            start = p.get("start") or p.get("end")
            if start is not None:
                end = p.get("end") if p.get("start") else None
                s = self._time(start, f"{where}.effectivePeriod.start")
                e = self._time(end, f"{where}.effectivePeriod.end") if end else None
                if e is not None and e.utc < s.utc:
                    _fail(f"{where}.effectivePeriod", "end before start")
                return s, e
        return None

    def _time(self, v: Any, where: str) -> Instant:
        text = _str(v, where)
        try:
            return parse_time(text or "", self.ctx)
        except TimeFormatError as exc:
            raise FhirShapeError(f"{where}: {exc}") from exc

    def _specimen(
        self, res: dict, where: str, *scopes: dict[str, dict]
    ) -> tuple[str | None, Instant | None]:
        if "specimen" not in res:
            return None, None
        ref = res["specimen"]
        if isinstance(ref, list):  # DiagnosticReport.specimen is a list; the first is used
            if not ref:
                return None, None
            ref = ref[0]
        ref = _obj(ref, f"{where}.specimen")
        sp = self._resolve(ref, f"{where}.specimen", *scopes)
        if sp is None:
            name = _str(ref.get("display"), f"{where}.specimen.display")
            return (name.lower() if name else None), None
        w = f"{where}.specimen→Specimen/{sp.get('id', '?')}"
        kind = cc_text(_cc(sp["type"], f"{w}.type")) if "type" in sp else None
        collected = None
        coll = sp.get("collection")
        if coll is not None:
            coll = _obj(coll, f"{w}.collection")
            if "collectedDateTime" in coll:
                collected = self._time(coll["collectedDateTime"], f"{w}.collectedDateTime")
            elif "collectedPeriod" in coll:
                p = _obj(coll["collectedPeriod"], f"{w}.collectedPeriod")
                if p.get("start"):
                    collected = self._time(p["start"], f"{w}.collectedPeriod.start")
        return (kind.lower() if kind else None), collected

    def observation(
        self,
        obs: dict,
        where: str,
        index: dict[str, dict],
        report: _ReportContext | None,
        outer: dict[str, dict] | None = None,
    ) -> None:
        if id(obs) in self._done:
            return
        self._done.add(id(obs))
        status = _str(obs.get("status"), f"{where}.status")
        if not status:
            _fail(where, "status is required")
        if status not in LAB_STATUS:
            _fail(f"{where}.status", f"not an Observation status: {status!r}")
        if "code" not in obs:
            _fail(where, "code is required")
        code, system, name = pick_code(_cc(obs["code"], f"{where}.code"))
        categories = _ccs(obs.get("category"), f"{where}.category")
        cat_codes = {
            (c.get("code") or "").lower() for cc in categories for c in cc.get("coding", [])
        } | {(cc.get("text") or "").lower() for cc in categories}
        cat_codes.discard("")
        if report is None and cat_codes and LAB_CATEGORY not in cat_codes:
            self.skipped_category[sorted(cat_codes)[0]] += 1
            return
        contained = self._contained(obs, where)
        scopes = [contained, *([outer] if outer else []), index]
        rid = f"Observation/{obs.get('id', '?')}"
        doc = f"{self.document_name}#{report.label + '/' if report else ''}{rid}"
        when = self._effective(obs, where) or (report.time if report else None)
        if when is None and obs.get("issued"):
            when = self._time(obs["issued"], f"{where}.issued"), None
        specimen, collected = self._specimen(obs, where, *scopes)
        if specimen is None and collected is None and report is not None:
            specimen, collected = report.specimen
        value, unit, text = _value(obs, where)
        low, high, ref_text = _range(obs, where)
        base = LabRow(
            start=when[0] if when else Instant(_EPOCH, 0),
            end=when[1] if when else None,
            code=code,
            code_system=system,
            name=name,
            value=value,
            unit=unit,
            value_text=text,
            reference_low=low,
            reference_high=high,
            reference_text=ref_text,
            interpretation=_interpretation(obs, where),
            specimen=specimen,
            collected=collected or (when[0] if when else None),
            status=status,
            source_document=doc,
        )
        rows: list[LabRow] = []
        if value is not None or text is not None:
            rows.append(base)
        for i, comp in enumerate(_list(obs.get("component", []), f"{where}.component")):
            w = f"{where}.component[{i}]"
            comp = _obj(comp, w)
            if "code" not in comp:
                _fail(w, "code is required")
            c_code, c_system, c_name = pick_code(_cc(comp["code"], f"{w}.code"))
            c_value, c_unit, c_text = _value(comp, w)
            c_low, c_high, c_ref = _range(comp, w)
            rows.append(
                LabRow(
                    **{
                        **base.__dict__,
                        "code": c_code,
                        "code_system": c_system,
                        "name": c_name,
                        "value": c_value,
                        "unit": c_unit,
                        "value_text": c_text,
                        "reference_low": c_low,
                        "reference_high": c_high,
                        "reference_text": c_ref,
                        "interpretation": _interpretation(comp, w),
                        "source_document": f"{doc}/component[{i}]",
                    }
                )
            )
        for i, ref in enumerate(_list(obs.get("hasMember", []), f"{where}.hasMember")):
            member = self._resolve(ref, f"{where}.hasMember[{i}]", *scopes)
            if member is not None and member.get("resourceType") == "Observation":
                self.observation(member, f"{where}.hasMember[{i}]", index, report, contained)
        if rows and when is None:
            self.undated.append(rid)
            return
        self.rows.extend(rows)


# ------------------------------------------------------------------------------ Apple


def clinical_members(names: list[str]) -> list[str]:
    """``apple_health_export/clinical-records/*.json`` members of an export zip."""
    out = []
    for n in names:
        parts = Path(n).parts
        if "__MACOSX" in parts or len(parts) < 2 or not n.lower().endswith(".json"):
            continue
        if parts[-2] == CLINICAL_DIR:
            out.append(n)
    return sorted(out)


def clinical_records(
    ctx: FileContext, zf: zipfile.ZipFile, source: str
) -> Iterator[tuple[str, pl.DataFrame]]:
    """Lab results from Apple Health's clinical records, one FHIR resource per member.

    A member that is not readable FHIR is skipped with its reason in the notes rather than
    refusing the whole export (the sleep and heart data beside it are fine); the note names the
    member so it can be fixed and the export ingested again with ``--retry-quarantined``.
    """
    members = clinical_members(zf.namelist())
    rows: list[LabRow] = []
    broken: list[str] = []
    skipped: Counter[str] = Counter()
    other_notes: list[str] = []
    for m in members:
        name = "/".join(Path(m).parts[-2:])
        ex = Extractor(ctx, name)
        try:
            ex.document(load(zf.read(m), name))
        except ReadError as exc:
            broken.append(str(exc))
            continue
        rows += ex.rows
        skipped.update(ex.skipped)
        skipped.update({f"Observation ({k})": n for k, n in ex.skipped_category.items()})
        other_notes += [n for n in ex.notes() if "skipped" not in n or "no time" in n]
    if members:
        ctx.notes.append(
            f"clinical records: {len(members)} file(s), {len(rows)} lab result(s)"
            + (
                "; skipped without a lab table: "
                + ", ".join(f"{k} ×{n}" for k, n in sorted(skipped.items()))
                if skipped
                else ""
            )
        )
    ctx.notes.extend(other_notes)
    ctx.notes.extend(f"clinical record not read: {b}" for b in broken)
    if rows:
        yield "lab_result", frame(ctx, rows, source)


__all__ = [
    "PRIORITY",
    "SOURCE",
    "Extractor",
    "FhirShapeError",
    "clinical_members",
    "clinical_records",
    "read",
    "sniff",
]
