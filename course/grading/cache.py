"""Results already graded, so that a stopped or repeated run does not grade them again.

    >>> import tempfile
    >>> from course.grading.unit import LabResult
    >>> cache = ResultCache(Path(tempfile.mkdtemp()))
    >>> cache.put("abc", "t1", LabResult("ada", "01_demo", [{"test": "t", "points": 1.0, "max": 1.0,
    ...                                                       "passed": True, "message": ""}]))
    >>> cache.get("abc", "t1", student="bob").score, cache.get("abc", "t2", student="bob")
    (1.0, None)

One JSON file per result, named by the notebook's hash and the grading hash (the grading files, the grader's
code and the limits: :func:`course.grading.unit.grading_hash`), written as each unit finishes; a file is
replaced atomically, so a run killed half-way leaves only whole results. Two students who hand in the very
same bytes share a result (their scores would be the same anyway).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from course.grading.unit import LabResult


class ResultCache:
    """A folder of graded results keyed by notebook hash + grading hash."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    def _path(self, notebook_hash: str, grading_hash: str) -> Path:
        return self.folder / f"{notebook_hash[:40]}-{grading_hash[:24]}.json"

    def get(self, notebook_hash: str, grading_hash: str, *, student: str) -> LabResult | None:
        """The cached result for these bytes under this grading, told as ``student``'s; None if not graded yet."""
        try:
            data = json.loads(self._path(notebook_hash, grading_hash).read_text(encoding="utf-8"))
            result = LabResult.from_json(data)
        except (OSError, ValueError, KeyError, TypeError):
            return None  # not there, or unreadable: grade it again
        result.student = student
        return result

    def put(self, notebook_hash: str, grading_hash: str, result: LabResult) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self._path(notebook_hash, grading_hash)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(result.to_json()), encoding="utf-8")
        tmp.replace(path)
