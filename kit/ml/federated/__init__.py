"""Federated learning across intersections with Flower.

``task.py`` (data and the numpy model), ``client_app.py`` / ``server_app.py`` (the Flower apps),
``simulation.py`` (the Simulation Engine and the local-only and centralized baselines), ``app/``
(the project folder for ``flwr run``). Importing this package does not import Flower.
"""
