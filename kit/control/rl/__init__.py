"""Reinforcement learning for the kit's signals: a gymnasium environment over the SUMO junction
(``env``) and a small DQN trained with Keras and exported to an int8 ``.tflite`` policy (``dqn``).
Needs the ``[sumo]`` and ``[train]`` extras; the device only needs :mod:`kit.control.learned`."""

from kit.ml import quiet as _quiet

_quiet.install()  # the DQN imports TensorFlow: its import-time native log lines stay out of a lab's outputs
