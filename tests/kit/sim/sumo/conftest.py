import pytest

pytest.importorskip("libsumo", reason="SUMO is the optional [sumo] extra")
