from __future__ import annotations

import json

import pytest

from kit.store import ParameterError, Store


def test_defaults_until_set_and_values_survive_a_reopen(tmp_path):
    path = tmp_path / "kit.db"
    with Store(path) as store:
        assert store.params.get("car_green_s") == 20.0
        assert store.params.set("car_green_s", 25) == 25.0
        store.params.set("night_mode", "flashing_amber", source="cloud")
    with Store(path) as store:  # the "reboot"
        assert store.params.get("car_green_s") == 25.0
        assert store.params.get("night_mode") == "flashing_amber"
        assert store.params.sources()["night_mode"] == "cloud"
        assert store.params.sources()["ped_green_s"] == "default"


def test_every_declared_parameter_has_a_row_readable_without_the_kit(store):
    rows = {r["name"]: r for r in store.db.query("SELECT name, value, source FROM parameters")}
    assert set(rows) == set(store.params.schema)
    assert rows["device_id"]["value"] == "kit-0001" and rows["device_id"]["source"] == "default"


def test_history_records_source_old_and_new(store):
    store.params.set("ped_green_s", 10, source="lab")
    store.params.set("ped_green_s", 12, source="cloud")
    store.params.set("ped_green_s", 12, source="local")  # unchanged: no history entry
    history = store.params.history("ped_green_s")
    assert [(h["old"], h["new"], h["source"]) for h in history] == [(7.0, 10.0, "lab"), (10.0, 12.0, "cloud")]
    assert history[0]["ts"] <= history[1]["ts"]
    assert [h["new"] for h in store.params.history(limit=1)] == [12.0]


@pytest.mark.parametrize(
    "changes, name, words",
    [
        ({"car_green_s": "fast"}, "car_green_s", ["a number", "between 5 and 120 s", "'fast'"]),
        ({"car_amber_s": 60}, "car_amber_s", ["between 3 and 6 s", "60"]),
        ({"upload_batch_size": 2.5}, "upload_batch_size", ["an integer", "2.5"]),
        ({"buzzer_enabled": "yes"}, "buzzer_enabled", ["true or false"]),
        ({"night_mode": "disco"}, "night_mode", ["'normal', 'flashing_amber'", "'disco'"]),
        ({"device_id": "kit 7; DROP TABLE readings"}, "device_id", ["must match"]),
        ({"car_gren_s": 30}, "car_gren_s", ["unknown parameter", "did you mean car_green_s", "ped_green_s"]),
        ({"min_green_s": 50, "max_green_s": 40}, "min_green_s", ["must not exceed max_green_s"]),
    ],
)
def test_bad_values_raise_naming_the_parameter_and_change_nothing(store, changes, name, words):
    before = store.params.all()
    history_before = store.params.history()
    problems = store.params.validate(changes)
    assert name in problems
    with pytest.raises(ParameterError) as info:
        store.params.update({"car_green_s": 30, **changes}, source="lab")  # a good value alongside the bad one
    assert name in info.value.problems and name in str(info.value)
    for word in words:
        assert word in str(info.value), f"{word!r} missing from {info.value}"
    assert store.params.all() == before and store.params.history() == history_before


def test_cross_parameter_rule_sees_stored_values(store):
    store.params.set("max_green_s", 30)
    with pytest.raises(ParameterError, match="min_green_s must not exceed max_green_s"):
        store.params.set("min_green_s", 40)
    store.params.update({"min_green_s": 40, "max_green_s": 90})  # together: fine
    assert store.params.get("min_green_s") == 40.0


def test_validate_writes_nothing_and_is_empty_when_fine(store):
    assert store.params.validate({"car_green_s": 30, "buzzer_enabled": False}) == {}
    assert store.params.get("car_green_s") == 20.0
    assert "(changes)" in store.params.validate([("car_green_s", 30)])


def test_get_of_an_unknown_name_and_a_bad_source(store):
    with pytest.raises(ParameterError, match="unknown parameter"):
        store.params.get("nope")
    with pytest.raises(ValueError, match="local, cloud, lab"):
        store.params.set("car_green_s", 30, source="hacker")
    assert store.params.get("car_green_s") == 20.0


def test_reset_one_or_all_back_to_defaults_with_history(store):
    store.params.update({"car_green_s": 30, "ped_green_s": 9})
    assert store.params.reset("car_green_s", source="lab") == {"car_green_s": 20.0}
    assert store.params.get("ped_green_s") == 9.0
    assert store.params.reset() == {"ped_green_s": 7.0}
    assert store.params.all() == {n: p.default for n, p in store.params.schema.items()}
    assert store.params.history()[-1]["source"] == "local"
    assert set(store.params.sources().values()) == {"default"}


def test_export_import_round_trip(tmp_path):
    with Store(tmp_path / "a.db") as a, Store(tmp_path / "b.db") as b:
        a.params.update({"car_green_s": 33, "device_id": "kit-0042", "buzzer_enabled": False})
        text = a.params.export_json()
        assert json.loads(text)["device_id"] == "kit-0042"
        changed = b.params.import_json(text, source="cloud")
        assert changed == {"car_green_s": 33.0, "buzzer_enabled": False, "device_id": "kit-0042"}
        assert b.params.all() == a.params.all()
        assert {h["source"] for h in b.params.history()} == {"cloud"}


@pytest.mark.parametrize(
    "text, words",
    [
        ('{"car_green_s": 25,', ["not valid JSON", "line 1"]),
        ("", ["not valid JSON"]),
        ("[1, 2]", ["expected an object", "list"]),
        ('{"car_green_s": 25, "ped_green_s": 1000}', ["ped_green_s", "between 4 and 30 s"]),
        (b"\xff\xfe", ["not valid JSON"]),
    ],
)
def test_bad_imports_raise_clearly_and_change_nothing(store, text, words):
    before = store.params.all()
    with pytest.raises(ParameterError) as info:
        store.params.import_json(text)
    for word in words:
        assert word in str(info.value)
    assert store.params.all() == before and store.params.history() == []


def test_a_newer_default_is_followed_unless_the_value_was_set(tmp_path):
    from kit.store.db import Transaction, connect
    from kit.store.defaults import PARAMETERS
    from kit.store.parameter import Parameter
    from kit.store.params import Params

    path = tmp_path / "kit.db"
    with Store(path) as store:
        store.params.set("ped_green_s", 9)
    newer = dict(PARAMETERS)
    newer["car_green_s"] = Parameter("car_green_s", "float", 22.0, "newer default", unit="s", minimum=5, maximum=120)
    newer["ped_green_s"] = Parameter("ped_green_s", "float", 8.0, "newer default", unit="s", minimum=4, maximum=30)
    db = connect(path)
    params = Params(db, Transaction(db), newer)
    assert params.get("car_green_s") == 22.0  # never set: follows the new default
    assert params.get("ped_green_s") == 9.0  # set by someone: kept
    db.close()
