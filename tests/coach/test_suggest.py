"""Suggestion rules: each fires on a constructed week and stays silent on a steady one."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta

import polars as pl
import pytest

from tests.coach.gold import WEEK, change, in_week, steady_person
from tunewell.coach import suggest as sg
from tunewell.coach.week import PersonData

Perturb = Callable[[PersonData], PersonData]


def _n(d: PersonData, col: str, v, days=None) -> PersonData:
    vals = v if days is None else {in_week(i): v for i in days}
    return replace(d, nights=change(d.nights, col, vals, "sleep_date"))


def _s(d: PersonData, col: str, v, days=None) -> PersonData:
    vals = v if days is None else {in_week(i): v for i in days}
    return replace(d, scores=change(d.scores, col, vals, "sleep_date"))


def _l(d: PersonData, col: str, v, days=None) -> PersonData:
    vals = v if days is None else {in_week(i): v for i in days}
    return replace(d, load=change(d.load, col, vals, "date"))


def _little(d):
    for c in ("sleep_ok", "hrv_ok"):
        d = _n(d, c, False, (1, 2, 4, 5))
    return _n(d, "tst_min", None, (1, 2, 4, 5))


def _spike(d):
    return _s(_l(d, "acwr", 1.7, (3,)), "balance_index", -25.0)


def _overreach(d):
    d = _s(
        _s(d, "balance_state", "inhibition-leaning", (2, 4, 6)), "balance_index", 25.0, (2, 4, 6)
    )
    return _l(d, "acwr", 1.4, (5,))


def _arousal(d):
    d = _s(d, "balance_state", "arousal-leaning", (3, 6))
    return _s(d, "balance_index", -30.0, (3, 6))


def _hrv(d):
    return _n(_n(d, "ln_rmssd_b7", 3.9, (5, 6)), "ln_rmssd_cv7", 3.0)


def _latency(d):
    return _n(_s(d, "flag_long_latency", True, (1, 4)), "sol_min", 45.0, (1, 4))


def _fragmented(d):
    return _n(_s(d, "flag_fragmented", True, (0, 2, 4)), "waso_min", 40.0, (0, 2, 4))


FIRES: dict[str, Perturb] = {
    "too_little_data": _little,
    "load_spike_low_balance": _spike,
    "short_sleep_need": lambda d: _n(d, "tst_min", 380.0),
    "overreaching_check": _overreach,
    "arousal_balance": _arousal,
    "hrv_falling_cv_rising": _hrv,
    "short_sleep_norm": lambda d: _n(d, "tst_min_b7", 440.0, (6,)),
    "irregular_timing": lambda d: _n(d, "sri", 70.0),
    "long_latency": _latency,
    "fragmented_sleep": _fragmented,
    "late_midpoint_drift": lambda d: _n(d, "midpoint_h_b7", 27.6, (6,)),
}


def test_every_registered_rule_has_a_firing_case():
    assert set(FIRES) == set(sg.REGISTRY), "add a constructed week for each new rule"
    assert len(sg.RULES) >= 7


@pytest.mark.parametrize("rule_id", sorted(sg.REGISTRY))
def test_rule_fires_on_its_week_and_is_silent_on_a_steady_one(rule_id):
    rule = sg.REGISTRY[rule_id]
    steady = steady_person()
    assert sg.fire(rule, steady, WEEK) is None
    changed = FIRES[rule_id](steady)
    ev = sg.fire(rule, changed, WEEK)
    assert ev is not None
    assert ev.reference and ev.value_text
    assert rule.source.startswith("METRICS.md") and rule.threshold
    got = sg.suggest(changed)
    mine = [s for s in got if s.rule_id == rule_id]
    assert mine, [s.rule_id for s in got]
    s = mine[0]
    assert s.metric == rule.metric and s.source == rule.source
    assert s.value == ev.value and s.reference in s.text
    assert ev.value_text in s.text
    assert "{" not in s.text and "}" not in s.text  # template fully formatted


def test_steady_week_gets_the_keep_doing_line():
    d = steady_person()
    assert sg.suggest(d) == []
    line = sg.keep_doing(d)
    assert line.startswith("Keep doing") and "7 h 45 min" in line and "88" in line


def test_rules_needing_scores_stay_silent_without_them():
    d = steady_person(scores=False)
    for rule_id, perturb in FIRES.items():
        rule = sg.REGISTRY[rule_id]
        if rule.needs_scores:
            changed = perturb(steady_person())
            bare = replace(changed, scores=d.scores)
            assert sg.fire(rule, bare, WEEK) is None, rule_id


def test_cap_of_three_highest_priority_first():
    d = steady_person()
    for f in FIRES.values():
        d = f(d)
    got = sg.suggest(d)
    assert len(got) == sg.MAX_SUGGESTIONS
    prios = [s.priority for s in got]
    assert prios == sorted(prios, reverse=True)
    top = sorted((r.priority for r in sg.RULES), reverse=True)[:3]
    assert prios == top


def test_norm_rule_yields_to_the_need_rule():
    d = steady_person()
    d = _n(_n(d, "tst_min", 380.0), "tst_min_b7", 380.0, (6,))
    ids = [s.rule_id for s in sg.suggest(d)]
    assert "short_sleep_need" in ids and "short_sleep_norm" not in ids


def test_three_weeks_out_of_range_points_to_a_professional():
    d = steady_person()
    one = sg.suggest(_n(d, "sri", 70.0))
    assert one[0].weeks_out_of_range == 1 and "professional" not in one[0].text
    three = d
    for k in range(3):
        wk = WEEK.shift(-k)
        vals = {wk.monday + timedelta(days=i): 70.0 for i in range(7)}
        three = replace(three, nights=change(three.nights, "sri", vals, "sleep_date"))
    s = sg.suggest(three)[0]
    assert s.rule_id == "irregular_timing" and s.weeks_out_of_range == 3
    assert "qualified professional" in s.text


def test_suggestions_json_carries_the_evidence():
    got = sg.suggest(_n(steady_person(), "tst_min", 380.0))
    rows = json.loads(sg.suggestions_json(got))
    for r in rows:
        for k in ("rule_id", "metric", "value", "reference", "source", "text"):
            assert r[k] not in (None, ""), k


FORBIDDEN = re.compile(
    r"diagnos|medic|supplement|\bdos(e|es|age|ing)\b|prescri|\bdrug|pill|treat|therap|disease|"
    r"disorder|insomnia|apn(o)?ea|melatonin|cure",
    re.IGNORECASE,
)


def forbidden_words(text: str) -> list[str]:
    return [m.group(0) for m in FORBIDDEN.finditer(text.replace(sg.DISCLAIMER, ""))]


def test_no_forbidden_words_in_any_rule_output():
    texts = [sg.keep_doing(steady_person()), sg.PROFESSIONAL.format(n=3)]
    for rule_id, f in FIRES.items():
        texts += [s.text for s in sg.suggest(f(steady_person()))]
        r = sg.REGISTRY[rule_id]
        texts += [r.template, r.threshold, r.source, r.metric]
    for t in texts:
        assert not forbidden_words(t), (forbidden_words(t), t)
    # and the checker itself catches them
    assert forbidden_words("a supplement dose")
    assert forbidden_words(sg.DISCLAIMER) == []
    assert FORBIDDEN.search(sg.DISCLAIMER)


def test_a_device_that_never_records_hrv_is_not_told_to_wear_it_more():
    d = steady_person()
    no_hrv = replace(d, nights=d.nights.with_columns(hrv_ok=pl.lit(False), ln_rmssd=None))
    assert sg.fire(sg.REGISTRY["too_little_data"], no_hrv, WEEK) is None
    lost = _n(d, "hrv_ok", False, range(7))  # recorded before, not this week: worth saying
    ev = sg.fire(sg.REGISTRY["too_little_data"], lost, WEEK)
    assert ev is not None and ev.fields["what"] == "heart-rate variability"
