"""engine_plugins.utils.device_preflight: GPU settings on a machine without
a GPU, each either reported as ignored or as a change to make."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config

from engine_plugins.engine.optim_wrappers.portable_amp_optim_wrapper import (
    PortableAmpOptimWrapper, has_accelerator)
from engine_plugins.utils import load_config
from engine_plugins.utils.device_preflight import check_device_settings

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _cfg(**parts) -> Config:
    return Config(dict(default_scope='engine_plugins', **parts))


def _amp(**extra) -> dict:
    return dict(
        dict(
            type='AmpGradSanityOptimWrapper',
            optimizer=dict(type='SGD', lr=0.1)), **extra)


def _by_key(findings):
    return {f.key: f for f in findings}


def test_the_h100_config_on_a_cpu():
    cfg = load_config(osp.join(REPO, 'configs', 'psalm_yolo_h100.py'))
    found = _by_key(check_device_settings(cfg, 'train', gpu=False))
    assert sorted(found) == [
        'env_cfg.cudnn_benchmark', 'optim_wrapper.dtype',
        'train_dataloader.pin_memory'
    ]
    fp16 = found['optim_wrapper.dtype']
    assert fp16.must_change
    assert "optim_wrapper.dtype='float16'" in fp16.message
    assert "loss_scale='dynamic'" in fp16.message
    assert '--cfg-options optim_wrapper.dtype=bfloat16' in fp16.message
    assert not found['env_cfg.cudnn_benchmark'].must_change
    assert not found['train_dataloader.pin_memory'].must_change
    # With a GPU nothing is reported.
    assert check_device_settings(cfg, 'train', gpu=True) == []
    # A test builds no optim wrapper: fp16 AMP does not matter there.
    assert [f.key for f in check_device_settings(cfg, 'test', gpu=False)
            ] == ['env_cfg.cudnn_benchmark']


@pytest.mark.skipif(has_accelerator(), reason='the CPU behaviour')
def test_the_decision_matches_what_the_wrapper_does_on_a_cpu():
    model = torch.nn.Linear(2, 1)

    def build(**kwargs):
        return PortableAmpOptimWrapper(
            optimizer=torch.optim.SGD(model.parameters(), lr=0.1), **kwargs)

    # fp16 + dynamic loss scale: refused when training builds it ...
    with pytest.raises(ValueError, match='bfloat16'):
        build(dtype='float16', loss_scale='dynamic')
    # ... and the suggested change trains: bf16 autocast, no scaler.
    wrapper = build(dtype='bfloat16', loss_scale='dynamic')
    assert wrapper.cast_dtype is torch.bfloat16
    assert not wrapper.loss_scaler.is_enabled()


@pytest.mark.parametrize('dtype', ['float16', torch.float16, 'half'])
def test_fp16_must_change(dtype):
    cfg = _cfg(optim_wrapper=_amp(dtype=dtype))
    (finding, ) = check_device_settings(cfg, 'train', gpu=False)
    assert finding.must_change and finding.key == 'optim_wrapper.dtype'


@pytest.mark.parametrize('dtype', ['bfloat16', None])
def test_bf16_or_default_amp_runs_on_a_cpu(dtype):
    cfg = _cfg(optim_wrapper=_amp(dtype=dtype, loss_scale='dynamic'))
    (finding, ) = check_device_settings(cfg, 'train', gpu=False)
    assert not finding.must_change
    assert 'bf16 autocast' in finding.message
    assert "loss_scale='dynamic' is unused" in finding.message


def test_plain_wrappers_are_not_reported():
    cfg = _cfg(
        optim_wrapper=dict(
            type='GradSanityOptimWrapper', optimizer=dict(type='SGD')))
    assert check_device_settings(cfg, 'train', gpu=False) == []


def test_mmengine_amp_wrapper_must_change():
    cfg = _cfg(optim_wrapper=_amp(type='mmengine.AmpOptimWrapper'))
    (finding, ) = check_device_settings(cfg, 'train', gpu=False)
    assert finding.must_change and finding.key == 'optim_wrapper.type'
    # In our scope the same name is the portable wrapper: fine.
    cfg = _cfg(optim_wrapper=_amp(type='AmpOptimWrapper'))
    (finding, ) = check_device_settings(cfg, 'train', gpu=False)
    assert not finding.must_change


def test_cuda_devices_anywhere_must_change():
    cfg = _cfg(
        model=dict(head=dict(device='cuda:0')),
        custom_hooks=[
            dict(type='X', device='cpu'),
            dict(type='Y', device='cuda')
        ])
    found = check_device_settings(cfg, 'test', gpu=False)
    assert [(f.key, f.must_change)
            for f in found] == [('model.head.device', True),
                                ('custom_hooks.1.device', True)]
    assert '--cfg-options model.head.device=cpu' in found[0].message


@pytest.mark.parametrize('launcher, must_change', [('slurm', True),
                                                   ('mpi', True),
                                                   ('pytorch', None),
                                                   ('none', None)])
def test_launchers(launcher, must_change):
    found = check_device_settings(_cfg(launcher=launcher), 'train', gpu=False)
    assert [f.must_change
            for f in found] == ([must_change] if must_change else [])


def test_pin_memory_of_used_loaders_only():
    cfg = _cfg(
        train_dataloader=dict(pin_memory=True),
        val_dataloader=dict(pin_memory=True),
        test_dataloader=dict(pin_memory=False),
        val_cfg=None)
    assert [f.key for f in check_device_settings(cfg, 'train', gpu=False)
            ] == ['train_dataloader.pin_memory']
    cfg.val_cfg = dict(type='ValLoop')
    assert [f.key for f in check_device_settings(cfg, 'train', gpu=False)
            ] == ['train_dataloader.pin_memory', 'val_dataloader.pin_memory']
    assert check_device_settings(cfg, 'test', gpu=False) == []
