"""engine_plugins.utils.data_preflight: the inputs a command will read,
found missing before the Runner is built, and the message about them."""
import os
import os.path as osp

import pytest
from mmengine.config import Config

from engine_plugins.utils import load_config
from engine_plugins.utils.data_preflight import (describe_missing_inputs,
                                                 find_missing_inputs)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
H100 = osp.join(REPO, 'configs', 'psalm_yolo_h100.py')


@pytest.fixture(autouse=True)
def empty_cwd(tmp_path, monkeypatch):
    """Relative paths resolve in an empty folder: no data/coco here."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _cfg(**parts) -> Config:
    return Config(dict(default_scope='engine_plugins', **parts))


def _coco(root='data/coco/', split='train', **extra) -> dict:
    return dict(
        type='CocoDataset',
        data_root=root,
        ann_file=f'annotations/instances_{split}2017.json',
        data_prefix=dict(img=f'{split}2017/'),
        pipeline=[],
        **extra)


def _by_path(missing):
    return {item.path: item for item in missing}


def test_train_names_each_missing_coco_path_and_its_keys():
    cfg = load_config(H100)
    missing = _by_path(find_missing_inputs(cfg, 'train'))
    assert list(missing) == [
        'data/coco/annotations/instances_train2017.json',
        'data/coco/train2017/', 'data/coco/annotations/instances_val2017.json',
        'data/coco/val2017/'
    ]
    train_ann = missing['data/coco/annotations/instances_train2017.json']
    assert (train_ann.kind, train_ann.topic) == ('file', 'coco2017')
    assert train_ann.keys == [
        'train_dataloader.dataset.data_root + '
        'train_dataloader.dataset.ann_file'
    ]
    assert missing['data/coco/train2017/'].keys == [
        'train_dataloader.dataset.data_root + '
        'train_dataloader.dataset.data_prefix.img'
    ]
    # The val dataset and the evaluator read the same file: one entry.
    assert missing['data/coco/annotations/instances_val2017.json'].keys == [
        'val_dataloader.dataset.data_root + val_dataloader.dataset.ann_file',
        'val_evaluator.ann_file'
    ]


def test_test_reads_only_the_test_set_and_the_checkpoint():
    cfg = load_config(H100)
    cfg.load_from = 'work_dirs/x/epoch_12.pth'
    missing = find_missing_inputs(
        cfg, 'test', labels={'load_from': 'CHECKPOINT'})
    assert [(m.path, m.keys) for m in missing] == [
        ('data/coco/annotations/instances_val2017.json', [
            'test_dataloader.dataset.data_root + '
            'test_dataloader.dataset.ann_file', 'test_evaluator.ann_file'
        ]),
        ('data/coco/val2017/', [
            'test_dataloader.dataset.data_root + '
            'test_dataloader.dataset.data_prefix.img'
        ]),
        ('work_dirs/x/epoch_12.pth', ['CHECKPOINT']),
    ]


def test_present_files_pass(empty_cwd):
    os.makedirs('data/coco/annotations')
    os.makedirs('data/coco/train2017')
    os.makedirs('data/coco/val2017')
    for split in ('train', 'val'):
        open(f'data/coco/annotations/instances_{split}2017.json', 'w').close()
    assert find_missing_inputs(load_config(H100), 'train') == []
    # A file where a folder is expected is still missing.
    os.rmdir('data/coco/val2017')
    open('data/coco/val2017', 'w').close()
    assert [m.path for m in find_missing_inputs(load_config(H100), 'test')
            ] == ['data/coco/val2017/']


def test_datasets_inside_wrappers_are_found():
    cfg = _cfg(
        train_dataloader=dict(
            dataset=dict(
                type='ConcatDataset',
                datasets=[
                    dict(type='RepeatDataset', times=2, dataset=_coco()),
                    dict(
                        type='ClassBalancedDataset',
                        oversample_thr=0.1,
                        dataset=_coco(root='/abs/other/')),
                ])))
    keys = [key for m in find_missing_inputs(cfg, 'train') for key in m.keys]
    assert keys == [
        'train_dataloader.dataset.datasets.0.dataset.data_root + '
        'train_dataloader.dataset.datasets.0.dataset.ann_file',
        'train_dataloader.dataset.datasets.0.dataset.data_root + '
        'train_dataloader.dataset.datasets.0.dataset.data_prefix.img',
        'train_dataloader.dataset.datasets.1.dataset.data_root + '
        'train_dataloader.dataset.datasets.1.dataset.ann_file',
        'train_dataloader.dataset.datasets.1.dataset.data_root + '
        'train_dataloader.dataset.datasets.1.dataset.data_prefix.img',
    ]


def test_absolute_paths_are_not_joined_to_data_root(tmp_path):
    ann = str(tmp_path / 'elsewhere' / 'a.json')
    cfg = _cfg(
        train_dataloader=dict(
            dataset=dict(
                type='CocoDataset',
                data_root='data/mine/',
                ann_file=ann,
                data_prefix=dict(img='images/'),
                pipeline=[])))
    missing = find_missing_inputs(cfg, 'train')
    assert [(m.path, m.keys, m.topic) for m in missing] == [
        (ann, ['train_dataloader.dataset.ann_file'], 'coco'),
        ('data/mine/images/', [
            'train_dataloader.dataset.data_root + '
            'train_dataloader.dataset.data_prefix.img'
        ], 'coco'),
    ]


def test_generated_and_simulated_data_is_not_checked():
    demo = dict(
        type='DemoShapesDataset',
        data_root='data/demo_shapes/',
        generate=dict(num_train=4, num_val=2),
        ann_file='annotations/val.json',
        data_prefix=dict(img='val/'),
        pipeline=[])
    cfg = _cfg(
        train_dataloader=dict(dataset=dict(demo, ann_file='train.json')),
        val_dataloader=dict(dataset=demo),
        val_cfg=dict(type='ValLoop'),
        # Written by the val dataset when it is built, before the metric
        # reads it.
        val_evaluator=dict(
            type='FastCocoMetric',
            ann_file='data/demo_shapes/annotations/val.json'),
        test_dataloader=dict(
            dataset=dict(
                type='RISDoADataset',
                geometry=dict(rows=2, cols=2),
                cache_dir='data/ris_cache')))
    assert find_missing_inputs(cfg, 'train') == []
    assert find_missing_inputs(cfg, 'test') == []
    assert not osp.exists('data')  # the check writes nothing


def test_val_is_checked_only_when_a_val_loop_runs():
    val = dict(dataset=_coco(split='val'))
    cfg = _cfg(
        train_dataloader=dict(dataset=dict(type='RISDoADataset')),
        val_dataloader=val,
        val_evaluator=dict(
            type='FastCocoMetric',
            ann_file='data/coco/annotations/instances_val2017.json'),
        val_cfg=None)
    assert find_missing_inputs(cfg, 'train') == []
    cfg.val_cfg = dict(type='ValLoop')
    assert len(find_missing_inputs(cfg, 'train')) == 2


def test_remote_paths_are_not_checked():
    cfg = _cfg(
        train_dataloader=dict(
            dataset=dict(
                type='ConcatDataset',
                datasets=[
                    _coco(root='s3://bucket/coco/'),
                    _coco(backend_args=dict(backend='petrel')),
                ])),
        load_from='https://example.com/x.pth',
        model=dict(
            type='RTDETR',
            backbone=dict(
                init_cfg=dict(
                    type='Pretrained', checkpoint='torchvision://resnet18'))))
    assert find_missing_inputs(cfg, 'train') == []


def test_weights_and_checkpoints(tmp_path):
    cfg = _cfg(
        model=dict(
            type='X',
            backbone=dict(init_cfg=[
                dict(type='Kaiming', layer='Conv2d'),
                dict(type='Pretrained', checkpoint='w/backbone.pth'),
            ]),
            fusion=dict(prototypes_file='w/protos.pth'),
            pretrained='w/llm_dir'),
        load_from='w/ckpt.pth',
        resume_from='w/old.pth')
    train = {m.path: m for m in find_missing_inputs(cfg, 'train')}
    assert {
        p: (m.keys, m.kind, m.topic)
        for p, m in train.items()
    } == {
        'w/backbone.pth':
        (['model.backbone.init_cfg.1.checkpoint'], 'file', 'weights'),
        'w/protos.pth': (['model.fusion.prototypes_file'], 'file', 'weights'),
        'w/llm_dir': (['model.pretrained'], 'file or folder', 'weights'),
        'w/ckpt.pth': (['load_from'], 'file', 'checkpoint'),
        'w/old.pth': (['resume_from'], 'file', 'checkpoint'),
    }
    # A test applies no init_cfg (the checkpoint replaces it).
    test = [m.path for m in find_missing_inputs(cfg, 'test')]
    assert test == ['w/protos.pth', 'w/llm_dir', 'w/ckpt.pth']


def test_audio_manifest_and_tokenizer():
    cfg = _cfg(
        train_dataloader=dict(
            dataset=dict(
                type='AudioChatDataset',
                manifest='data/audio_demo/train.jsonl',
                tokenizer='ckpt/tokenizer')))
    missing = find_missing_inputs(cfg, 'train')
    assert [(m.path, m.kind, m.topic, m.keys) for m in missing] == [
        ('data/audio_demo/train.jsonl', 'file', 'audio_manifest',
         ['train_dataloader.dataset.manifest']),
        ('ckpt/tokenizer', 'folder', 'tokenizer',
         ['train_dataloader.dataset.tokenizer']),
    ]
    message = describe_missing_inputs(missing, cfg, 'tools/train.py cfg.py',
                                      'cfg.py')
    # The demo writer makes exactly the missing manifest.
    assert 'tools/make_audio_demo_data.py data/audio_demo\n' in message
    assert 'configs/audio/dualffn_tiny_lora_cpu.py' in message
    cfg.train_dataloader.dataset.tokenizer = 'byte'
    assert [m.topic
            for m in find_missing_inputs(cfg, 'train')] == ['audio_manifest']


def test_unknown_command_is_refused():
    with pytest.raises(ValueError, match="'train', 'test'"):
        find_missing_inputs(_cfg(), 'val')


def test_message_for_coco_says_layout_download_overrides_and_quick_start():
    cfg = load_config(H100)
    message = describe_missing_inputs(
        find_missing_inputs(cfg, 'train'), cfg,
        'tools/train.py configs/psalm_yolo_h100.py',
        'configs/psalm_yolo_h100.py')
    for text in [
            f'relative paths are from {os.getcwd()}',
            'data/coco/annotations/instances_train2017.json  [file]',
            'data/coco/train2017/  [folder]',
            'The COCO folder data/coco does not exist.',
            f"bash {osp.join(REPO, 'tools', 'download_coco.sh')} data/coco\n",
            'train_dataloader.dataset.data_root=/path/to/coco/ \\',
            'val_dataloader.dataset.data_root=/path/to/coco/ \\',
            'val_evaluator.ann_file=/path/to/coco/annotations/'
            'instances_val2017.json\n',
            'configs/psalm_yolo/psalm_yolo_n_shapes_cpu.py',
    ]:
        assert text in message, text


def test_message_for_a_test_downloads_no_train_images_and_rtdetr_quick_start():
    cfg = load_config(
        osp.join(REPO, 'configs', 'rtdetr', 'rtdetr_r18_coco.py'))
    message = describe_missing_inputs(
        find_missing_inputs(cfg, 'test'), cfg, 'tools/test.py c.py k.pth',
        'c.py')
    assert '--no-train data/coco\n' in message
    assert 'python tools/test.py c.py k.pth --cfg-options' in message
    assert 'configs/rtdetr/rtdetr_r18_shapes_cpu.py' in message
    assert 'psalm_yolo' not in message
