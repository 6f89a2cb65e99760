"""The knowledge checks of every lab, kept out of the notebooks so that a lab shows the questions, not the answers.

Each lab's check is data: a tuple of questions made by :func:`choice` and :func:`number`. In a choice the right
option is marked where it stands with :func:`right` (its text is written once), and a wrong option that is a
common misreading can carry a hint with :func:`wrong`. Every question is answerable from its lab's own text.

>>> from course.knowledge import quiz
>>> print(quiz("00").check({"seed": "the same queue, car for car"}).splitlines()[0])
lab 00: 1 of 3 right
"""

from __future__ import annotations

from collections.abc import Sequence

from course.quiz import Question, Quiz, QuizError


class _Option(str):
    """An option's text, knowing whether it is the right one and what to say to whoever picks it."""

    is_right: bool = False
    hint: str = ""


def right(text: str) -> str:
    """Marks the right option of a :func:`choice`."""
    option = _Option(text)
    option.is_right = True
    return option


def wrong(text: str, hint: str) -> str:
    """A wrong option with the hint shown to whoever picks it."""
    option = _Option(text)
    option.hint = hint
    return option


def choice(key: str, text: str, options: Sequence[str], *, why: str = "", points: float = 1.0) -> Question:
    """A multiple-choice question: exactly one option is marked with :func:`right`."""
    marked = [o for o in options if getattr(o, "is_right", False)]
    if len(marked) != 1:
        raise QuizError(f"question {key!r}: mark exactly one option with right(...), found {len(marked)}")
    hints = {str(o): o.hint for o in options if getattr(o, "hint", "")}
    options = tuple(str(o) for o in options)
    return Question(key, text, "choice", str(marked[0]), options, why=why, hints=hints, points=points)


def number(
    key: str, text: str, answer: float, *, tolerance: float = 0.0, why: str = "", points: float = 1.0
) -> Question:
    """A numeric question, right within ``tolerance`` of ``answer``."""
    return Question(key, text, "number", answer, tolerance=float(tolerance), why=why, points=points)


CHECKS: dict[str, tuple[Question, ...]] = {
    "00": (
        choice(
            "factory",
            "On a laptop (not a Pi) with no GPIOZERO_PIN_FACTORY set, what does Board() drive?",
            [
                "the laptop's own GPIO pins",
                right("gpiozero's mock pins, wired to a simulated intersection"),
                "nothing: it raises an error",
            ],
            why="the kit picks mock pins off a Pi and connects them to kit.sim's world; the devices are real gpiozero",
        ),
        choice(
            "seed",
            "Two boards with the same seed, driven the same way, after 5 minutes of red show...",
            [right("the same queue, car for car"), "similar queues", "different queues"],
            why="every random stream of the world comes from the seed: runs are reproducible",
        ),
        number("pin", "On which BCM pin is the car light's red LED? (PINS has it)", 17, why="PINS['car_red'] is 17"),
    ),
    "01": (
        choice(
            "pwm",
            "A PWMLED at value 0.25 is dimmer because...",
            [
                "it gets a quarter of the voltage",
                right("it is on a quarter of each PWM period"),
                "a quarter of its segments light",
            ],
            why="PWM switches fully on and off fast; the duty cycle sets the average brightness",
        ),
        choice(
            "after_red",
            "In the kit's car-light cycle, which phase follows red?",
            ["green", right("red_amber"), "amber"],
            why="red, red_amber, green, amber (the UK sequence)",
        ),
        number("phases", "How many phases does the car-light cycle have?", 4),
    ),
    "02": (
        choice(
            "debounce",
            "Why debounce a push button?",
            [right("its contacts bounce, so one press makes several edges"), "to save energy", "the pin is analogue"],
            why="a mechanical switch chatters for a few ms; debouncing counts one press",
        ),
        choice(
            "events",
            "Compared with polling, events (when_pressed) ...",
            [
                "miss short presses",
                right("wake only when something happens and miss no press"),
                "need a faster processor",
            ],
            why="polling slower than a press lasts misses presses; polling fast wakes the CPU all the time",
        ),
        number(
            "duty",
            "A sensor draws 100 mW for 1 s every 10 s and nothing otherwise: its average power in mW?",
            10,
            tolerance=0.01,
            why="100 mW x 1 s / 10 s",
        ),
    ),
    "03": (
        choice(
            "all_or_nothing",
            "store.params.update({...}) with one value outside its limits...",
            [
                wrong("applies the good values and skips the bad one", "update is all or nothing"),
                right("raises ParameterError and changes nothing"),
                "stores the bad value and logs a warning",
            ],
            why="validate first, then write all or nothing (section 1)",
        ),
        choice(
            "batch",
            "Why does the logger write readings with append_many in batches?",
            [
                right("each commit pays a fixed price (lock, log, publish, wait for the disk): a batch pays it once"),
                "SQLite cannot insert a single row",
                wrong("a batch takes less room on the SD card", "the rows are the same size either way"),
            ],
            why="section 5 measures it: the time per reading falls as the batch grows",
        ),
        number(
            "deleted",
            "A sensor read every 10 s. Retention downsamples one old hour of it: how many raw rows are deleted?",
            360,
            why="6 readings a minute x 60 minutes; prune then adds 60 per-minute means in their place",
        ),
        choice(
            "outbox",
            "Retention runs while the network is down. Old readings still waiting in the outbox are...",
            [
                wrong("downsampled like the others", "the cloud would then get means, not what was measured"),
                right("never pruned: the cloud has not got them yet"),
                "deleted to free the card",
            ],
        ),
        choice(
            "sql",
            "Why do values go into SQL as ? parameters, never pasted into the string?",
            [
                right("a value such as it's cannot break the query, and a malicious one cannot rewrite it"),
                "SQLite refuses literal values",
                "parameters make the file smaller",
            ],
        ),
    ),
    "04": (
        choice(
            "qos1",
            "MQTT QoS 1 delivers each message...",
            ["at most once", right("at least once"), "exactly once"],
            why="QoS 1 retries until acknowledged, so a receiver may see duplicates",
        ),
        choice(
            "idempotent",
            "The device crashes after uploading a batch to S3 but before acknowledging it. The resend...",
            [
                wrong("adds a second copy of the batch", "the key comes from the batch's first outbox id"),
                right("writes the same key and replaces the object"),
                "is refused by S3",
            ],
            why="readings/<device>/<date>/<first outbox id>.jsonl.gz is the same for the same batch",
        ),
        choice(
            "delta",
            "Which part of the device shadow is the device's to-do list?",
            ["desired", "reported", right("delta")],
            why="the cloud computes delta, the difference between desired and reported",
        ),
        number(
            "uploads",
            "The outbox holds 250 readings. drain(store, uploader, batch_size=100) makes how many uploads?",
            3,
            why="100 + 100 + 50: it leases until the outbox is empty",
        ),
        choice(
            "offline",
            "The network is down for an hour. Store-and-forward means the readings...",
            [
                "are lost",
                right("wait in the local store and are sent when the link is back"),
                "block the traffic lights",
            ],
        ),
    ),
    "05": (
        choice(
            "p95",
            "A controller with a deadline per frame cares most about which latency figure?",
            [
                wrong("p50, the median", "half of the calls are slower than the median"),
                right("p95, the slow tail"),
                "the first call",
            ],
            why="the first call is warm-up; p95 tells how slow the bad frames are",
        ),
        choice(
            "names",
            "Why look the model's outputs up by name rather than by position?",
            [
                right("the order of outputs in a .tflite file is not the Keras order"),
                "names are faster",
                "positions change every run",
            ],
        ),
        choice(
            "night",
            "At night the camera model is often confidently wrong. A confidence threshold alone...",
            [
                wrong("fixes it: unsure frames fall back", "the wrong answers are confident, so they pass"),
                right("does not save the controller: trust the camera by the light, or fuse the sensors"),
                "makes it right by day and by night",
            ],
        ),
        number(
            "distance",
            "The ultrasonic sensor reads 0.5 m. What is the fused model's sensor vector at index 0 (distance)?",
            0.25,
            tolerance=1e-6,
            why="distance / 2.0, the sensor's max_distance",
        ),
    ),
    "06": (
        choice(
            "not4x",
            "Why is the small model's int8 file far from 4x smaller than its float32 file?",
            [
                "int8 weights take 2 bytes",
                right("the graph, tensor names and per-channel scales do not shrink"),
                "the converter adds padding",
            ],
        ),
        choice(
            "magnitude",
            "Magnitude pruning 50 % of the weights (zeros, same layers) changes the MACs...",
            ["by half", right("not at all: the zeros are still multiplied"), "by a quarter"],
            why="it shrinks the gzipped file; only structured (filter) pruning removes MACs",
        ),
        number(
            "macs", "MACs of a 1x1 convolution on 8x8 pixels, 4 input channels -> 2 output channels?", 8 * 8 * 4 * 2
        ),
    ),
    "06b": (
        number("bits", "With 16 shared values per layer, how many bits does each weight's index take?", 4),
        choice(
            "ste",
            "The straight-through estimator's gradient for a value that was clipped at the grid's end is...",
            ["1", right("0"), "the rounding error"],
            why="outside the grid the output no longer follows x",
        ),
        choice(
            "xnnpack",
            "Why can an int8 model's outputs differ by one step between two runtimes?",
            [
                right("one requantizes in fixed point, the other through float32"),
                "int8 is random",
                "the weights are stored differently",
            ],
        ),
    ),
    "07": (
        choice(
            "exit",
            "An early-exit model saves time on a frame when...",
            [right("the early head is confident enough to answer"), "the frame is dark", "the model is int8"],
        ),
        choice(
            "threshold",
            "Raising the early exit's threshold...",
            [
                right("lets fewer frames exit: closer to the full model's accuracy, slower"),
                wrong("lets more frames exit: faster", "a frame exits when its top probability reaches the threshold"),
                "changes only the training",
            ],
        ),
        choice(
            "cut",
            "Splitting the model between the Pi and the cloud: where can a cut pay off?",
            [
                right("after a layer that shrinks the data, such as the strided stem (half the frame)"),
                wrong("right after conv1, so the device does little", "conv1's activation is 64x the frame"),
                "anywhere: only the cloud's speed matters",
            ],
            why="what crosses the network is the activation at the cut: early layers often make the data bigger",
        ),
        number("conv1", "After conv1, the activation is how many times the size of the frame?", 64),
        number(
            "captures",
            "Three tasks share one OnePerTick provider for 100 ticks: how many times is the camera read?",
            100,
            why="one capture per tick, whatever the number of tasks (300 if each captured its own)",
        ),
    ),
    "08": (
        choice(
            "drift",
            "Without labels, what does the device watch to notice drift?",
            [
                right("statistics of what the camera sees and how sure the model is"),
                "its accuracy on the day's frames",
                "the model's weights",
            ],
            why="the device cannot see labels, only its inputs and outputs",
        ),
        number("psi", "Above which PSI does the kit call a change 'a major shift'?", 0.25),
        number(
            "alarm",
            "first_alarm([0.1, 0.3, 0.1, 0.3, 0.4], threshold=0.25, patience=2) returns which index?",
            3,
            why="index 1 is a single bad day; 3 starts the first run of two values above 0.25",
        ),
        choice(
            "gce",
            "Why does generalized cross-entropy resist wrong labels?",
            [
                right("its loss is bounded, so a confidently contradicted label cannot pull without limit"),
                "it ignores the labels",
                "it trains on fewer frames",
            ],
        ),
        choice(
            "fedavg",
            "In FedAvg the server...",
            [
                "collects the clients' frames",
                right("averages the clients' model weights, weighted by their examples"),
                "picks the best client's model",
            ],
            why="the frames never leave the devices: only weights travel",
        ),
    ),
    "09": (
        choice(
            "monitor",
            "Whatever controller runs, what must never happen at the signal pins?",
            [
                right("a green for cars and a green for pedestrians at once"),
                "two ambers in a row",
                "a red longer than 60 s",
            ],
        ),
        choice(
            "untrusted",
            "Your trust rule returns None for a frame. The app's queue input then reads...",
            [
                right("only the ultrasonic sensor"),
                "the camera's answer anyway",
                wrong("a long queue, to be safe", "None means: do not use the camera"),
            ],
        ),
        choice(
            "min_green",
            "The minimum green is 10 s. May your controller end the car green at exactly 10 s?",
            [right("yes: ending at exactly the minimum is allowed"), "no: it must be strictly longer", "only at night"],
        ),
        number("ped_p95", "The pedestrians' p95 wait must stay at or below how many seconds, on every day?", 45),
        choice(
            "io",
            "The cloud link is slow. The control loop...",
            ["waits for it", right("never waits for I/O: the cloud link runs on its own worker"), "stops the lights"],
        ),
    ),
    "10": (
        choice(
            "pressure",
            "Max-pressure gives the green to the phase...",
            ["that waited longest", right("whose movements hold the most vehicles"), "chosen at random"],
            why="pressure: vehicles upstream minus downstream",
        ),
        choice(
            "advance",
            "car_green is on; w2c holds 3 vehicles, e2c 2, n2c 1, s2c 1, and 2 pedestrians wait. my_max_pressure returns?",
            [
                wrong("True", "ped_green's pressure is 1 + 1 + 2 = 4, not more than car_green's 5"),
                right("False"),
            ],
            why="advance only when the other phase's pressure is strictly higher",
        ),
        choice(
            "hosted",
            "How does the Pi run the learned policy?",
            [
                right("as an int8 TFLite model hosted by ModelHost, like the camera model"),
                "inside SUMO",
                "as a table of Q-values in the store",
            ],
        ),
        choice(
            "verdict",
            "On the project's whole-day benchmark, the shipped learned policy against actuated control (the best baseline) "
            "has...",
            [
                right(
                    "a few percent less vehicle delay, the pedestrians' p95 wait about the same: short of the 10 % goal"
                ),
                wrong("10 % less vehicle delay or more: the goal is met", "read the table: about 4 %, not 10 %"),
                wrong(
                    "more vehicle delay and less pedestrian waiting",
                    "that was the policy before it saw the cars the camera sees driving in",
                ),
            ],
        ),
        choice(
            "yardstick",
            "The actuated rule fed by the learned policy's own inputs (actuated_kit) has less vehicle delay than the "
            "learned policy, but its pedestrians' p95 wait is about 33 s against the policy's 26 s. What does that say?",
            [
                right(
                    "the two trade the cars against the crossing differently: a controller is judged on both halves of "
                    "the goal, not on vehicle delay alone"
                ),
                wrong("the DQN is useless", "it keeps the crossing as well off as actuated control; the rule does not"),
                wrong("the rule cheats", "it sees exactly what the learned policy sees"),
            ],
            why="compare a learned policy with a rule that sees the same inputs, on every figure the goal names; "
            "given a 19 s limit for the crossing, the same rule (actuated_kit_capped) beats the shipped policy on both "
            "halves, which is the comparison a learned policy must win",
        ),
    ),
}


def quiz(lab: str) -> Quiz:
    """The knowledge check of ``lab`` ("00" ... "10", "06b")."""
    key = str(lab).split("_")[0]
    if key not in CHECKS:
        raise QuizError(f"no knowledge check for lab {lab!r}; labs with one: {sorted(CHECKS)}")
    q = Quiz(f"lab {key}")
    for question in CHECKS[key]:
        q.add(question)
    return q


def labs() -> list[str]:
    """The labs that have a knowledge check."""
    return sorted(CHECKS)
