from __future__ import annotations

from kit.control.rl.dqn import main


def test_more_than_one_try_needs_validation_to_choose(capsys):
    assert main(["--tries", "2", "--validate-every", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--validate-every above 0" in err
    assert main(["--tries", "0"]) == 2
