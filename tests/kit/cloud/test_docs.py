"""The cloud docs and the device policies stay true to the code."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
POLICIES = ["device-iot-policy.json", "device-iam-policy.json"]


def _statements(name):
    doc = json.loads((ROOT / "docs" / "policy" / name).read_text())
    assert doc["Version"] == "2012-10-17"
    return doc["Statement"]


@pytest.mark.parametrize("name", POLICIES)
def test_device_policies_are_least_privilege(name):
    for st in _statements(name):
        assert st["Effect"] == "Allow"
        actions = [st["Action"]] if isinstance(st["Action"], str) else st["Action"]
        resources = [st["Resource"]] if isinstance(st["Resource"], str) else st["Resource"]
        assert all("*" not in a for a in actions), f"{name} {st['Sid']}: wildcard action {actions}"
        assert not any(
            a.startswith(("iot:Create", "iot:Delete", "s3:Delete", "s3:List", "s3:Get", "s3:Create")) for a in actions
        ), f"{name} {st['Sid']}: an operator's action on the device: {actions}"
        if actions == ["iot:DescribeEndpoint"]:
            continue  # AWS only grants it on "*"
        for r in resources:
            assert r != "*", f"{name} {st['Sid']}: a device must not act on every resource"
            assert "ThingName}" in r or r.endswith("rolealias/kit-device-role"), (
                f"{name} {st['Sid']}: {r} is not limited to the device's own thing"
            )


def test_every_upload_key_is_inside_what_the_iam_policy_allows():
    from kit.cloud.uploader import Uploader

    [put] = [st for st in _statements("device-iam-policy.json") if st["Action"] == "s3:PutObject"]
    allowed = re.escape(put["Resource"].split(":::BUCKET/")[1]).replace(r"\$\{credentials\-iot:ThingName\}", "kit-0001")
    key = Uploader(s3=object(), bucket="b", device_id="kit-0001").key("reading", "2026-10-15", 7)
    assert re.fullmatch(allowed.replace(r"\*", ".*"), key), f"{key} is outside {put['Resource']}"


def test_the_docs_name_every_setting_the_code_reads():
    import kit.cloud.config as config

    doc = (ROOT / "docs" / "cloud.md").read_text()
    names = set(re.findall(r"(?:KIT|AWS)_[A-Z_]+", Path(config.__file__).read_text()))
    missing = {n for n in names if n not in doc}
    assert not missing, f"docs/cloud.md does not mention {sorted(missing)}"
    assert "5151" in doc and str(config.DEFAULT_PORT) == "5151"
