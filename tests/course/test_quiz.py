"""Knowledge checks: right and wrong answers get the right feedback; every lab has one and its solution passes it."""

from __future__ import annotations

import re

import nbformat
import pytest

from course import SOLUTIONS
from course.build import solution_notebooks
from course.knowledge import labs, quiz
from course.quiz import Quiz, QuizError


def _quiz() -> Quiz:
    q = Quiz("t")
    q.choice("c", "pick", ["x", "y"], answer="y", why="because", hints={"x": "x misses it"})
    q.number("n", "how many", 2.5, tolerance=0.1, points=3)
    return q


def test_feedback_names_what_is_wrong_and_why():
    text = _quiz().check({"c": "x", "n": 2.55})
    assert text.splitlines() == ["t: 1 of 2 right", "  c: not 'x'. x misses it because", "  n: right"]
    assert "not answered yet" in _quiz().check({})


def test_letters_choose_options_and_points_add_up():
    assert _quiz().score({"c": "b", "n": 2.5}) == (4.0, 4.0)
    assert _quiz().score({"c": "a", "n": "nan"}) == (0.0, 4.0)


def test_mistakes_in_a_quiz_or_its_answers_say_what_to_do():
    with pytest.raises(QuizError, match="not one of its options"):
        Quiz("t").choice("c", "pick", ["x"], answer="z")
    with pytest.raises(QuizError, match="no question 'm'"):
        _quiz().check({"m": 1})
    with pytest.raises(QuizError, match="a dict"):
        _quiz().check(["y"])
    with pytest.raises(QuizError, match="no knowledge check"):
        quiz("42")


def test_every_lab_has_a_check_that_its_solution_answers_fully():
    for path in solution_notebooks(SOLUTIONS):
        key = path.name.split("_")[0]
        assert key in labs(), f"{path.name} has no knowledge check in course.knowledge"
        source = "\n".join(c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code")
        found = re.search(r"answers = (\{.*?\n\})", source, re.S)
        assert found and f'quiz("{key}")' in source, f"{path.name} does not ask its knowledge check"
        answers = eval(found.group(1))  # the solution's own literal dict
        got, most = quiz(key).score(answers)
        assert got == most, f"{path.name}: the reference answers score {got} of {most}"


def test_a_lab_check_marks_one_right_option_and_hints_only_wrong_ones():
    from course.knowledge import choice, right, wrong

    with pytest.raises(QuizError, match="exactly one"):
        choice("c", "pick", ["x", "y"])
    with pytest.raises(QuizError, match="exactly one"):
        choice("c", "pick", [right("x"), right("y")])
    q = Quiz("t")
    q.add(choice("c", "pick", [right("x"), wrong("y", "y misses it")], why="because"))
    assert q.check({"c": "b"}).splitlines()[1] == "  c: not 'b'. y misses it because"
    assert q.score({"c": "x"}) == (1.0, 1.0)
