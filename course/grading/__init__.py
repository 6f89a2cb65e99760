"""Machinery behind the graded tests: a notebook kept alive in its own kernel (:mod:`course.grading.lab`) and
the pytest plugin that hands it to tests as the ``lab`` fixture and writes the results
(:mod:`course.grading.plugin`).
"""
