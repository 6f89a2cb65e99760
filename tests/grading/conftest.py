"""Graded tests: each file grades one notebook through the ``lab`` fixture (see course/grading/plugin.py).

pytest tests/grading                       # grades solutions/ (every test should pass)
pytest tests/grading --notebooks labs      # grades the blank labs (every test should fail)
"""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    # Registered here rather than imported, so that `-p course.grading.plugin` (as course.grade passes it)
    # and this conftest never load the plugin twice.
    if not config.pluginmanager.has_plugin("course.grading.plugin"):
        config.pluginmanager.import_plugin("course.grading.plugin")
