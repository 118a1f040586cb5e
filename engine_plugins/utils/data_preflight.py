"""The files and folders a command will read, checked before the Runner is
built.

Without this check a missing dataset stops the run deep inside the
Runner's dataset construction, one file at a time, as a long traceback.
:func:`find_missing_inputs` walks the parts of the config the command will
use and returns every missing local path with the config keys that set
it; :func:`describe_missing_inputs` turns them into one message that also
says what the expected layout is, how to get the data and what to run
meanwhile.

What is checked, per command:

* ``train``: ``train_dataloader``; ``val_dataloader`` and
  ``val_evaluator`` when a validation loop is configured (``val_cfg``);
  ``load_from`` (and the legacy ``resume_from``); in ``model``, the
  ``checkpoint`` of every ``init_cfg`` of type ``Pretrained``, every
  ``pretrained`` and ``prototypes_file``.
* ``test``: ``test_dataloader``, ``test_evaluator``, ``load_from`` (the
  checkpoint), and in ``model`` every ``pretrained`` and
  ``prototypes_file`` (``init_cfg`` is applied by training only).

Datasets are found inside wrappers (``dataset=``, ``datasets=``). By class:
mmengine ``BaseDataset`` subclasses (mmdet's ``CocoDataset``, ours) need
``data_root`` + ``ann_file`` and ``data_root`` + each ``data_prefix``
folder; ``AudioChatDataset`` its ``manifest`` and a ``tokenizer``
directory other than ``'byte'``. ``DemoShapesDataset`` writes its data on
first use and ``RISDoADataset`` simulates it, so neither is checked, and
nor is any path under a ``DemoShapesDataset``'s ``data_root`` (e.g. the
evaluator's ``ann_file``). Remote paths (``s3://``, ``http://``,
``torchvision://``, ... or a non-local ``backend_args``) are not checked.
"""
import os
import os.path as osp
import re
import textwrap
from dataclasses import dataclass, field
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

#: A config key and the value it holds, e.g.
#: ``('train_dataloader.dataset.data_root', 'data/coco/')``.
Setting = Tuple[str, str]

COMMANDS = ('train', 'test')

_SCHEME = re.compile(r'^[A-Za-z][A-Za-z0-9+.-]*://')
_COCO2017_FILE = re.compile(
    r'^(instances|captions|person_keypoints|panoptic)_(train|val)2017\.json$')
_COCO2017_FOLDER = re.compile(r'^(train|val|test)2017$')
_PRETRAINED_TYPES = ('Pretrained', 'PretrainedInit')

# COCO 2017 as the configs expect it under data_root.
COCO2017_LAYOUT = (
    ('annotations/instances_train2017.json', ''),
    ('annotations/instances_val2017.json', ''),
    ('train2017/', '118,287 images'),
    ('val2017/', '5,000 images'),
)

_REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


@dataclass
class MissingInput:
    """A local file or folder that the command needs and that does not
    exist.

    Attributes:
        path: The path as the run would open it (relative to the working
            directory unless absolute).
        kind: ``'file'``, ``'folder'`` or ``'file or folder'``.
        topic: What it is, which selects the advice: ``'coco2017'``,
            ``'coco'`` (other COCO-format data), ``'dataset'``,
            ``'audio_manifest'``, ``'tokenizer'``, ``'checkpoint'`` or
            ``'weights'``.
        sources: Each way the config sets it: the keys, with their values,
            whose join is ``path`` (data_root first).
    """

    path: str
    kind: str
    topic: str
    sources: List[Tuple[Setting, ...]] = field(default_factory=list)

    @property
    def keys(self) -> List[str]:
        """``'a.data_root + a.ann_file'`` for each source."""
        return [' + '.join(key for key, _ in src) for src in self.sources]


def is_local_path(path: str, backend_args: Optional[Mapping] = None) -> bool:
    """Whether ``path`` is a local path this check can stat: no URL scheme
    (``s3://``, ``torchvision://``, ``https://``, ...) and a local file
    backend."""
    if _SCHEME.match(path):
        return False
    backend = (backend_args or {}).get('backend', 'local')
    return backend in (None, 'local')


def _exists(path: str, kind: str) -> bool:
    if kind == 'file':
        return osp.isfile(path)
    if kind == 'folder':
        return osp.isdir(path)
    return osp.exists(path)


def _join(root: str, path: str) -> str:
    # mmengine's BaseDataset._join_prefix: a relative path joins data_root.
    if root and not osp.isabs(path) and not _SCHEME.match(path):
        return osp.join(root, path)
    return path


def _coco_topic(path: str, kind: str, coco_format: bool) -> str:
    name = osp.basename(osp.normpath(path))
    pattern = _COCO2017_FILE if kind == 'file' else _COCO2017_FOLDER
    if pattern.match(name):
        return 'coco2017'
    return 'coco' if coco_format else 'dataset'


class _Finder:
    """Walks the used parts of a config and records the missing paths."""

    def __init__(self, cfg: Mapping, registry, labels: Mapping[str,
                                                               str]) -> None:
        self.cfg = cfg
        self.registry = registry
        self.labels = labels
        self.found: Dict[str, MissingInput] = {}
        self.generated_roots: List[str] = []

    def need(self,
             path,
             kind: str,
             topic: str,
             source: Tuple[Setting, ...],
             backend_args: Optional[Mapping] = None) -> None:
        if not isinstance(path, str) or not path:
            return
        if not is_local_path(path, backend_args) or _exists(path, kind):
            return
        norm = osp.normpath(osp.abspath(path))
        item = self.found.setdefault(norm, MissingInput(path, kind, topic))
        if source not in item.sources:
            item.sources.append(source)

    def _resolve(self, kind) -> Optional[type]:
        if isinstance(kind, type):
            return kind
        if not isinstance(kind, str):
            return None
        try:
            return self.registry.get(kind)
        except Exception:  # an unknown type fails, named, when it is built
            return None

    def dataset(self, dataset, where: str) -> None:
        if not isinstance(dataset, Mapping):
            return  # built already, or absent
        self.dataset(dataset.get('dataset'), f'{where}.dataset')
        children = dataset.get('datasets')
        if isinstance(children, (list, tuple)):
            for i, child in enumerate(children):
                self.dataset(child, f'{where}.datasets.{i}')
        cls = self._resolve(dataset.get('type'))
        if not isinstance(cls, type):
            return  # unknown (named when built) or a build function
        from mmdet.datasets import CocoDataset
        from mmengine.dataset import BaseDataset

        from engine_plugins.datasets import AudioChatDataset, DemoShapesDataset
        if issubclass(cls, DemoShapesDataset):
            # Writes its data to data_root on first use.
            root = dataset.get('data_root')
            if isinstance(root, str) and root:
                self.generated_roots.append(osp.normpath(osp.abspath(root)))
        elif issubclass(cls, AudioChatDataset):
            self.need(
                dataset.get('manifest'), 'file', 'audio_manifest',
                ((f'{where}.manifest', dataset.get('manifest')), ))
            tokenizer = dataset.get('tokenizer', 'byte')
            if tokenizer != 'byte':
                self.need(tokenizer, 'folder', 'tokenizer',
                          ((f'{where}.tokenizer', tokenizer), ))
        elif issubclass(cls, BaseDataset):
            self._base_dataset(dataset, where, issubclass(cls, CocoDataset))

    def _base_dataset(self, dataset: Mapping, where: str,
                      coco_format: bool) -> None:
        root = dataset.get('data_root') or ''
        root_src = ((f'{where}.data_root', root), ) if root else ()
        backend_args = dataset.get('backend_args')
        ann_file = dataset.get('ann_file') or ''
        if isinstance(ann_file, str) and ann_file:
            path = _join(root, ann_file)
            keys = root_src if path != ann_file else ()
            src = keys + ((f'{where}.ann_file', ann_file), )
            self.need(path, 'file', _coco_topic(path, 'file', coco_format),
                      src, backend_args)
        prefixes = dataset.get('data_prefix') or {}
        for name, prefix in prefixes.items():
            if not isinstance(prefix, str) or not (prefix or root):
                continue
            path = _join(root, prefix)
            keys = root_src if path != prefix else ()
            src = keys + ((f'{where}.data_prefix.{name}', prefix), )
            self.need(path, 'folder', _coco_topic(path, 'folder', coco_format),
                      src, backend_args)

    def evaluator(self, evaluator, where: str) -> None:
        if isinstance(evaluator, (list, tuple)):
            for i, metric in enumerate(evaluator):
                self.evaluator(metric, f'{where}.{i}')
            return
        if not isinstance(evaluator, Mapping):
            return
        if 'metrics' in evaluator:
            self.evaluator(evaluator['metrics'], f'{where}.metrics')
            return
        ann_file = evaluator.get('ann_file')
        if isinstance(ann_file, str) and ann_file:
            coco_format = 'coco' in str(evaluator.get('type', '')).lower()
            self.need(ann_file, 'file',
                      _coco_topic(ann_file, 'file', coco_format),
                      ((f'{where}.ann_file', ann_file), ),
                      evaluator.get('backend_args'))

    def model(self, node, where: str, with_init_cfg: bool) -> None:
        if isinstance(node, (list, tuple)):
            for i, child in enumerate(node):
                self.model(child, f'{where}.{i}', with_init_cfg)
            return
        if not isinstance(node, Mapping):
            return
        for key, value in node.items():
            at = f'{where}.{key}'
            if key == 'init_cfg':
                if with_init_cfg:
                    self._init_cfg(value, at)
            elif key == 'pretrained' and isinstance(value, str):
                self.need(value, 'file or folder', 'weights', ((at, value), ))
            elif key == 'prototypes_file' and isinstance(value, str):
                self.need(value, 'file', 'weights', ((at, value), ))
            else:
                self.model(value, at, with_init_cfg)

    def _init_cfg(self, init_cfg, where: str) -> None:
        if isinstance(init_cfg, (list, tuple)):
            for i, one in enumerate(init_cfg):
                self._init_cfg(one, f'{where}.{i}')
            return
        if isinstance(init_cfg,
                      Mapping) and init_cfg.get('type') in _PRETRAINED_TYPES:
            checkpoint = init_cfg.get('checkpoint')
            self.need(checkpoint, 'file', 'weights',
                      ((f'{where}.checkpoint', checkpoint), ))

    def checkpoint(self, key: str) -> None:
        value = self.cfg.get(key)
        self.need(value, 'file', 'checkpoint',
                  ((self.labels.get(key, key), value), ))

    def missing(self) -> List[MissingInput]:
        roots = self.generated_roots
        return [
            item for norm, item in self.found.items()
            if not any(norm == r or norm.startswith(r + os.sep) for r in roots)
        ]


def uses_val_loop(cfg: Mapping) -> bool:
    """Whether ``Runner.train`` will build the validation loop (and so its
    dataset and evaluator)."""
    return bool(cfg.get('val_cfg')) and bool(cfg.get('val_dataloader'))


def find_missing_inputs(
        cfg: Mapping,
        command: str,
        labels: Optional[Mapping[str, str]] = None) -> List[MissingInput]:
    """Every local file and folder that ``command`` will read from ``cfg``
    and that does not exist.

    Args:
        cfg: The config as the Runner will get it (after ``--cfg-options``
            and the tool's own changes).
        command: ``'train'`` or ``'test'``.
        labels: How to name a top-level key in the message, e.g.
            ``{'load_from': 'CHECKPOINT'}`` when a tool argument set it.

    Returns:
        The missing paths, in config order, one entry per path with every
        key that sets it.

    Raises:
        ValueError: ``command`` is not one of :data:`COMMANDS`.
    """
    if command not in COMMANDS:
        raise ValueError(f'command must be one of {COMMANDS}, got '
                         f'{command!r}')
    from mmengine.registry import DATASETS
    with DATASETS.switch_scope_and_registry(
            cfg.get('default_scope')) as registry:
        finder = _Finder(cfg, registry, labels or {})
        if command == 'train':
            loaders = ['train_dataloader']
            evaluators = []
            if uses_val_loop(cfg):
                loaders.append('val_dataloader')
                evaluators.append('val_evaluator')
        else:
            loaders, evaluators = ['test_dataloader'], ['test_evaluator']
        for key in loaders:
            loader = cfg.get(key)
            if isinstance(loader, Mapping):
                finder.dataset(loader.get('dataset'), f'{key}.dataset')
        for key in evaluators:
            finder.evaluator(cfg.get(key), key)
    finder.model(cfg.get('model'), 'model', command == 'train')
    finder.checkpoint('load_from')
    if command == 'train':
        finder.checkpoint('resume_from')
    return finder.missing()


# ---- the message ------------------------------------------------------------

WIDTH = 79


def wrap_text(text: str, indent: str = '') -> List[str]:
    """``text`` as lines of at most :data:`WIDTH` characters (longer words,
    e.g. config keys, stay whole), each starting with ``indent``."""
    return textwrap.wrap(
        text,
        WIDTH,
        initial_indent=indent,
        subsequent_indent=indent,
        break_long_words=False,
        break_on_hyphens=False)


def shown_path(path: str) -> str:
    """``path`` relative to the working directory when it lies below it,
    else absolute."""
    rel = osp.relpath(osp.abspath(path))
    return osp.abspath(path) if rel.startswith(os.pardir) else rel


def repo_file(rel: str) -> str:
    """A file of this repository (``tools/...``, ``configs/...``) as a
    command line from the working directory names it; ``rel`` itself when
    the package is installed without the repository."""
    path = osp.join(_REPO, rel)
    return shown_path(path) if osp.exists(path) else rel


def _display(item: MissingInput) -> str:
    path = item.path
    if item.kind == 'folder' and not path.endswith('/'):
        path += '/'
    return path


def _coco_root(item: MissingInput) -> str:
    parent = osp.dirname(osp.normpath(item.path))
    if item.kind == 'file' and osp.basename(parent) == 'annotations':
        parent = osp.dirname(parent)
    return parent or '.'


def _overrides(items: Sequence[MissingInput], root: str,
               new_root: str) -> List[str]:
    """``--cfg-options`` that move the items from ``root`` to
    ``new_root``: the data_root of a dataset whose data_root is ``root``,
    or a path key whose value lies below ``root``."""
    options: List[str] = []
    root = osp.normpath(root)
    for item in items:
        for src in item.sources:
            key, value = src[0]
            value = osp.normpath(value)
            if key.endswith('.data_root'):
                if value != root:
                    continue  # the data lies deeper: name no guess
                option = f'{key}={new_root}/'
            elif value.startswith(root + os.sep):
                option = f'{key}={new_root}/{osp.relpath(value, root)}'
            else:
                continue
            if option not in options:
                options.append(option)
    return options


def _same_file(a: str, b: str) -> bool:
    return osp.normpath(osp.abspath(a)) == osp.normpath(osp.abspath(b))


def _quick_start(cfg: Mapping, topics: Sequence[str],
                 config: str) -> List[str]:
    train = repo_file('tools/train.py')
    if {'audio_manifest', 'tokenizer'} & set(topics):
        quick = 'configs/audio/dualffn_tiny_lora_cpu.py'
        if _same_file(config, osp.join(_REPO, quick)):
            return []  # the advice above is how to start it
        return wrap_text('Meanwhile, try the audio CPU quick start (demo '
                         'data written in seconds, no download):') + [
                             f"    python "
                             f"{repo_file('tools/make_audio_demo_data.py')} "
                             'data/audio_demo',
                             f'    python {train} {repo_file(quick)}',
                         ]
    if not {'coco2017', 'coco', 'dataset'} & set(topics):
        return []
    model = cfg.get('model') or {}
    kind = str(model.get('type', '')) if isinstance(model, Mapping) else ''
    quick = ('configs/rtdetr/rtdetr_r18_shapes_cpu.py'
             if 'DETR' in kind.upper() else
             'configs/psalm_yolo/psalm_yolo_n_shapes_cpu.py')
    return wrap_text('Meanwhile, try the CPU quick start: its data is '
                     'generated on first use, no download:') + [
                         f'    python {train} {repo_file(quick)}'
                     ]


def _coco2017_advice(items: Sequence[MissingInput],
                     command_line: str) -> List[str]:
    roots: List[str] = []
    for item in items:
        root = _coco_root(item)
        if root not in roots:
            roots.append(root)
    root = roots[0]
    lines = []
    absent = [r for r in roots if not osp.isdir(r)]
    if absent:
        lines.append(f"The COCO folder {', '.join(absent)} does not exist.")
    lines.append(
        f'COCO 2017 is expected in this layout under data_root ({root}/):')
    width = max(len(f'{root}/{rel}') for rel, _ in COCO2017_LAYOUT)
    for rel, note in COCO2017_LAYOUT:
        lines.append(f'    {f"{root}/{rel}":<{width}}  {note}'.rstrip())
    # A test reads the val images only.
    needs_train = any('train2017' in item.path for item in items)
    if needs_train:
        lines += wrap_text(
            'Download it there (about 19 GiB from images.cocodataset.org: '
            'train2017.zip, val2017.zip, annotations_trainval2017.zip; '
            'resumable, MD5-checked, unpacked in place; about 38 GiB free '
            'disk while unpacking, 19 GiB after):')
    else:
        lines += wrap_text(
            'Download the val2017 images and the annotations there (about '
            '1 GiB from images.cocodataset.org; resumable, MD5-checked, '
            'unpacked in place; --no-train skips the 18 GiB train2017.zip, '
            'which this command does not read):')
    lines.append(f"    bash {repo_file('tools/download_coco.sh')} "
                 f"{'' if needs_train else '--no-train '}{root}")
    options = _overrides(items, root, '/path/to/coco')
    lines += wrap_text(f'COCO already elsewhere? Link it (ln -s '
                       f'/path/to/coco {root}) or point the config at it:')
    lines.append(f'    python {command_line} --cfg-options \\')
    for i, option in enumerate(options):
        end = ' \\' if i < len(options) - 1 else ''
        lines.append(f'        {option}{end}')
    lines += wrap_text(
        '(or set the same keys in a config that inherits this one; a new '
        "value of the top-level variable 'data_root' alone does not move "
        'the paths the base config built from it).')
    return lines


_ADVICE: Dict[str, str] = {
    'coco':
    'COCO-format data: ann_file is the COCO JSON file and data_prefix.img '
    'the image folder, both joined to data_root. Point the keys above at '
    'your files (--cfg-options KEY=PATH, or a config that inherits this '
    'one).',
    'dataset':
    'Point the dataset keys above at your files (--cfg-options KEY=PATH, or '
    'a config that inherits this one).',
    'tokenizer':
    'The tokenizer is a local Hugging Face tokenizer directory (nothing is '
    "downloaded), or 'byte' for the built-in byte tokenizer.",
    'checkpoint':
    'Checkpoints: check the path. A run saves them in its work dir (e.g. '
    'work_dirs/CONFIG_NAME/epoch_N.pth or iter_N.pth; the file '
    'last_checkpoint there names the latest).',
    'weights':
    'Pretrained weights are read from local paths (nothing is downloaded '
    'for them): fix the path, or set the key to None to start from random '
    'weights. An init_cfg checkpoint may also be torchvision://NAME, '
    'open-mmlab://NAME or an http(s) URL, which are downloaded.',
}


def _checkpoint_advice(items: Sequence[MissingInput]) -> List[str]:
    keys = {key for item in items for src in item.sources for key, _ in src}
    text = _ADVICE['checkpoint']
    if 'load_from' in keys:
        text += (' To train from the initial weights instead, set '
                 'load_from=None.')
    if 'resume_from' in keys:
        text += (" 'resume_from' is an mmcv 1.x key that mmengine ignores "
                 'even when the file exists: resume with tools/train.py '
                 '--resume CKPT (load_from=CKPT, resume=True).')
    return wrap_text(text)


def _audio_advice(items: Sequence[MissingInput]) -> List[str]:
    lines = []
    for item in items:
        if osp.basename(item.path) == 'train.jsonl':
            lines += wrap_text('Write the demo manifest there (16 samples of '
                               'text with audio codes, in seconds, no '
                               'download):')
            lines.append(
                f"    python {repo_file('tools/make_audio_demo_data.py')} "
                f'{osp.dirname(item.path) or "."}')
    lines += wrap_text(
        'For your own data, set the manifest key above to a JSONL file: '
        'one {"messages": [...]} conversation per line, audio codes in .npy '
        "files relative to it (README.md, 'Audio LM task', Data).")
    return lines


def describe_missing_inputs(missing: Sequence[MissingInput], cfg: Mapping,
                            command_line: str, config: str) -> str:
    """The part of the preflight message about ``missing``: each path with
    its kind and keys, then per kind of input the expected layout, how to
    get it and what to run meanwhile.

    Args:
        missing: :func:`find_missing_inputs`' result (not empty).
        cfg: The config (its model type selects the quick start).
        command_line: The command, up to its options, e.g.
            ``'tools/test.py CONFIG CKPT'``: the message shows how to run it
            with ``--cfg-options``.
        config: The config path as given to the tool.
    """
    lines = [f'Missing (relative paths are from {os.getcwd()}):']
    for item in missing:
        lines.append(f'  {_display(item)}  [{item.kind}]')
        lines += wrap_text(f"set by {'; '.join(item.keys)}", ' ' * 6)
    topics: List[str] = []
    for item in missing:
        if item.topic not in topics:
            topics.append(item.topic)
    for topic in topics:
        items = [item for item in missing if item.topic == topic]
        lines.append('')
        if topic == 'coco2017':
            lines += _coco2017_advice(items, command_line)
        elif topic == 'checkpoint':
            lines += _checkpoint_advice(items)
        elif topic == 'audio_manifest':
            lines += _audio_advice(items)
        else:
            lines += wrap_text(_ADVICE[topic])
    quick = _quick_start(cfg, topics, config)
    if quick:
        lines += [''] + quick
    return '\n'.join(lines)
