from __future__ import annotations

import numpy as np
import pytest

from kit.store import Parameter, ParameterError


def test_float_parameter_accepts_numbers_in_range_and_names_the_limits():
    p = Parameter("x_s", "float", 3.0, "x", unit="s", minimum=3, maximum=6)
    assert p.check(4) == 4.0 and isinstance(p.check(4), float)
    assert p.check(np.float32(5.5)) == 5.5
    assert p.problem(9) == "must be between 3 and 6 s, got 9 s"
    assert p.problem(2.5) == "must be between 3 and 6 s, got 2.5 s"
    assert "finite" in p.problem(float("nan"))


@pytest.mark.parametrize("bad", ["4", True, None, [4], {"v": 4}])
def test_wrong_types_are_refused_with_the_allowed_values(bad):
    p = Parameter("x_s", "float", 3.0, "x", unit="s", minimum=3, maximum=6)
    problem = p.problem(bad)
    assert problem and "between 3 and 6 s" in problem and repr(bad) in problem


def test_int_parameter_is_strict_but_takes_whole_floats():
    p = Parameter("n", "int", 5, "n", minimum=1, maximum=10)
    assert p.check(7) == 7 and p.check(7.0) == 7 and p.check(np.int64(3)) == 3
    for bad in (7.5, True, "7"):
        with pytest.raises(ParameterError) as info:
            p.check(bad)
        assert info.value.name == "n" and "between 1 and 10" in str(info.value)


def test_choices_bool_and_pattern():
    mode = Parameter("mode", "str", "a", "m", choices=("a", "b"))
    assert mode.problem("c") == "must be one of 'a', 'b', got 'c'"
    flag = Parameter("flag", "bool", True, "f")
    assert flag.check(False) is False and flag.problem(1) is not None
    assert flag.parse("off") is False and flag.parse("Yes") is True
    ident = Parameter("id", "str", "kit-1", "i", pattern=r"[a-z0-9-]{1,8}")
    assert ident.problem("kit 1; DROP") is not None and ident.check("kit-2") == "kit-2"


def test_parse_turns_command_line_text_into_the_type():
    p = Parameter("n", "int", 5, "n", minimum=1, maximum=10)
    assert p.parse("7") == 7
    with pytest.raises(ParameterError, match="n: must be an integer"):
        p.parse("seven")


def test_a_declaration_with_an_invalid_default_is_refused():
    with pytest.raises(ValueError, match="default 9"):
        Parameter("x", "int", 9, "x", minimum=0, maximum=5)
    with pytest.raises(ValueError, match="type must be one of"):
        Parameter("x", "list", [], "x")
