"""The item-id map: the packaged one is consistent, and a malformed one is named."""

from __future__ import annotations

import pytest

from benchmark.config import ConfigError
from benchmark.data.mimic_iv import VARIABLES
from benchmark.data.mimic_iv.items import load_item_map


def test_item_map_is_checked(tmp_path):
    variables = load_item_map()
    assert list(variables) == VARIABLES
    ids = [item.itemid for v in variables.values() for item in v.items]
    assert len(ids) == len(set(ids))
    bad = tmp_path / "map.yaml"
    bad.write_text("variables:\n  Heart Rate:\n    kind: vital\n    bounds: [1, 350]\n    items:\n"
                   "      - {itemid: 220045, table: chartevents, convert: none}\n"
                   "  Weight:\n    kind: vital\n    bounds: [20, 500]\n    items:\n"
                   "      - {itemid: 220045, table: chartevents, convert: lb_to_kg}\n")
    with pytest.raises(ConfigError, match="220045 is already mapped to 'Heart Rate'"):
        load_item_map(bad)
