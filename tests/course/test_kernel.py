"""Every lab names the project's kernel, and `make lab` installs a kernel of that name."""

from __future__ import annotations

import re

import nbformat

from course import LABS, ROOT
from course.build import KERNELSPEC, solution_notebooks


def test_every_lab_names_the_edge_python_kernel():
    labs = solution_notebooks(LABS)
    assert labs
    for path in labs:
        assert nbformat.read(path, as_version=4).metadata["kernelspec"] == KERNELSPEC, path.name


def test_make_lab_installs_that_kernel():
    recipe = (ROOT / "Makefile").read_text().split("\nlab:", 1)[1].split("\n\n", 1)[0]
    assert re.search(rf"ipykernel install --user --name {KERNELSPEC['name']}\b", recipe), recipe
    assert KERNELSPEC["display_name"] in recipe
