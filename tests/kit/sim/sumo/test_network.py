from __future__ import annotations

from kit.sim.sumo.network import build_network


def test_network_is_built_once_from_the_sources(tmp_path):
    first = build_network(tmp_path)
    mtime = first.stat().st_mtime_ns
    again = build_network(tmp_path)
    assert again == first and again.stat().st_mtime_ns == mtime
    text = first.read_text()
    assert '<tlLogic id="C"' in text
    assert text.count('function="crossing"') == 2  # the kit's crossing, on both sides of the junction
