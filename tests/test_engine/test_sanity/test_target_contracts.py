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


def test_a_new_dataset_contract_drives_the_batch_accounting(monkeypatch):
    """The monitor counts targets and words missing ones through the
    dataset contract: a contract for keypoint samples, unknown to the
    engine, gets its own check and findings."""
    import torch

    from engine_plugins.engine.sanity.errors import BatchContractError
    from tests.test_engine.test_sanity.test_monitor_checks import (Engine, Net,
                                                                   _head_sum)
    target_contracts.dataset_contracts()  # the built-ins, registered first
    monkeypatch.setattr(target_contracts, '_CONTRACTS',
                        dict(target_contracts._CONTRACTS))
    monkeypatch.setattr(target_contracts, '_DATASET_CONTRACTS',
                        list(target_contracts._DATASET_CONTRACTS))
    checked = []

    @target_contracts.register_target_contract('keypoints')
    def check(data_samples, num_classes):
        checked.append(len(data_samples))

    def count(data_samples):
        if not isinstance(data_samples[0], dict):
            return None
        return target_contracts.TargetCount(
            sum(len(s['keypoints']) for s in data_samples), 0)

    target_contracts.register_dataset_contract(
        target_contracts.DatasetContract(
            'keypoints', count, none_in_first='no keypoint in {batches}',
            all_ignored='{ignored}', none_in_batch='{images} {fraction}'))
    engine = Engine(Net(_head_sum), strict_iters=2, num_classes=3)
    monitor = engine.monitor
    empty = dict(inputs=torch.zeros(2, 3),
                 data_samples=[dict(keypoints=[]), dict(keypoints=[])])
    monitor.start_iter(1)
    monitor.on_batch(empty)
    assert checked == [2] and monitor._batch_gts == 0
    monitor.start_iter(2)
    with pytest.raises(BatchContractError,
                       match=r'^data check, iteration 2: no keypoint in 2$'):
        monitor.on_batch(empty)
