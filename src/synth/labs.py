"""Lab results in the formats people hold them: Apple Health clinical records and a lab CSV.

Apple writes each record from a health provider as one FHIR resource per file in
``apple_health_export/clinical-records/`` (``Observation-<uuid>.json``), DSTU2 for older
connections and R4 for newer ones. The set here covers what the readers must handle: a DSTU2
result (single CodeableConcept ``category``/``interpretation``), an R4 panel with components, a
non-numeric result, a result without a reference range, a ``<`` result, and resources without a
lab table (an allergy record, a vital-signs Observation) that must be skipped. Values are
invented; codes are real LOINC codes.
"""

from __future__ import annotations

import json
import uuid
import zipfile
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
_R4_CAT = "http://terminology.hl7.org/CodeSystem/observation-category"
_R4_INTERP = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
_CLINICAL = "apple_health_export/clinical-records"


def _uuid(seed: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"tunewell-synth/{seed}")).upper()


def _iso(t: datetime) -> str:
    return t.isoformat(timespec="seconds")


def _q(value: float, unit: str) -> dict:
    return {"value": value, "unit": unit, "system": UCUM, "code": unit}


def _loinc(code: str, display: str, text: str | None = None) -> dict:
    cc: dict = {"coding": [{"system": LOINC, "code": code, "display": display}]}
    if text:
        cc["text"] = text
    return cc


def _r4_obs(oid: str, t: datetime, code: dict, **fields: object) -> dict:
    return {
        "resourceType": "Observation",
        "id": oid,
        "status": "final",
        "category": [{"coding": [{"system": _R4_CAT, "code": "laboratory"}]}],
        "code": code,
        "subject": {"reference": "Patient/apple-1"},
        "effectiveDateTime": _iso(t),
        "issued": _iso(t + timedelta(hours=6)),
        **fields,
    }


@dataclass(frozen=True)
class ClinicalSet:
    """The generated members and what the readers should find in them."""

    members: dict[str, bytes]
    lab_rows: int  # lab_result rows expected
    skipped: int  # resources without a lab table


def apple_clinical_records(first: date, tz_offset_h: int = -5) -> ClinicalSet:
    """Clinical-record files for a person whose results start on ``first`` (local)."""
    tz = timezone(timedelta(hours=tz_offset_h))
    t1 = datetime(first.year, first.month, first.day, 8, 15, tzinfo=tz)
    t2 = t1 + timedelta(days=28, minutes=-20)
    dstu2_ferritin = {
        "resourceType": "Observation",
        "id": _uuid("dstu2-ferritin"),
        "status": "final",
        "category": {
            "coding": [{"system": "http://hl7.org/fhir/observation-category", "code": "laboratory"}]
        },
        "code": {"coding": [{"system": LOINC, "code": "2276-4", "display": "Ferritin"}]},
        "subject": {"reference": "Patient/apple-1"},
        "effectiveDateTime": _iso(t1),
        "issued": _iso(t1 + timedelta(hours=5)),
        "valueQuantity": _q(24, "ng/mL"),
        "interpretation": {"coding": [{"system": "http://hl7.org/fhir/v2/0078", "code": "L"}]},
        "referenceRange": [{"low": _q(30, "ng/mL"), "high": _q(400, "ng/mL")}],
    }
    r4_ferritin = _r4_obs(
        _uuid("r4-ferritin"),
        t2,
        _loinc("2276-4", "Ferritin [Mass/volume] in Serum or Plasma", "Ferritin"),
        valueQuantity=_q(41, "ng/mL"),
        interpretation=[{"coding": [{"system": _R4_INTERP, "code": "N"}]}],
        referenceRange=[{"low": _q(30, "ng/mL"), "high": _q(400, "ng/mL")}],
    )
    panel = _r4_obs(
        _uuid("r4-lipids"),
        t2,
        _loinc("57698-3", "Lipid panel with direct LDL - Serum or Plasma", "Lipid panel"),
        component=[
            {
                "code": _loinc("2093-3", "Cholesterol [Mass/volume] in Serum or Plasma"),
                "valueQuantity": _q(212, "mg/dL"),
                "interpretation": [{"coding": [{"system": _R4_INTERP, "code": "H"}]}],
                "referenceRange": [{"high": _q(200, "mg/dL"), "text": "<200 mg/dL"}],
            },
            {
                "code": _loinc("2085-9", "Cholesterol in HDL [Mass/volume] in Serum or Plasma"),
                "valueQuantity": _q(58, "mg/dL"),
                "referenceRange": [{"low": _q(40, "mg/dL")}],
            },
            {
                "code": _loinc("2571-8", "Triglyceride [Mass/volume] in Serum or Plasma"),
                "valueQuantity": _q(110, "mg/dL"),
                "referenceRange": [{"high": _q(150, "mg/dL")}],
            },
        ],
    )
    hbsag = _r4_obs(
        _uuid("r4-hbsag"),
        t2,
        _loinc("5196-1", "Hepatitis B virus surface Ag [Presence] in Serum", "HBsAg"),
        valueCodeableConcept={
            "coding": [{"system": "http://snomed.info/sct", "code": "260385009"}],
            "text": "Not detected",
        },
        referenceRange=[{"text": "Not detected"}],
    )
    vitamin_d = _r4_obs(
        _uuid("r4-vitd"),
        t2,
        _loinc("62292-8", "25-Hydroxyvitamin D2+D3 [Mass/volume] in Serum or Plasma", "Vit D"),
        valueQuantity=_q(28, "ng/mL"),
    )
    crp = _r4_obs(
        _uuid("r4-crp"),
        t2,
        _loinc("1988-5", "C reactive protein [Mass/volume] in Serum or Plasma", "CRP"),
        valueQuantity={**_q(0.5, "mg/L"), "comparator": "<"},
        referenceRange=[{"high": _q(5, "mg/L")}],
    )
    weight = {
        **_r4_obs(_uuid("r4-weight"), t2, _loinc("29463-7", "Body weight")),
        "category": [{"coding": [{"system": _R4_CAT, "code": "vital-signs"}]}],
        "valueQuantity": _q(68.2, "kg"),
    }
    allergy = {
        "resourceType": "AllergyIntolerance",
        "id": _uuid("allergy"),
        "patient": {"reference": "Patient/apple-1"},
        "code": {"text": "Pollen"},
    }
    resources = [dstu2_ferritin, r4_ferritin, panel, hbsag, vitamin_d, crp, weight, allergy]
    members = {
        f"{_CLINICAL}/{r['resourceType']}-{r['id']}.json": json.dumps(r, indent=1).encode()
        for r in resources
    }
    return ClinicalSet(members, lab_rows=2 + 3 + 3, skipped=2)


def add_members(zip_path: Path, members: dict[str, bytes]) -> Path:
    """Append members to an existing export zip (a fixed date keeps the bytes reproducible)."""
    with zipfile.ZipFile(zip_path, "a") as zf:
        for name, data in members.items():
            info = zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
    return zip_path


LAB_CSV_HEADER = "date,code,name,value,unit,low,high,interpretation,specimen"


def write_lab_csv(path: Path, first: date) -> Path:
    """A home-kit/lab sheet in the documented layout (``ingest.formats.lab_csv``)."""
    d2 = first + timedelta(days=1)
    lines = [
        LAB_CSV_HEADER,
        f"{first}T07:10:00+01:00,2276-4,Ferritin,38,ng/mL,30,400,N,serum",
        f"{first}T07:10:00+01:00,3016-3,TSH,4.9,m[IU]/L,0.4,4.0,H,serum",
        f"{first}T22:45:00+01:00,,Cortisol (saliva),3.1,nmol/L,,,,saliva",
        f"{d2}T07:05:00+01:00,,Cortisol (saliva),14.6,nmol/L,,,,saliva",
        f"{d2},5196-1,HBsAg,negative,,,,,serum",
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


__all__ = ["ClinicalSet", "add_members", "apple_clinical_records", "write_lab_csv"]
