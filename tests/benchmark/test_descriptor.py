"""The method descriptor convention."""

from __future__ import annotations

import json

import pytest

from benchmark.descriptor import DescriptorError, MethodDescriptor, attach_descriptor, embedded_descriptor
from tests.benchmark.fake_results import metrics_file


def test_attach_then_read_back(tmp_path):
    path = metrics_file(tmp_path / "m", 1.0)
    attach_descriptor(path, {"dataset": "synthetic_icu", "task": "mortality", "method": "gru", "family": "expert"})
    data = json.loads(path.read_text())
    assert data["n"] == 120  # the metrics are kept
    descriptor = MethodDescriptor.from_dict(embedded_descriptor(path, data))
    assert descriptor.condition == "standard" and descriptor.backbone is None and not descriptor.cross_domain


def test_sidecar_is_read_when_the_file_has_none(tmp_path):
    path = metrics_file(tmp_path / "m", 1.0)
    (tmp_path / "m" / "descriptor.json").write_text(json.dumps({"method": "qd"}))
    assert embedded_descriptor(path, json.loads(path.read_text())) == {"method": "qd"}


@pytest.mark.parametrize("fields, message", [
    ({"dataset": "d", "task": "t", "method": "m"}, "family"),
    ({"dataset": "d", "task": "t", "method": "m", "family": "oracle"}, "oracle"),
    ({"dataset": "d", "task": "t", "method": "m", "family": "rl", "colour": "red"}, "colour"),
])
def test_bad_descriptors_are_named(fields, message):
    with pytest.raises(DescriptorError, match=message):
        MethodDescriptor.from_dict(fields, "somewhere.json")


def test_cross_domain():
    d = MethodDescriptor("tjh", "mortality", "eag_rl", "eag_rl", "qwen", train_dataset="mimic_iv")
    assert d.cross_domain and d.source_dataset == "mimic_iv"
