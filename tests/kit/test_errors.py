"""Every error the kit raises on purpose derives from KitError and keeps the built-in base it had."""

from __future__ import annotations

import pytest

from kit.board import PinError
from kit.cloud.broker import BrokerError
from kit.cloud.config import CloudConfigError
from kit.cloud.sync import SyncError
from kit.errors import EXIT_RUNTIME, EXIT_USAGE, KitError, UsageError
from kit.ml.host import ModelFileError, ModelInputError
from kit.ml.runtime import RuntimeMissing
from kit.pins import PinFactoryError
from kit.store.db import StoreOpenError
from kit.store.parameter import ParameterError


@pytest.mark.parametrize(
    ("cls", "builtin", "code"),
    [
        (PinError, ValueError, EXIT_USAGE),
        (PinFactoryError, ValueError, EXIT_USAGE),
        (ParameterError, ValueError, EXIT_USAGE),
        (ModelInputError, ValueError, EXIT_USAGE),
        (CloudConfigError, ValueError, EXIT_USAGE),
        (ModelFileError, ValueError, EXIT_RUNTIME),
        (StoreOpenError, RuntimeError, EXIT_RUNTIME),
        (SyncError, RuntimeError, EXIT_RUNTIME),
        (BrokerError, RuntimeError, EXIT_RUNTIME),
        (RuntimeMissing, ImportError, EXIT_RUNTIME),
    ],
)
def test_deliberate_errors_share_one_base(cls, builtin, code):
    assert issubclass(cls, KitError) and issubclass(cls, builtin)
    assert cls.exit_code == code


def test_usage_error_is_a_value_error():
    with pytest.raises(ValueError, match="bad"):
        raise UsageError("bad")
