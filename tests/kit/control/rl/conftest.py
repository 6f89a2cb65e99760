import pytest

pytest.importorskip("libsumo", reason="SUMO is the optional [sumo] extra")
pytest.importorskip("gymnasium", reason="gymnasium comes with the optional [sumo] extra")
