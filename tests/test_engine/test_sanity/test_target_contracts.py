"""The target-contract mechanism: contracts register checks by name, the
engine looks them up without knowing them."""
import pytest

from engine_plugins.engine.sanity import target_contracts
from engine_plugins.engine.sanity.preflight import check_detection_targets


def test_built_in_detection_contracts_are_found():
    from engine_plugins.structures.detection_targets import (
        check_normalized_cxcywh_targets, check_pixel_xyxy_targets)
    assert target_contracts.target_contract('xyxy_pixel') is \
        check_pixel_xyxy_targets
    assert target_contracts.target_contract('cxcywh_normalized') is \
        check_normalized_cxcywh_targets


def test_unknown_contract_lists_the_known_ones():
    with pytest.raises(ValueError, match=r"box_format must be one of "
                       r"\[.*'cxcywh_normalized'.*'xyxy_pixel'.*\], got "
                       r"'xywh'"):
        check_detection_targets([], 3, 'xywh')


def test_a_new_contract_is_used_by_name(monkeypatch):
    monkeypatch.setattr(target_contracts, '_CONTRACTS',
                        dict(target_contracts._CONTRACTS))
    seen = []

    @target_contracts.register_target_contract('polygon_pixel')
    def check(data_samples, num_classes):
        seen.append((list(data_samples), num_classes))

    check_detection_targets(['a', 'b'], 5, 'polygon_pixel')
    assert seen == [(['a', 'b'], 5)]
