"""The smoke run's numbers are the recorded ones (tests/spine/smoke_numbers.json).

Changes to the job layer — specs, set-up, tracking, how a rule passes its settings — must move no
number. The record was made by `python -m tests.helpers.smoke_numbers` on the smoke run of the
commit before the job contract landed; re-record only when a change is meant to move numbers.
"""
import json
import math
from pathlib import Path

from tests.helpers.smoke_numbers import record

RECORD = Path(__file__).with_name("smoke_numbers.json")


def differences(recorded: dict, now: dict) -> list[str]:
    out = []
    for section in sorted(set(recorded) | set(now)):
        old, new = recorded.get(section, {}), now.get(section, {})
        out += [f"{section}: {k} is gone" for k in sorted(set(old) - set(new))]
        out += [f"{section}: {k} is new" for k in sorted(set(new) - set(old))]
        for key in sorted(set(old) & set(new)):
            for field in sorted(set(old[key]) | set(new[key])):
                a, b = old[key].get(field), new[key].get(field)
                same = (a == b if not (isinstance(a, float) and isinstance(b, float))
                        else math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12))
                if not same:
                    out.append(f"{section}: {key} {field}: recorded {a!r}, now {b!r}")
    return out


def test_differences_names_every_change():
    old = {"claims": {"a": {"value": 1.0, "verdict": "reproduced"}, "b": {"value": None}}}
    new = {"claims": {"a": {"value": 1.0 + 1e-6, "verdict": "inconclusive"}, "c": {"value": 2.0}}}
    assert differences(old, new) == ["claims: b is gone", "claims: c is new",
                                     "claims: a value: recorded 1.0, now 1.000001",
                                     "claims: a verdict: recorded 'reproduced', now 'inconclusive'"]
    assert differences(old, old) == []


def test_smoke_numbers_are_the_recorded_ones(smoke_run):
    recorded = json.loads(RECORD.read_text())
    now = record(smoke_run)
    assert recorded["claims"] and recorded["curves"], "the record is empty: re-record it from a complete smoke run"
    diffs = differences(recorded, now)
    assert not diffs, f"{len(diffs)} smoke numbers moved:\n" + "\n".join(diffs[:60])
