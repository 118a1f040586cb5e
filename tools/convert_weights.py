"""Convert another framework's weights into an engine_plugins checkpoint.

One subcommand per source: ``add_<source>_parser(subparsers)`` adds its
arguments and ``set_defaults(func=run_<source>)``; ``func`` returns the
exit code and raises ``WeightConversionError`` for a refused input (exit
code 2). The output is an mmengine checkpoint
(``{'state_dict': ..., 'meta': ...}``, with the per-tensor checksums the
loader verifies) to use as ``load_from``. Keys the source does not provide
(a new class head) keep their initial values: the fine-tune configs'
``ReinitClassHeadHook`` says so and loads the rest strictly; with another
config, add that hook or load non-strictly.

Example:
    python tools/convert_weights.py ultralytics yolov8n.pt \\
        work_dirs/yolov8n_psalm.pth --trust-pickle
    python tools/train.py configs/psalm_yolo/psalm_yolo_n_finetune_custom.py \\
        --cfg-options load_from=work_dirs/yolov8n_psalm.pth
    python tools/convert_weights.py hf-rtdetr rtdetr_r18vd/ \\
        work_dirs/rtdetr_r18vd.pth
    # then the printed --cfg-options with load_from=...
"""
import argparse
import dataclasses
import glob
import os
import os.path as osp
import sys
from typing import Callable

# From a clone, use the clone's package even if another copy is installed.
_REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
if osp.isdir(osp.join(_REPO, 'engine_plugins')):
    sys.path.insert(0, _REPO)

import torch  # noqa: E402
from mmengine.config import Config, DictAction  # noqa: E402
from mmengine.registry import init_default_scope  # noqa: E402

import engine_plugins.models  # noqa: E402,F401  (registers the models)
from engine_plugins.engine.checkpoints.state_checksums import \
    add_checksums  # noqa: E402
from engine_plugins.models.rtdetr import hf_weights  # noqa: E402
from engine_plugins.models.yolo.ultralytics_weights import (  # noqa: E402
    WeightConversionError, config_overrides, convert_ultralytics_state_dict,
    format_cfg_options, infer_yolov8_size, read_ultralytics_weights)
from engine_plugins.registry import MODELS  # noqa: E402

PSALM_YOLO_CONFIGS = osp.join(_REPO, 'configs', 'psalm_yolo')
RTDETR_CONFIGS = osp.join(_REPO, 'configs', 'rtdetr')
# The model-only RT-DETR config the hf-rtdetr default target starts from.
RTDETR_BASE_MODEL = osp.join(RTDETR_CONFIGS, 'rtdetr_r50_model.py')
# What YOLOv8 is trained on: RGB scaled to [0, 1].
ULTRALYTICS_INPUT = dict(mean=[0.0] * 3, std=[255.0] * 3)


def add_ultralytics_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        'ultralytics',
        help='ultralytics YOLOv8 detection weights -> PSALM YOLO',
        description='Convert the backbone, neck and box branch of an '
        'ultralytics YOLOv8 detection model (n/s/m/l/x; yolov8.yaml P3-P5 '
        'or yolov8-p2.yaml P2-P5) into PSALM YOLO. PSALM\'s class side '
        '(fusion, prototype branch) stays at its initial values.')
    parser.add_argument(
        'src',
        help='an ultralytics .pt (pickled DetectionModel: needs '
        '--trust-pickle and ultralytics importable) or a file with its '
        'state dict')
    parser.add_argument('out', help='the checkpoint to write (.pth)')
    parser.add_argument(
        '--config',
        help='build the target model from this config (default: a PSALM '
        'YOLO of the size the weights have)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override keys of --config (or of the default model), e.g. '
        'model.fusion.num_classes=3')
    parser.add_argument(
        '--trust-pickle',
        action='store_true',
        help='allow unpickling the Python objects of an ultralytics .pt '
        '(this runs code from the file: only for files you trust)')
    parser.set_defaults(func=run_ultralytics)


def add_hf_rtdetr_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        'hf-rtdetr',
        help='transformers RTDetrForObjectDetection -> our RTDETR',
        description='Convert a transformers RT-DETR (RTDetrForObjectDetection'
        ': rtdetr_r18vd / r34vd / r50vd / r101vd or any save_pretrained '
        'folder of it) into our RTDETR: backbone (ResNetVd), hybrid '
        'encoder, query selection, decoder and heads. Prints the config '
        'overrides the weights need.')
    parser.add_argument(
        'src',
        help='a save_pretrained folder: config.json and model.safetensors '
        '(or pytorch_model.bin, or shards with their index)')
    parser.add_argument('out', help='the checkpoint to write (.pth)')
    parser.add_argument(
        '--config',
        help='build the target model from this config (default: '
        'configs/rtdetr/rtdetr_r50_model.py with the weights\' overrides)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override keys of --config, e.g. model.backbone.depth=18')
    parser.add_argument(
        '--num-classes',
        type=int,
        help='fine-tune on this many classes: the class layers of the '
        'weights are dropped and ours left at their initial values')
    parser.set_defaults(func=run_hf_rtdetr)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Convert weights of another framework into an '
        'engine_plugins checkpoint (load_from=OUT)')
    subparsers = parser.add_subparsers(
        dest='source', required=True, metavar='SOURCE')
    add_ultralytics_parser(subparsers)
    add_hf_rtdetr_parser(subparsers)
    return parser.parse_args(argv)


def reinits_class_head(cfg) -> bool:
    """Whether a config starts a checkpoint's missing or resized class head
    afresh (``ReinitClassHeadHook``): then the class count needs no
    override and the load stays strict."""
    return any(
        isinstance(hook, dict) and hook.get('type') == 'ReinitClassHeadHook'
        for hook in cfg.get('custom_hooks', None) or [])


def matching_configs(size, folder: str = PSALM_YOLO_CONFIGS):
    """``(config path, overrides it needs)`` for each PSALM YOLO config in
    ``folder``, those that fit as they are first."""
    rows = []
    for path in sorted(glob.glob(osp.join(folder, '*.py'))):
        try:
            model = Config.fromfile(path).get('model', None)
            if model is None:
                continue
            rows.append((path, config_overrides(size, model)))
        except Exception:  # a config that does not load or is no PSALMYOLO
            continue
    return sorted(rows, key=lambda row: len(row[1]))


def _print_config_matches(rows: list, family: str, options: dict,
                          format_options: Callable[[dict], str]) -> list:
    """Print and return ``rows``, the ``(config path, overrides it needs)``
    of :func:`matching_configs` or :func:`rtdetr_matching_configs`: the
    configs that fit as they are, else the first three with their
    overrides; then ``options``, which any ``family`` config needs.
    ``format_options`` writes overrides as ``--cfg-options`` words."""
    fits = [path for path, needed in rows if not needed]
    for path in fits:
        print(f'  fits {osp.relpath(path)}')
    if not fits:
        print('  no config fits as it is; with overrides:')
        for path, needed in rows[:3]:
            print(f'    {osp.relpath(path)} --cfg-options '
                  f'{format_options(needed)}')
    print(f'  any {family} config with: --cfg-options '
          f'{format_options(options)}')
    return rows


def _target_model_cfg(args, size) -> dict:
    """The model config to convert into: --config (with --cfg-options),
    checked against the weights, or one of the weights' size."""
    if args.config is None:
        cfg = Config(dict(model=size.model_cfg()))
        source = 'the default model'
    else:
        cfg = Config.fromfile(args.config)
        source = args.config
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    needed = config_overrides(size, cfg.model)
    if needed:
        raise WeightConversionError(
            f'{source} does not build the model of the weights '
            f'({size.describe()}); add --cfg-options '
            f'{format_cfg_options(needed)}')
    preprocessor = cfg.model.get('data_preprocessor', {})
    differs = []
    for key in ('mean', 'std'):
        value = preprocessor.get(key)
        if value is None or [float(v)
                             for v in value] != ULTRALYTICS_INPUT[key]:
            differs.append(f'{key}={value}')
    if not preprocessor.get('bgr_to_rgb', False):
        differs.append('bgr_to_rgb=False')
    if differs:
        print(f'warning: {source} feeds the model differently from '
              f'YOLOv8 (RGB / 255): {", ".join(differs)}; the converted '
              'backbone will see other inputs than it was trained on')
    return cfg.model


def run_ultralytics(args: argparse.Namespace) -> int:
    state, info = read_ultralytics_weights(args.src, args.trust_pickle)
    size = infer_yolov8_size(state)
    print(f'{args.src}: {size.describe()}')
    _print_config_matches(
        matching_configs(size), 'PSALM YOLO', size.cfg_options(),
        format_cfg_options)
    init_default_scope('engine_plugins')
    model = MODELS.build(_target_model_cfg(args, size))
    result = convert_ultralytics_state_dict(state, model.state_dict())
    result.source_info.update(info)
    print(result.summary())
    _write_checkpoint(
        dict(
            state_dict=result.state_dict,
            meta=result.meta(source=osp.basename(args.src))), args.out)
    finetune = [
        path for path, needed in matching_configs(size)
        if not needed and reinits_class_head(Config.fromfile(path))
    ]
    config = osp.relpath(finetune[0]) if finetune else 'CONFIG'
    print(f'wrote {args.out}; fine-tune with: python tools/train.py {config} '
          f'--cfg-options load_from={args.out} (ReinitClassHeadHook starts '
          f'the {len(result.new)} class-side tensors afresh and loads the '
          'rest strictly; a config without that hook needs --non-strict)')
    return 0


def rtdetr_matching_configs(arch, folder: str = RTDETR_CONFIGS):
    """``(config path, overrides it needs)`` for each RT-DETR config in
    ``folder`` that trains (has a train_dataloader), those that need
    fewest first."""
    rows = []
    for path in sorted(glob.glob(osp.join(folder, '*.py'))):
        try:
            cfg = Config.fromfile(path)
            model = cfg.get('model', None)
            if model is None or model.get('type') != 'RTDETR' or \
                    'train_dataloader' not in cfg:
                continue
            needed = hf_weights.config_overrides(arch, model)
            if model.get('backbone', {}).get('init_cfg') is not None:
                needed['model.backbone.init_cfg'] = None
            rows.append((path, needed))
        except Exception:  # a config that does not load
            continue
    return sorted(rows, key=lambda row: len(row[1]))


def _rtdetr_target_cfg(args, arch) -> dict:
    """The model config to convert into: --config (with --cfg-options),
    checked against the weights, or the base model config with the
    weights' overrides."""
    if args.config is None:
        cfg = hf_weights.default_model_cfg(arch, RTDETR_BASE_MODEL)
        source = 'the default model'
    else:
        cfg = Config.fromfile(args.config)
        source = args.config
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    needed = hf_weights.config_overrides(arch, cfg.model)
    if needed:
        raise WeightConversionError(
            f'{source} does not build the model of the weights '
            f'({arch.describe()}); add --cfg-options '
            f'{hf_weights.format_cfg_options(needed)}')
    return cfg.model


def _write_checkpoint(checkpoint: dict, out: str) -> None:
    """Save with checksums, written next to ``out`` and renamed: an
    interrupted run leaves no truncated checkpoint under the final name."""
    add_checksums(checkpoint)
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    partial = f'{out}.partial'
    torch.save(checkpoint, partial)
    os.replace(partial, out)


def run_hf_rtdetr(args: argparse.Namespace) -> int:
    state, config, info = hf_weights.read_hf_rtdetr(args.src)
    arch = hf_weights.arch_from_hf_config(config)
    print(f'{args.src}: {arch.describe()}')
    classes = info['classes']
    print(f'  classes: {", ".join(classes[:5])}' +
          (f', ... ({len(classes)})' if len(classes) > 5 else ''))
    for note in arch.notes:
        print(f'note: {note}')
    new_classes = args.num_classes is not None
    target_arch = dataclasses.replace(
        arch, num_classes=args.num_classes) if new_classes else arch
    rows = _print_config_matches(
        rtdetr_matching_configs(target_arch), 'RT-DETR',
        target_arch.cfg_options(), hf_weights.format_cfg_options)
    init_default_scope('engine_plugins')
    model = MODELS.build(_rtdetr_target_cfg(args, target_arch))
    result = hf_weights.convert_hf_rtdetr_state_dict(
        state, arch, model.state_dict(), new_class_heads=new_classes)
    result.source_info.update(info)
    print(result.summary())
    meta = result.meta(source=osp.basename(osp.normpath(args.src)))
    meta['cfg_options'] = target_arch.cfg_options()
    _write_checkpoint(dict(state_dict=result.state_dict, meta=meta), args.out)
    # Fine-tune configs keep their own classes (their ReinitClassHeadHook
    # starts the class head afresh); the others are suggested for using
    # the checkpoint with its own classes.
    finetune = [(p, n) for p, n in rows if reinits_class_head(
        Config.fromfile(p))]
    plain = [row for row in rows if row not in finetune]
    if args.config is not None:
        suggested, needed = args.config, dict(args.cfg_options or {})
    elif plain:
        suggested, needed = osp.relpath(plain[0][0]), plain[0][1]
    else:
        suggested, needed = 'CONFIG', target_arch.cfg_options()
    strict = ' --non-strict' if new_classes else ''
    options = hf_weights.format_cfg_options(needed)
    print(f'wrote {args.out}' +
          (f'; its {len(result.new)} new tensors keep their initial values'
           if new_classes else ''))
    print('train or test with it (tools/test.py takes the same): python '
          f'tools/train.py {suggested}{strict} --cfg-options '
          f'load_from={args.out} {options}'.rstrip())
    if finetune:
        path, needed = finetune[0]
        needed = {
            k: v
            for k, v in needed.items() if not k.endswith('num_classes')
        }
        print('fine-tune on your own classes (ReinitClassHeadHook starts '
              'the class head afresh and loads the rest strictly): python '
              f'tools/train.py {osp.relpath(path)} --cfg-options '
              f'load_from={args.out} '
              f'{hf_weights.format_cfg_options(needed)}'.rstrip())
    return 0


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        return args.func(args)
    except (WeightConversionError, FileNotFoundError) as exc:
        print(f'convert_weights {args.source}: error: {exc}', file=sys.stderr)
        return 2


if __name__ == '__main__':
    sys.exit(main())
