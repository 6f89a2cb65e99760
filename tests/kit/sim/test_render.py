from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from kit.board import Board
from kit.sim.render import render_svg
from kit.sim.world import World

NS = {"svg": "http://www.w3.org/2000/svg"}


def _parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    return root


def _lit(root: ET.Element) -> set[str]:
    return {c.get("id") for c in root.iter("{http://www.w3.org/2000/svg}circle") if c.get("data-lit") == "1"}


def _count(root: ET.Element, element_id: str) -> int:
    return int(root.find(f".//*[@id='{element_id}']").get("data-count"))


@pytest.mark.parametrize(
    "car, ped, lamps",
    [
        ("red", "green", {"car-red", "ped-green"}),
        ("red_amber", "red", {"car-red", "car-amber", "ped-red"}),
        ("green", "red", {"car-green", "ped-red"}),
        ("amber", "off", {"car-amber"}),
        ("off", "off", set()),
    ],
)
def test_lit_lamps(car, ped, lamps):
    world = World(seed=0, start="2026-10-15T12:00:00")
    world.set_lights(car=car, ped=ped)
    assert _lit(_parse(world._repr_svg_())) == lamps


def test_queue_pedestrians_and_caption():
    world = World(seed=0, start="2026-10-15T08:00:00")
    world.set_lights(car="red", ped="red")
    world.advance(minutes=3)
    root = _parse(render_svg(world))
    assert _count(root, "queue") == world.queue_length > 8
    assert _count(root, "pedestrians-waiting") == world.pedestrians_waiting
    cars = root.findall(".//svg:g[@id='queue']/svg:rect", NS)
    assert len(cars) == 8  # the rest are written as +N
    text = "".join(root.itertext())
    assert f"+{world.queue_length - 8} more" in text and "08:03" in text


def test_night_is_darker_than_day():
    def sky(start: str) -> str:
        root = _parse(render_svg(World(start=start)))
        return root.find(".//*[@id='sky']").get("fill")

    day, night = sky("2026-10-15T12:00:00"), sky("2026-10-15T02:00:00")
    assert sum(int(day[i : i + 2], 16) for i in (1, 3, 5)) > 2 * sum(int(night[i : i + 2], 16) for i in (1, 3, 5))


def test_leaves_and_road_works():
    plain = _parse(render_svg(World()))
    autumn = _parse(render_svg(World(leaves=0.5, road_works=True)))
    assert len(plain.findall(".//svg:g[@id='leaves']/svg:ellipse", NS)) == 0
    assert len(autumn.findall(".//svg:g[@id='leaves']/svg:ellipse", NS)) == 15
    assert plain.find(".//*[@id='road-works']") is None
    assert autumn.find(".//*[@id='road-works']") is not None


def test_same_world_same_picture():
    assert render_svg(World(seed=4, leaves=0.3)) == render_svg(World(seed=4, leaves=0.3))


def test_board_svg_shows_pwm_brightness(mock_factory):
    with Board(pin_factory=mock_factory) as board:
        board.car_light.amber.value = 0.5
        board.ped_light.red.on()
        root = _parse(board._repr_svg_())
        assert _lit(root) == {"car-amber", "ped-red"}
    assert "board closed" in board._repr_svg_()


def test_picture_without_a_world():
    root = _parse(render_svg(None, lamps={"car_green": 1.0}))
    assert _lit(root) == {"car-green"}
