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


# ---- the preflight: what is missing stops the run before the Runner -------


def test_headline_command_without_coco_explains_what_it_needs(tmp_path):
    """`python tools/train.py configs/psalm_yolo_h100.py` where data/coco
    does not exist: one message, no traceback, nothing built."""
    import os
    import subprocess
    import sys
    work_dir = tmp_path / 'work'
    proc = subprocess.run([
        sys.executable,
        osp.join(REPO, 'tools', 'train.py'),
        osp.join(REPO, 'configs', 'psalm_yolo_h100.py'), '--work-dir',
        str(work_dir)
    ],
                          cwd=tmp_path,
                          env=dict(os.environ, OMP_NUM_THREADS='1'),
                          capture_output=True,
                          text=True,
                          timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out
    assert 'Traceback' not in out
    for text in [
            'cannot start', 'train_dataloader.dataset.data_root',
            'train_dataloader.dataset.ann_file',
            'data/coco/annotations/instances_train2017.json',
            'data/coco/train2017/', 'val_evaluator.ann_file',
            'download_coco.sh data/coco',
            'configs/psalm_yolo/psalm_yolo_n_shapes_cpu.py'
    ]:
        assert text in out, text
    if not torch.cuda.is_available():
        assert 'optim_wrapper.dtype=bfloat16' in out
    # Stopped before the Runner, which creates the work dir.
    assert not work_dir.exists()


def test_a_missing_load_from_or_resume_checkpoint_is_named(
        tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as info:
        _train(tmp_path / 'w', '--cfg-options', 'load_from=ckpt/nope.pth')
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert 'ckpt/nope.pth  [file]\n      set by load_from\n' in err
    with pytest.raises(SystemExit):
        _train(tmp_path / 'w', '--resume', 'ckpt/gone.pth')
    assert 'ckpt/gone.pth  [file]\n      set by --resume\n' in (
        capsys.readouterr().err)
    assert not (tmp_path / 'w').exists()


class _RunnerReached(Exception):
    pass


def _reaches_the_runner(monkeypatch, config, *options):

    def build_runner(cfg):
        raise _RunnerReached

    monkeypatch.setattr(train_tool, 'build_runner', build_runner)
    with pytest.raises(_RunnerReached):
        train_tool.main([osp.join(REPO, 'configs', config)] + list(options))


@pytest.mark.parametrize('config', [
    'psalm_yolo/psalm_yolo_n_shapes_cpu.py',
    'rtdetr/rtdetr_r18_shapes_cpu.py',
    'ris/ris_upa8x8_cpu.py',
])
def test_configs_that_generate_their_data_are_not_blocked(
        config, tmp_path, monkeypatch):
    # No data/demo_shapes or data/ris_cache here: the datasets write them
    # when the Runner builds them.
    monkeypatch.chdir(tmp_path)
    _reaches_the_runner(monkeypatch, config, '--work-dir', str(tmp_path))
    assert not (tmp_path / 'data').exists()


def test_the_audio_manifest_is_explained_until_it_is_written(
        tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    config = osp.join(REPO, 'configs', 'audio', 'dualffn_tiny_lora_cpu.py')
    with pytest.raises(SystemExit) as info:
        train_tool.main([config, '--work-dir', str(tmp_path / 'w')])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert 'data/audio_demo/train.jsonl  [file]' in err
    assert 'set by train_dataloader.dataset.manifest' in err
    command = (f"python {osp.join(REPO, 'tools', 'make_audio_demo_data.py')}"
               ' data/audio_demo\n')
    assert command in err
    # Written as the message says, the config starts.
    from engine_plugins.datasets.audio.demo_data import make_audio_demo_data
    make_audio_demo_data('data/audio_demo')
    _reaches_the_runner(monkeypatch, 'audio/dualffn_tiny_lora_cpu.py',
                        '--work-dir', str(tmp_path / 'w'))
