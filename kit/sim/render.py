"""Pictures of the intersection as SVG: what a notebook shows for a ``Board`` or a ``World``.

The picture shows the approach lane with its queue of cars, the stop line and the zebra crossing,
the car and pedestrian lights (lit lamps glow), pedestrians waiting and crossing, the sky by
daylight, leaves on the sensors and cones for road works. Every lamp carries ``data-lit`` so that
tests (and curious students) can read the picture.

    >>> from kit.sim.world import World
    >>> from kit.sim.render import render_svg
    >>> world = World(seed=0, start="2026-10-15T12:00:00")
    >>> world.set_lights(car="green", ped="red")
    >>> svg = render_svg(world)
    >>> svg.startswith("<svg") and 'id="car-green" data-lit="1"' in svg
    True
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any
from xml.sax.saxutils import escape

WIDTH, HEIGHT = 520, 300
STOP_X = 360  # stop line
ROAD_Y, ROAD_H = 150, 70
CAR_W, CAR_GAP = 34, 8
MAX_DRAWN = 8  # the lane in the picture holds this many cars; more are written as "+N"

LAMP_COLOURS = {
    "car_red": ("#ff2a1a", "#4a1410"),
    "car_amber": ("#ffb000", "#4a3a10"),
    "car_green": ("#22e05a", "#0f3a1c"),
    "ped_red": ("#ff2a1a", "#4a1410"),
    "ped_green": ("#22e05a", "#0f3a1c"),
}
CAR_LAMPS = {
    "red": {"car_red": 1.0},
    "red_amber": {"car_red": 1.0, "car_amber": 1.0},
    "green": {"car_green": 1.0},
    "amber": {"car_amber": 1.0},
    "invalid": {"car_red": 1.0, "car_green": 1.0},
    "off": {},
}
PED_LAMPS = {
    "red": {"ped_red": 1.0},
    "green": {"ped_green": 1.0},
    "invalid": {"ped_red": 1.0, "ped_green": 1.0},
    "off": {},
}


def _mix(a: str, b: str, t: float) -> str:
    """Colour between a and b (hex), t from 0 (a) to 1 (b)."""
    t = min(max(t, 0.0), 1.0)
    ca = [int(a[i : i + 2], 16) for i in (1, 3, 5)]
    cb = [int(b[i : i + 2], 16) for i in (1, 3, 5)]
    return "#" + "".join(f"{round(x + (y - x) * t):02x}" for x, y in zip(ca, cb))


def lamps_from_world(world: Any) -> dict[str, float]:
    """Lamp brightness (0..1) implied by the world's light states."""
    lamps = dict.fromkeys(LAMP_COLOURS, 0.0)
    lamps.update(CAR_LAMPS.get(world.car_light_state(), {}))
    lamps.update(PED_LAMPS.get(world.ped_light_state(), {}))
    return lamps


def lamps_from_board(board: Any) -> dict[str, float]:
    """Lamp brightness (0..1) read from a board's light devices (PWM brightness included)."""
    return {
        "car_red": float(board.car_light.red.value),
        "car_amber": float(board.car_light.amber.value),
        "car_green": float(board.car_light.green.value),
        "ped_red": float(board.ped_light.red.value),
        "ped_green": float(board.ped_light.green.value),
    }


def _lamp(out: list[str], name: str, x: float, y: float, r: float, level: float) -> None:
    on, off = LAMP_COLOURS[name]
    fill = _mix(off, on, level)
    lit = int(level > 0)
    out.append(f'<circle id="{name.replace("_", "-")}" data-lit="{lit}" cx="{x}" cy="{y}" r="{r}" fill="{fill}"/>')
    if lit:
        out.append(f'<circle cx="{x}" cy="{y}" r="{r + 5}" fill="{on}" opacity="{0.35 * level:.2f}"/>')


def _person(out: list[str], x: float, y: float, colour: str, cls: str) -> None:
    out.append(
        f'<g class="{cls}"><circle cx="{x}" cy="{y - 16}" r="4" fill="{colour}"/>'
        f'<rect x="{x - 3}" y="{y - 12}" width="6" height="12" rx="2" fill="{colour}"/></g>'
    )


def render_svg(world: Any = None, *, lamps: Mapping[str, float] | None = None, title: str | None = None) -> str:
    """An SVG picture of the intersection. ``world`` may be None (a real board: lights only)."""
    if lamps is None:
        lamps = lamps_from_world(world) if world is not None else dict.fromkeys(LAMP_COLOURS, 0.0)
    daylight = world.daylight if world is not None else 1.0
    out: list[str] = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">'
    ]
    sky = _mix("#0b1630", "#9fd3f5", daylight)
    grass = _mix("#0f2412", "#6fae5b", daylight)
    road = _mix("#1c1c1f", "#5a5a60", daylight)
    out.append(f'<rect id="sky" data-daylight="{daylight:.3f}" width="{WIDTH}" height="{HEIGHT}" fill="{sky}"/>')
    out.append(f'<rect y="{ROAD_Y - 40}" width="{WIDTH}" height="{HEIGHT - ROAD_Y + 40}" fill="{grass}"/>')
    out.append(f'<rect y="{ROAD_Y}" width="{WIDTH}" height="{ROAD_H}" fill="{road}"/>')
    # zebra crossing just past the stop line
    for i in range(6):
        out.append(f'<rect x="{STOP_X + 12}" y="{ROAD_Y + 4 + i * 11}" width="38" height="6" fill="#e8e8e8"/>')
    out.append(f'<rect x="{STOP_X}" y="{ROAD_Y}" width="4" height="{ROAD_H}" fill="#f4f4f4"/>')
    # a street lamp, lit at night
    out.append(f'<rect x="{STOP_X - 62}" y="{ROAD_Y - 62}" width="3" height="62" fill="#444"/>')
    out.append(
        f'<circle cx="{STOP_X - 60}" cy="{ROAD_Y - 62}" r="4" fill="{"#ffe9a8" if daylight < 0.15 else "#888"}"/>'
    )
    if daylight < 0.15:
        out.append(f'<circle cx="{STOP_X - 60}" cy="{ROAD_Y - 50}" r="40" fill="#ffe9a8" opacity="0.2"/>')
    if world is not None:
        _draw_world(out, world)
    # car signal head
    out.append(f'<rect x="{STOP_X - 4}" y="{ROAD_Y - 110}" width="4" height="110" fill="#333"/>')
    out.append(f'<rect x="{STOP_X - 18}" y="{ROAD_Y - 112}" width="32" height="86" rx="6" fill="#111"/>')
    for i, name in enumerate(("car_red", "car_amber", "car_green")):
        _lamp(out, name, STOP_X - 2, ROAD_Y - 97 + i * 27, 10, float(lamps.get(name, 0.0)))
    # pedestrian signal head, across the crossing
    px = STOP_X + 80
    out.append(f'<rect x="{px - 2}" y="{ROAD_Y - 80}" width="4" height="80" fill="#333"/>')
    out.append(f'<rect x="{px - 14}" y="{ROAD_Y - 90}" width="28" height="56" rx="5" fill="#111"/>')
    for i, name in enumerate(("ped_red", "ped_green")):
        _lamp(out, name, px, ROAD_Y - 76 + i * 26, 9, float(lamps.get(name, 0.0)))
    text = title or (_caption(world) if world is not None else "real pins: lights as driven")
    colour = "#111" if daylight > 0.5 else "#eee"
    out.append(f'<text x="10" y="20" fill="{colour}">{escape(text)}</text>')
    out.append("</svg>")
    return "\n".join(out)


def _caption(world: Any) -> str:
    return (
        f"{world.now:%a %d %b %H:%M:%S}  car {world.car_light_state()}  ped {world.ped_light_state()}  "
        f"queue {world.queue_length}  waiting {world.pedestrians_waiting}"
    )


def _draw_world(out: list[str], world: Any) -> None:
    rng = random.Random(f"{world.seed}/render")  # the same leaves and car colours every time
    lane_y = ROAD_Y + ROAD_H / 2 + 4
    n = world.queue_length
    out.append(f'<g id="queue" data-count="{n}">')
    for i in range(min(n, MAX_DRAWN)):
        x = STOP_X - 6 - (i + 1) * (CAR_W + CAR_GAP) + CAR_GAP
        colour = rng.choice(("#c0392b", "#2e86c1", "#f1c40f", "#7f8c8d", "#ecf0f1", "#16a085"))
        out.append(f'<rect class="car" x="{x}" y="{lane_y}" width="{CAR_W}" height="18" rx="4" fill="{colour}"/>')
        if world.daylight < 0.3:
            out.append(f'<circle cx="{x + CAR_W}" cy="{lane_y + 9}" r="3" fill="#fff6c0"/>')
    if n > MAX_DRAWN:
        out.append(f'<text x="16" y="{lane_y - 6}" fill="#fff">+{n - MAX_DRAWN} more</text>')
    out.append("</g>")
    # ultrasonic sensor at the upstream end of the lane, its beam reaching the queue's tail
    tail = STOP_X - 6 - min(n, MAX_DRAWN) * (CAR_W + CAR_GAP)
    out.append(f'<rect id="ultrasonic" x="2" y="{lane_y + 2}" width="10" height="14" fill="#1f5fa8"/>')
    out.append(
        f'<line x1="12" y1="{lane_y + 9}" x2="{max(14, tail)}" y2="{lane_y + 9}" stroke="#1f5fa8" '
        f'stroke-dasharray="4 4" opacity="0.6"/>'
    )
    waiting, crossing = world.pedestrians_waiting, world.pedestrians_crossing
    out.append(f'<g id="pedestrians-waiting" data-count="{waiting}">')
    for i in range(min(waiting, 10)):
        _person(out, STOP_X + 16 + (i % 5) * 8, ROAD_Y - 6 - (i // 5) * 10, "#ffcc66", "pedestrian waiting")
    out.append("</g>")
    out.append(f'<g id="pedestrians-crossing" data-count="{crossing}">')
    for i in range(min(crossing, 6)):
        _person(out, STOP_X + 24 + (i % 3) * 9, ROAD_Y + 22 + (i // 3) * 24, "#ffcc66", "pedestrian crossing")
    out.append("</g>")
    if world.road_works:
        out.append('<g id="road-works">')
        for i in range(4):
            x = 120 + i * 40
            out.append(
                f'<polygon points="{x},{ROAD_Y + 14} {x - 6},{ROAD_Y + 30} {x + 6},{ROAD_Y + 30}" fill="#ff7a00"/>'
            )
        out.append("</g>")
    cover = world.leaf_cover
    out.append(f'<g id="leaves" data-cover="{cover:.2f}">')
    for _ in range(round(cover * 30)):
        x, y = rng.uniform(0, WIDTH), rng.uniform(0, HEIGHT)
        angle = rng.uniform(0, 180)
        colour = rng.choice(("#b5651d", "#d2691e", "#8b4513", "#cc8400"))
        out.append(
            f'<ellipse cx="{x:.1f}" cy="{y:.1f}" rx="9" ry="4" fill="{colour}" opacity="0.85" '
            f'transform="rotate({angle:.0f} {x:.1f} {y:.1f})"/>'
        )
    out.append("</g>")
