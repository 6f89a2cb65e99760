"""The knowledge checks of every lab, kept out of the notebooks so that a lab shows the questions, not the answers.

>>> from course.knowledge import quiz
>>> print(quiz("00").check({"seed": "the same queue, car for car"}).splitlines()[0])
lab 00: 1 of 3 right
"""

from __future__ import annotations

from collections.abc import Callable

from course.quiz import Quiz, QuizError


def _lab00(q: Quiz) -> None:
    q.choice(
        "factory",
        "On a laptop (not a Pi) with no GPIOZERO_PIN_FACTORY set, what does Board() drive?",
        [
            "the laptop's own GPIO pins",
            "gpiozero's mock pins, wired to a simulated intersection",
            "nothing: it raises an error",
        ],
        answer="gpiozero's mock pins, wired to a simulated intersection",
        why="the kit picks mock pins off a Pi and connects them to kit.sim's world; the devices are real gpiozero",
    )
    q.choice(
        "seed",
        "Two boards with the same seed, driven the same way, after 5 minutes of red show...",
        ["the same queue, car for car", "similar queues", "different queues"],
        answer="the same queue, car for car",
        why="every random stream of the world comes from the seed: runs are reproducible",
    )
    q.number("pin", "On which BCM pin is the car light's red LED? (PINS has it)", 17, why="PINS['car_red'] is 17")


def _lab01(q: Quiz) -> None:
    q.choice(
        "pwm",
        "A PWMLED at value 0.25 is dimmer because...",
        [
            "it gets a quarter of the voltage",
            "it is on a quarter of each PWM period",
            "a quarter of its segments light",
        ],
        answer="it is on a quarter of each PWM period",
        why="PWM switches fully on and off fast; the duty cycle sets the average brightness",
    )
    q.choice(
        "after_red",
        "In the kit's car-light cycle, which phase follows red?",
        ["green", "red_amber", "amber"],
        answer="red_amber",
        why="red, red_amber, green, amber (the UK sequence)",
    )
    q.number("phases", "How many phases does the car-light cycle have?", 4)


def _lab02(q: Quiz) -> None:
    q.choice(
        "debounce",
        "Why debounce a push button?",
        ["its contacts bounce, so one press makes several edges", "to save energy", "the pin is analogue"],
        answer="its contacts bounce, so one press makes several edges",
        why="a mechanical switch chatters for a few ms; debouncing counts one press",
    )
    q.choice(
        "events",
        "Compared with polling, events (when_pressed) ...",
        ["miss short presses", "wake only when something happens and miss no press", "need a faster processor"],
        answer="wake only when something happens and miss no press",
        why="polling slower than a press lasts misses presses; polling fast wakes the CPU all the time",
    )
    q.number(
        "duty",
        "A sensor draws 100 mW for 1 s every 10 s and nothing otherwise: its average power in mW?",
        10,
        tolerance=0.01,
        why="100 mW x 1 s / 10 s",
    )


def _lab03(q: Quiz) -> None:
    q.choice(
        "wal",
        "What does SQLite's WAL mode give a device that logs while a dashboard reads?",
        [
            "readers do not block the writer, and the writer does not block readers",
            "the file is encrypted",
            "rows are compressed",
        ],
        answer="readers do not block the writer, and the writer does not block readers",
    )
    q.number("rows", "One reading a minute, kept for 7 days: how many rows does retention keep?", 7 * 24 * 60)
    q.choice(
        "batch",
        "Why insert readings in batches (one transaction for many rows)?",
        [
            "each transaction waits for the disk once: batching writes far fewer syncs",
            "SQLite cannot insert one row",
            "to sort the rows",
        ],
        answer="each transaction waits for the disk once: batching writes far fewer syncs",
    )


def _lab04(q: Quiz) -> None:
    q.choice(
        "qos1",
        "MQTT QoS 1 delivers each message...",
        ["at most once", "at least once", "exactly once"],
        answer="at least once",
        why="QoS 1 retries until acknowledged, so a receiver may see duplicates",
    )
    q.choice(
        "idempotent",
        "Why does an upload use a key derived from the batch (idempotent)?",
        [
            "a retry after a timeout overwrites the same object instead of making a duplicate",
            "S3 requires it",
            "it makes uploads faster",
        ],
        answer="a retry after a timeout overwrites the same object instead of making a duplicate",
    )
    q.choice(
        "offline",
        "The network is down for an hour. Store-and-forward means the readings...",
        ["are lost", "wait in the local store and are sent when the link is back", "block the traffic lights"],
        answer="wait in the local store and are sent when the link is back",
    )


def _lab05(q: Quiz) -> None:
    q.choice(
        "p50",
        "What is p50 latency?",
        ["the mean", "the median: half the calls were faster", "the slowest 50 calls"],
        answer="the median: half the calls were faster",
    )
    q.number(
        "frame_ms", "A camera at 30 frames per second leaves how many milliseconds per frame?", 1000 / 30, tolerance=0.5
    )
    q.choice(
        "names",
        "Why look model outputs up by name rather than by position?",
        [
            "the order of outputs in a .tflite file is not the Keras order",
            "names are faster",
            "positions change every run",
        ],
        answer="the order of outputs in a .tflite file is not the Keras order",
    )


def _lab06(q: Quiz) -> None:
    q.choice(
        "not4x",
        "Why is the small model's int8 file far from 4x smaller than its float32 file?",
        [
            "int8 weights take 2 bytes",
            "the graph, tensor names and per-channel scales do not shrink",
            "the converter adds padding",
        ],
        answer="the graph, tensor names and per-channel scales do not shrink",
    )
    q.choice(
        "magnitude",
        "Magnitude pruning 50 % of the weights (zeros, same layers) changes the MACs...",
        ["by half", "not at all: the zeros are still multiplied", "by a quarter"],
        answer="not at all: the zeros are still multiplied",
        why="it shrinks the gzipped file; only structured (filter) pruning removes MACs",
    )
    q.number("macs", "MACs of a 1x1 convolution on 8x8 pixels, 4 input channels -> 2 output channels?", 8 * 8 * 4 * 2)


def _lab06b(q: Quiz) -> None:
    q.number("bits", "With 16 shared values per layer, how many bits does each weight's index take?", 4)
    q.choice(
        "ste",
        "The straight-through estimator's gradient for a value that was clipped at the grid's end is...",
        ["1", "0", "the rounding error"],
        answer="0",
        why="outside the grid the output no longer follows x",
    )
    q.choice(
        "xnnpack",
        "Why can an int8 model's outputs differ by one step between two runtimes?",
        [
            "one requantizes in fixed point, the other through float32",
            "int8 is random",
            "the weights are stored differently",
        ],
        answer="one requantizes in fixed point, the other through float32",
    )


def _lab07(q: Quiz) -> None:
    q.choice(
        "exit",
        "An early-exit model saves time on a frame when...",
        ["the early head is confident enough to answer", "the frame is dark", "the model is int8"],
        answer="the early head is confident enough to answer",
    )
    q.choice(
        "split",
        "Where is a good place to split a model between the Pi and the cloud?",
        [
            "after a layer whose output is small, so little has to be sent",
            "always after the first layer",
            "always before the last layer",
        ],
        answer="after a layer whose output is small, so little has to be sent",
    )


def _lab08(q: Quiz) -> None:
    q.choice(
        "fedavg",
        "In FedAvg the server...",
        [
            "collects the clients' frames",
            "averages the clients' model weights, weighted by their examples",
            "picks the best client's model",
        ],
        answer="averages the clients' model weights, weighted by their examples",
        why="the frames never leave the devices: only weights travel",
    )
    q.choice(
        "drift",
        "Drift means...",
        [
            "the model's weights change by themselves",
            "the inputs the model sees no longer look like its training data",
            "the clock runs fast",
        ],
        answer="the inputs the model sees no longer look like its training data",
    )


def _lab09(q: Quiz) -> None:
    q.choice(
        "monitor",
        "Whatever controller runs, what must never happen at the signal pins?",
        ["a green for cars and a green for pedestrians at once", "two ambers in a row", "a red longer than 60 s"],
        answer="a green for cars and a green for pedestrians at once",
    )
    q.choice(
        "io",
        "The cloud link is slow. The control loop...",
        ["waits for it", "never waits for I/O: uploads run in their own worker", "stops the lights"],
        answer="never waits for I/O: uploads run in their own worker",
    )


def _lab10(q: Quiz) -> None:
    q.choice(
        "pressure",
        "Max-pressure gives the green to the phase...",
        ["that waited longest", "whose movements hold the most vehicles", "chosen at random"],
        answer="whose movements hold the most vehicles",
        why="pressure: vehicles upstream minus downstream",
    )
    q.choice(
        "int8",
        "Why export the learned policy to int8 before hosting it on the Pi?",
        ["a smaller file and integer arithmetic, like the camera model", "RL needs integers", "SUMO reads only int8"],
        answer="a smaller file and integer arithmetic, like the camera model",
    )


_LABS: dict[str, Callable[[Quiz], None]] = {
    "00": _lab00,
    "01": _lab01,
    "02": _lab02,
    "03": _lab03,
    "04": _lab04,
    "05": _lab05,
    "06": _lab06,
    "06b": _lab06b,
    "07": _lab07,
    "08": _lab08,
    "09": _lab09,
    "10": _lab10,
}


def quiz(lab: str) -> Quiz:
    """The knowledge check of ``lab`` ("00" ... "09", "06b")."""
    key = str(lab).split("_")[0]
    if key not in _LABS:
        raise QuizError(f"no knowledge check for lab {lab!r}; labs with one: {sorted(_LABS)}")
    q = Quiz(f"lab {key}")
    _LABS[key](q)
    return q


def labs() -> list[str]:
    """The labs that have a knowledge check."""
    return sorted(_LABS)
