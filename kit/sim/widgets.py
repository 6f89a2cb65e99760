"""A clickable simulator: buttons and sliders beside the live picture of the intersection.

The world is normally driven from code (``board.world.advance(...)``). In a notebook it helps to poke it by
hand, as you would poke the real kit: press the crossing button, wave at the PIR, send a burst of cars, dim
the daylight, cover the sensors with leaves, open road works, warm the road. Each click changes the world,
lets ``step_s`` seconds of simulated time run (so your callbacks on the pins fire and the lamps answer), and
redraws the picture.

    >>> from kit import Board
    >>> from kit.sim.widgets import Simulator
    >>> board = Board(seed=0)
    >>> board.button.when_pressed = lambda: board.ped_light.green.on()     # your code, as in lab 02
    >>> Simulator(board)                      # the last line of a cell shows the controls  # doctest: +SKIP

Without a notebook front end (a script, a test) the same object works headless: ``sim.press()``,
``sim.wave()``, ``sim.advance(30)``... do what the buttons do, and ``sim.svg`` is the current picture.
ipywidgets is imported only when this module is.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import ipywidgets as w

STEP_CHOICES_S = (1, 5, 30, 60, 300)


class Simulator:
    """Controls for ``board.world`` beside ``board``'s picture; ``display(sim)`` or end a cell with it.

    :param board: a simulated :class:`kit.Board` (``board.world`` is not None).
    :param step_s: simulated seconds each click lets run afterwards (choosable in the panel).
    :param run: what letting time run means, called with the seconds; default ``board.world.advance``. Pass
        your own loop to keep your controller in charge while you click, e.g.
        ``run=lambda seconds: run_lights(machine, board, seconds)``.
    """

    def __init__(self, board: Any, *, step_s: float = 5, run: Callable[[float], Any] | None = None) -> None:
        if getattr(board, "world", None) is None:
            raise ValueError(
                "Simulator needs a simulated board (Board() on a machine that is not a Pi, or "
                "GPIOZERO_PIN_FACTORY=mock); on a Pi, press the real button instead"
            )
        self.board = board
        self.world = board.world
        self.run = run if run is not None else self.world.advance
        self.picture = w.HTML(value=self.svg, layout=w.Layout(flex="0 0 auto"))
        self.status = w.HTML(value=self._status())
        button = w.Button(
            description="Press the button",
            icon="hand-pointer-o",
            button_style="warning",
            tooltip="a pedestrian presses the crossing button",
        )
        wave = w.Button(description="Wave at the PIR", icon="male", tooltip="someone walks up to the kerb")
        cars = w.Button(description="Send 3 cars", icon="car", tooltip="three cars join the queue")
        step = w.Button(description="Run", icon="play", button_style="info", tooltip="let simulated time run")
        self.step_s = w.Dropdown(
            options=[(f"{s} s" if s < 60 else f"{s // 60} min", s) for s in STEP_CHOICES_S],
            value=step_s if step_s in STEP_CHOICES_S else 5,
            description="each click runs",
            style={"description_width": "initial"},
            layout=w.Layout(width="200px"),
        )
        self.traffic = w.FloatSlider(
            value=self.world.traffic, min=0, max=4, step=0.25, description="traffic ×", continuous_update=False
        )
        self.auto_daylight = w.Checkbox(
            value=self.world.daylight_override is None, description="sun and clouds", indent=False
        )
        self.daylight = w.FloatSlider(
            value=self.world.daylight,
            min=0,
            max=1,
            step=0.05,
            description="daylight",
            continuous_update=False,
            disabled=self.world.daylight_override is None,
        )
        self.leaves = w.FloatSlider(
            value=self.world.leaf_cover, min=0, max=1, step=0.05, description="leaves", continuous_update=False
        )
        self.road_works = w.ToggleButton(value=self.world.road_works, description="Road works", icon="wrench")
        self.temperature = w.FloatSlider(
            value=self.world.temperature_offset_c,
            min=-15,
            max=25,
            step=1,
            description="road +°C",
            continuous_update=False,
        )
        button.on_click(lambda _: self.press())
        wave.on_click(lambda _: self.wave())
        cars.on_click(lambda _: self.add_cars(3))
        step.on_click(lambda _: self.advance())
        self.traffic.observe(lambda change: self._set(self.world.set_traffic, change["new"]), names="value")
        self.auto_daylight.observe(self._daylight_mode, names="value")
        self.daylight.observe(lambda change: self._set(self._fix_daylight, change["new"]), names="value")
        self.leaves.observe(lambda change: self._set(setattr, self.world, "leaf_cover", change["new"]), names="value")
        self.road_works.observe(
            lambda change: self._set(setattr, self.world, "road_works", change["new"]), names="value"
        )
        self.temperature.observe(
            lambda change: self._set(setattr, self.world, "temperature_offset_c", change["new"]), names="value"
        )
        self.buttons = {"press": button, "wave": wave, "cars": cars, "run": step}
        panel = w.VBox(
            [
                w.HBox([button, wave]),
                w.HBox([cars, step]),
                self.step_s,
                self.traffic,
                w.HBox([self.auto_daylight]),
                self.daylight,
                self.leaves,
                self.road_works,
                self.temperature,
                self.status,
            ],
            layout=w.Layout(width="360px", margin="0 0 0 12px"),
        )
        for slider in (self.traffic, self.daylight, self.leaves, self.temperature):
            slider.style.description_width = "70px"
            slider.layout.width = "340px"
        self.widget = w.HBox([self.picture, panel])

    # --- what the buttons do (also callable from code and tests) ------------------------------
    def press(self) -> None:
        """A pedestrian presses the crossing button; then ``step_s`` seconds run."""
        self.world.press_button()
        self.advance()

    def wave(self) -> None:
        """Someone walks up to the kerb (the PIR sees them); then ``step_s`` seconds run."""
        self.world.wave()
        self.advance()

    def add_cars(self, n: int = 3) -> None:
        """``n`` cars join the queue; then ``step_s`` seconds run."""
        self.world.add_cars(n)
        self.advance()

    def advance(self, seconds: float | None = None) -> None:
        """Let ``seconds`` (default: the panel's choice) of simulated time run and redraw."""
        seconds = float(self.step_s.value if seconds is None else seconds)
        if seconds > 0:
            self.run(seconds)
        else:
            self.world.advance(0)  # no time passes, but the pins see what changed
        self.refresh()

    def refresh(self) -> None:
        """Redraw the picture and the status line from the world as it is now."""
        self.picture.value = self.svg
        self.status.value = self._status()
        if self.world.daylight_override is None:
            with self.daylight.hold_trait_notifications():
                self.daylight.value = round(self.world.daylight, 2)

    @property
    def svg(self) -> str:
        """The current picture of the intersection (SVG text, as ``board`` shows itself)."""
        return self.board._repr_svg_()

    # --- sliders ------------------------------------------------------------------------------
    def _set(self, setter: Any, *args: Any) -> None:
        setter(*args)
        self.advance(0)

    def _fix_daylight(self, value: float) -> None:
        if not self.auto_daylight.value:
            self.world.daylight_override = float(value)

    def _daylight_mode(self, change: dict) -> None:
        auto = bool(change["new"])
        self.daylight.disabled = auto
        self.world.daylight_override = None if auto else float(self.daylight.value)
        self.advance(0)

    def _status(self) -> str:
        world = self.world
        return (
            f"<small>{world.now:%a %H:%M:%S} · queue {world.queue_length} · waiting "
            f"{world.pedestrians_waiting} · light {world.light_level:.2f} · road "
            f"{world.road_temperature_c:.1f} °C</small>"
        )

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)
