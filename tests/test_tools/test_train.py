"""tools/train.py: a run, a resume from its checkpoint, and the errors."""
import os.path as osp

import pytest
import torch

from tests.tool_loading import load_tool

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOY_CONFIG = osp.join(REPO, 'tests', 'data', 'configs', 'toy_regression.py')


train_tool = load_tool('train')


def _train(work_dir, *extra):
    return train_tool.main(
        [TOY_CONFIG, '--work-dir', str(work_dir)] + list(extra))


def _weights(work_dir):
    return torch.load(osp.join(work_dir, 'weights_rank0.pth'))['state_dict']


@pytest.mark.slow
def test_resume_restores_iteration_and_optimizer_state(tmp_path):
    from tests.toy_task import ToyProbeHook
    ToyProbeHook.records.clear()

    # Reference: 8 uninterrupted iterations.
    _train(tmp_path / 'full')
    # Interrupted: 4 iterations, then --resume (auto) up to 8.
    first = _train(tmp_path / 'split', '--cfg-options',
                   'train_cfg.max_iters=4')
    assert first.iter == 4
    ckpt = torch.load(tmp_path / 'split' / 'iter_4.pth')
    resumed = _train(tmp_path / 'split', '--resume')
    assert resumed.iter == 8

    # before_train of the resumed run saw iteration 4 and exactly the
    # optimizer state (SGD momentum buffers) saved at iteration 4.
    record = ToyProbeHook.records[-1]
    assert record['iter'] == 4
    saved = ckpt['optimizer']['state']
    restored = record['optimizer']['state']
    assert saved.keys() == restored.keys() and len(saved) == 4
    for key in saved:
        torch.testing.assert_close(restored[key]['momentum_buffer'],
                                   saved[key]['momentum_buffer'])

    # Same data order and restored momentum => the same final weights as
    # the uninterrupted run.
    full, split = _weights(tmp_path / 'full'), _weights(tmp_path / 'split')
    for key in full:
        torch.testing.assert_close(split[key], full[key])
    # ...and training did something: the loss of the last logged window is
    # below the first one's.
    hub = resumed.message_hub.get_scalar('train/loss_mse')
    history = hub.data[0]
    assert history[-1] < history[0]


@pytest.mark.slow
def test_resume_from_explicit_checkpoint(tmp_path):
    _train(tmp_path, '--cfg-options', 'train_cfg.max_iters=4')
    runner = _train(tmp_path / 'other', '--resume',
                    str(tmp_path / 'iter_4.pth'))
    assert runner.iter == 8


def test_missing_config_and_checkpoint_are_named(tmp_path):
    missing = str(tmp_path / 'nope.py')
    with pytest.raises(FileNotFoundError, match='nope.py'):
        train_tool.build_cfg(train_tool.parse_args([missing]))
    with pytest.raises(FileNotFoundError, match='gone.pth'):
        train_tool.build_cfg(
            train_tool.parse_args(
                [TOY_CONFIG, '--resume',
                 str(tmp_path / 'gone.pth')]))


def test_amp_and_auto_scale_lr_flags(tmp_path):
    cfg = train_tool.build_cfg(
        train_tool.parse_args(
            [TOY_CONFIG, '--amp', '--work-dir',
             str(tmp_path)]))
    assert cfg.optim_wrapper.type == 'AmpGradSanityOptimWrapper'
    assert cfg.optim_wrapper.loss_scale == 'dynamic'
    # The toy config has no auto_scale_lr.base_batch_size: say so.
    with pytest.raises(ValueError, match='base_batch_size'):
        train_tool.build_cfg(
            train_tool.parse_args([TOY_CONFIG, '--auto-scale-lr']))
    cfg = train_tool.build_cfg(
        train_tool.parse_args([
            TOY_CONFIG, '--auto-scale-lr', '--cfg-options',
            'auto_scale_lr.base_batch_size=16'
        ]))
    assert cfg.auto_scale_lr.enable is True
    assert cfg.work_dir.endswith(osp.join('work_dirs', 'toy_regression'))


@pytest.mark.slow
def test_amp_run_on_cpu_uses_bf16(tmp_path):
    runner = _train(tmp_path, '--amp', '--cfg-options',
                    'train_cfg.max_iters=2')
    assert runner.optim_wrapper.cast_dtype == torch.bfloat16
    assert runner.iter == 2


@pytest.mark.slow
def test_a_sanity_stop_prints_the_diagnose_command_or_writes_the_report(
        tmp_path, capsys):
    from engine_plugins.engine import NoUpdateError
    lr0 = ['--cfg-options', 'optim_wrapper.optimizer.lr=0.0']
    with pytest.raises(NoUpdateError):
        _train(tmp_path / 'print', *lr0)
    assert (f'python tools/diagnose.py {tmp_path / "print"}'
            in capsys.readouterr().err)
    with pytest.raises(NoUpdateError):
        _train(tmp_path / 'write', *lr0, '--diagnose-on-exit')
    with open(tmp_path / 'write' / 'diagnosis.md') as f:
        assert '[no_update, error at iteration 1]' in f.read()
    assert (tmp_path / 'write' / 'diagnosis.html').is_file()


def test_data_check_error_reaches_the_event_log(tmp_path):
    """A dataset that refuses its annotation file stops the run before
    training, and the finding (with its cause code) is in the event log
    that tools/diagnose.py and the benchmark read."""
    import glob
    import json

    from engine_plugins.datasets import DataCheckError, write_demo_shapes
    root = str(tmp_path / 'data') + '/'
    write_demo_shapes(root, num_train=4, num_val=2, seed=0)
    ann_path = osp.join(root, 'annotations', 'train.json')
    with open(ann_path) as f:
        coco = json.load(f)
    for ann in coco['annotations']:
        ann['iscrowd'] = 1
    with open(ann_path, 'w') as f:
        json.dump(coco, f)
    config = osp.join(REPO, 'configs', 'psalm_yolo',
                      'psalm_yolo_n_shapes_cpu.py')
    with pytest.raises(DataCheckError) as info:
        train_tool.main([
            config, '--work-dir',
            str(tmp_path / 'work'), '--cfg-options',
            f'train_dataloader.dataset.data_root={root}',
            'train_dataloader.dataset.generate.num_train=4',
            'train_dataloader.dataset.generate.num_val=2',
            'train_dataloader.num_workers=0',
            'train_dataloader.persistent_workers=False'
        ])
    assert info.value.cause == 'label_mask'
    assert f'all {len(coco["annotations"])} loaded boxes are flagged ' \
        'ignored' in str(info.value)
    events = [
        json.loads(line)
        for path in glob.glob(str(tmp_path / 'work' / '*' / 'sanity.jsonl'))
        for line in open(path)
    ]
    assert [(e['kind'], e['cause'])
            for e in events] == [('error', 'label_mask')]
