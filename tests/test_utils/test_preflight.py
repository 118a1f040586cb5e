"""engine_plugins.utils.preflight: missing inputs and GPU settings in one
message, and the tools' exit."""
import pytest
from mmengine.config import Config

from engine_plugins.utils.preflight import (EXIT_STATUS, PreflightError,
                                            preflight_or_exit, run_preflight)

AMP_FP16 = dict(
    type='AmpGradSanityOptimWrapper',
    dtype='float16',
    loss_scale='dynamic',
    optimizer=dict(type='SGD', lr=0.1))


def _cfg(**parts) -> Config:
    return Config(dict(default_scope='engine_plugins', **parts))


@pytest.fixture(autouse=True)
def empty_cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


def test_one_message_for_everything():
    cfg = _cfg(
        load_from='a.pth',
        model=dict(type='X', pretrained='weights/'),
        optim_wrapper=AMP_FP16,
        env_cfg=dict(cudnn_benchmark=True))
    logged = []
    with pytest.raises(PreflightError) as info:
        run_preflight(
            cfg,
            'train',
            'tools/train.py c.py',
            'c.py',
            gpu=False,
            log=logged.append)
    message = str(info.value)
    flat = ' '.join(message.split())  # as printed, wrapped at 79 columns
    assert flat.startswith(
        'tools/train.py c.py: cannot start: 2 inputs are missing and 1 '
        'setting needs a GPU. Nothing was built or trained.')
    for text in [
            'a.pth  [file]', 'set by load_from', 'weights/',
            'set by model.pretrained', 'optim_wrapper.dtype=bfloat16'
    ]:
        assert text in message
    assert all(
        len(line) <= 79 for line in message.splitlines()
        if not line.startswith('Missing (relative paths are from'))
    # The ignored setting is an info line, not part of the error.
    assert logged == [
        'preflight: no GPU: env_cfg.cudnn_benchmark=True is ignored: cuDNN '
        'is not used\nwithout a GPU; nothing to change.'
    ]
    assert 'cudnn' not in message


def test_nothing_to_report():
    logged = []
    assert run_preflight(
        _cfg(), 'train', 't c', 'c', gpu=False, log=logged.append) == []
    assert logged == []


def test_a_gpu_setting_alone_stops_the_run():
    with pytest.raises(
            PreflightError,
            match='cannot start: 1 setting needs '
            'a GPU. Nothing was built'):
        run_preflight(
            _cfg(optim_wrapper=AMP_FP16), 'train', 't c', 'c', gpu=False)
    # The same config on a GPU machine starts.
    run_preflight(_cfg(optim_wrapper=AMP_FP16), 'train', 't c', 'c', gpu=True)


def test_preflight_or_exit_prints_and_exits(capsys):
    with pytest.raises(SystemExit) as info:
        preflight_or_exit(
            _cfg(load_from='gone.pth'), 'test', 'tools/test.py', 'c.py',
            {'load_from': 'CHECKPOINT'}, ['gone.pth'])
    assert info.value.code == EXIT_STATUS == 2
    err = ' '.join(capsys.readouterr().err.split())
    assert 'test.py c.py gone.pth: cannot start: 1 input is missing' in err
    assert 'set by CHECKPOINT' in err
