from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from kit.store.timestamps import to_epoch, to_iso


def test_every_form_of_time_gives_the_same_epoch_seconds():
    expected = 1792044000.0
    assert to_epoch(expected) == expected
    assert to_epoch(int(expected)) == expected
    assert to_epoch(datetime(2026, 10, 15, 6, 0)) == expected  # naive = UTC
    assert to_epoch(datetime(2026, 10, 15, 8, 0, tzinfo=timezone(timedelta(hours=2)))) == expected
    assert to_epoch("2026-10-15T06:00:00Z") == expected
    assert to_epoch("2026-10-15T06:00:00") == expected
    assert to_iso(expected) == "2026-10-15T06:00:00Z"
    assert to_iso(expected + 0.25) == "2026-10-15T06:00:00.250Z"


@pytest.mark.parametrize("bad", ["yesterday", True, float("nan"), [1]])
def test_bad_times_say_what_to_write(bad):
    with pytest.raises((TypeError, ValueError), match="epoch seconds|ISO"):
        to_epoch(bad, what="ts")
