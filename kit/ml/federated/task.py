"""What every intersection trains in the federation: its own frames, a small numpy network, SGD.

Each simulated intersection is a Flower client with its own traffic and seasons, so the data
is not identically distributed (non-IID):

==========  ===============================  =========================================
client      where                            what its camera sees
==========  ===============================  =========================================
0           market square                    busy all day, long queues, daylight
1           park avenue                      tree-lined: autumn leaves on the lens
2           ring road                        mostly driven at night, short queues
3           school lane                      road works, short queues
==========  ===============================  =========================================

The model is a one-hidden-layer network in numpy over a 16×16 thumbnail of the frame. That is
deliberate: a SuperNode on a Raspberry Pi trains it without TensorFlow, and only its weights
(about 8 k numbers, 33 kB) travel to the SuperLink; the frames never leave the intersection.

    >>> from kit.ml.federated.task import Net, client_data
    >>> train, test = client_data(1, num_partitions=4, n=60, seed=0)
    >>> net = Net(seed=0)
    >>> round(net.evaluate(test.x, test.y)["accuracy"], 2) <= 1.0
    True
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kit.ml import robust
from kit.ml.drift import frame_layouts

__all__ = [
    "PROFILES",
    "Profile",
    "ClientData",
    "client_data",
    "features",
    "Net",
    "FRAME_SIZE",
    "THUMB",
]

FRAME_SIZE = 32
THUMB = 16
N_CLASSES = 3  # kit.ml.data.QUEUE_CLASSES: empty, short (1-3 cars), long (>= 4)


@dataclass(frozen=True)
class Profile:
    """Where an intersection is: its traffic (share of empty/short/long queues) and its conditions.

    >>> PROFILES[2].name, PROFILES[2].daylight
    ('ring road', (0.0, 0.4))
    """

    name: str
    queue_mix: tuple[float, float, float]
    daylight: tuple[float, float]
    leaves: tuple[float, float] = (0.0, 0.0)
    road_works: float = 0.0  # share of frames with road works in view
    pedestrians: float = 0.3  # chance a pedestrian waits


PROFILES: tuple[Profile, ...] = (
    Profile("market square", (0.1, 0.3, 0.6), daylight=(0.45, 1.0), pedestrians=0.6),
    Profile("park avenue", (0.3, 0.4, 0.3), daylight=(0.4, 1.0), leaves=(0.1, 0.45)),
    Profile("ring road", (0.5, 0.4, 0.1), daylight=(0.0, 0.4)),
    Profile("school lane", (0.3, 0.5, 0.2), daylight=(0.4, 1.0), road_works=0.8, pedestrians=0.7),
)


@dataclass
class ClientData:
    """Frames, their thumbnails as features, and queue-class labels.

    >>> train, _ = client_data(0, num_partitions=4, n=10, seed=0)
    >>> len(train), train.frames.shape, train.x.shape
    (7, (7, 32, 32), (7, 256))
    """

    frames: np.ndarray
    x: np.ndarray
    y: np.ndarray

    def __len__(self) -> int:
        return len(self.y)


def features(frames: np.ndarray) -> np.ndarray:
    """A 16×16 thumbnail (block means) of each uint8 frame, flattened and standardised per frame.

    Standardising each frame on its own (minus its mean, over its spread) removes most of the
    day/night difference before the network sees it: one line that is worth many training frames.
    """
    return frame_layouts(frames, THUMB)


def _queue_length(cls: int, rng: np.random.Generator) -> int:
    return 0 if cls == 0 else int(rng.integers(1, 4)) if cls == 1 else int(rng.integers(4, 9))


def render_profile(profile: Profile, n: int, *, seed: int, size: int = FRAME_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """``n`` frames of one intersection and their queue classes, all drawn from ``seed``."""
    from kit.sim.camera import Scene, render

    rng = np.random.default_rng(seed)
    classes = rng.choice(N_CLASSES, size=n, p=np.asarray(profile.queue_mix) / sum(profile.queue_mix))
    frames = np.empty((n, size, size), dtype=np.uint8)
    for i, cls in enumerate(classes):
        scene = Scene(
            queue_length=_queue_length(int(cls), rng),
            pedestrians_waiting=int(rng.random() < profile.pedestrians),
            daylight=float(rng.uniform(*profile.daylight)),
            leaves=float(rng.uniform(*profile.leaves)),
            road_works=bool(rng.random() < profile.road_works),
        )
        frames[i] = render(scene, seed=int(rng.integers(2**31)), size=size)
    return frames, classes.astype(np.int64)


def client_data(
    partition_id: int, *, num_partitions: int, n: int = 600, seed: int = 0, test_share: float = 0.3
) -> tuple[ClientData, ClientData]:
    """Train and test data of one client (intersection ``partition_id`` of ``num_partitions``).

    With fewer partitions than profiles the first ones are used; the seed mixes in the client id
    so that no two intersections share a frame.
    """
    if not 0 <= partition_id < num_partitions:
        raise ValueError(f"partition_id must be in 0..{num_partitions - 1}, got {partition_id}")
    if num_partitions > len(PROFILES):
        raise ValueError(f"there are {len(PROFILES)} intersection profiles, asked for {num_partitions} clients")
    frames, y = render_profile(PROFILES[partition_id], n, seed=seed * 1000 + partition_id)
    cut = int(round(n * (1 - test_share)))
    x = features(frames)
    return ClientData(frames[:cut], x[:cut], y[:cut]), ClientData(frames[cut:], x[cut:], y[cut:])


class Net:
    """A 256→hidden→3 ReLU network in numpy, trained by minibatch SGD with momentum.

    ``get_weights()``/``set_weights()`` exchange a list of arrays: what FedAvg averages.

        >>> import numpy as np
        >>> net = Net(seed=0)
        >>> [w.shape for w in net.get_weights()]
        [(256, 32), (32,), (32, 3), (3,)]
    """

    def __init__(
        self, n_inputs: int = THUMB * THUMB, hidden: int = 32, n_classes: int = N_CLASSES, *, seed: int = 0
    ) -> None:
        rng = np.random.default_rng(seed)
        self.w1 = (rng.normal(0, np.sqrt(2.0 / n_inputs), (n_inputs, hidden))).astype(np.float32)
        self.b1 = np.zeros(hidden, np.float32)
        self.w2 = (rng.normal(0, np.sqrt(1.0 / hidden), (hidden, n_classes))).astype(np.float32)
        self.b2 = np.zeros(n_classes, np.float32)

    def get_weights(self) -> list[np.ndarray]:
        return [self.w1.copy(), self.b1.copy(), self.w2.copy(), self.b2.copy()]

    def set_weights(self, weights: list[np.ndarray]) -> Net:
        shapes = [w.shape for w in self.get_weights()]
        got = [np.shape(w) for w in weights]
        if got != shapes:
            raise ValueError(f"weights shaped {got} do not fit this network, which expects {shapes}")
        self.w1, self.b1, self.w2, self.b2 = (np.asarray(w, dtype=np.float32).copy() for w in weights)
        return self

    def logits(self, x: np.ndarray) -> np.ndarray:
        return np.maximum(x @ self.w1 + self.b1, 0.0) @ self.w2 + self.b2

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        return robust.softmax(self.logits(x))

    def fit(
        self,
        x: np.ndarray,
        y: np.ndarray,
        *,
        epochs: int = 5,
        lr: float = 0.05,
        batch_size: int = 32,
        momentum: float = 0.9,
        loss: str = "ce",
        seed: int = 0,
    ) -> float:
        """Train in place; returns the mean training loss of the last epoch."""
        rng = np.random.default_rng(seed)
        x = np.asarray(x, dtype=np.float32)
        y = np.asarray(y, dtype=np.int64)
        velocity = [np.zeros_like(w) for w in self.get_weights()]
        last = float("nan")
        for _ in range(epochs):
            order = rng.permutation(len(y))
            losses = []
            for start in range(0, len(y), batch_size):
                idx = order[start : start + batch_size]
                xb, yb = x[idx], y[idx]
                h_pre = xb @ self.w1 + self.b1
                h = np.maximum(h_pre, 0.0)
                z = h @ self.w2 + self.b2
                probs = robust.softmax(z)
                losses.append(
                    robust.cross_entropy(probs, yb) if loss == "ce" else robust.generalized_cross_entropy(probs, yb)
                )
                dz = robust.logit_gradient(z, yb, loss=loss)
                dh = (dz @ self.w2.T) * (h_pre > 0)
                grads = [xb.T @ dh, dh.sum(0), h.T @ dz, dz.sum(0)]
                params = [self.w1, self.b1, self.w2, self.b2]
                for p, g, v in zip(params, grads, velocity):
                    v *= momentum
                    v -= lr * g.astype(np.float32)
                    p += v
            last = float(np.mean(losses))
        return last

    def evaluate(self, x: np.ndarray, y: np.ndarray) -> dict[str, float]:
        """``accuracy`` and cross-entropy ``loss`` on labelled examples."""
        probs = self.predict_proba(np.asarray(x, dtype=np.float32))
        y = np.asarray(y, dtype=np.int64)
        return {"accuracy": float(np.mean(probs.argmax(1) == y)), "loss": robust.cross_entropy(probs, y)}
