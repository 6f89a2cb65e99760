from __future__ import annotations

import re
from pathlib import Path

from kit.store.defaults import PARAMETERS, RULES, defaults, markdown_table

DOC = Path(__file__).resolve().parents[3] / "docs" / "storage.md"
CONTRACT = [
    "car_green_s",
    "car_amber_s",
    "car_red_amber_s",
    "all_red_s",
    "ped_green_s",
    "ped_clear_s",
    "min_green_s",
    "max_green_s",
    "queue_threshold_m",
    "queue_hysteresis_m",
    "night_daylight",
    "sample_period_s",
    "upload_batch_size",
    "device_id",
]


def test_every_parameter_in_the_contract_is_declared_with_a_description():
    assert set(CONTRACT) <= set(PARAMETERS)
    for p in PARAMETERS.values():
        assert p.description and re.fullmatch(r"[a-z][a-z0-9_]*", p.name)


def test_the_defaults_satisfy_every_rule():
    values = defaults()
    for _names, ok, message in RULES:
        assert ok(values), message


def test_the_table_in_docs_storage_md_is_generated_from_defaults_py():
    text = DOC.read_text(encoding="utf-8")
    begin, end = "<!-- BEGIN PARAMETERS (generated: python -m kit.store.defaults) -->\n", "<!-- END PARAMETERS -->"
    assert begin in text and end in text, f"{DOC} lost its parameter table markers"
    table = text.split(begin, 1)[1].split(end, 1)[0]
    assert table == markdown_table(), (
        "docs/storage.md's parameter table differs from kit/store/defaults.py; paste the output of "
        "`python -m kit.store.defaults` between the markers"
    )
