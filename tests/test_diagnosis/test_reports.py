"""The reports of real runs: each seed failure of the broken zoo, a sample
of the mutation benchmark, clean runs; the HTML rendered headlessly."""
import base64
import os
import re
import shutil
import subprocess

import pytest

import tests.broken_zoo  # noqa: F401  (registers the zoo)
from benchmarks.bench_diagnosis import run_case
from benchmarks.mutations.catalog import all_cases
from engine_plugins.diagnosis import diagnose_work_dir
from tests.test_broken_zoo import BOXES, _run

ZOO = [
    ('seed000', dict(type='ZooUndecodedHead'), BOXES, {}, 'dead_loss'),
    ('seed001', dict(type='ZooDFLHead'), BOXES, {}, 'target_units'),
    ('seed002', dict(type='ZooAudioLM'), dict(type='ZooTokenDataset'),
     dict(collate='zoo_signature_filter_collate'), 'batch_contract'),
    ('seed003', dict(type='ZooQueryDetector',
                     data_preprocessor=dict(type='ZooDetPreprocessor',
                                            convert=False)),
     dict(type='ZooBoxDataset', as_data_samples=True),
     dict(collate='pseudo_collate'), 'box_format'),
    ('seed003_background', dict(type='ZooQueryDetector'),
     dict(type='ZooBoxDataset', as_data_samples=True, label=3),
     dict(collate='pseudo_collate'), 'label_range'),
    ('seed004', dict(type='ZooCovarianceNet'), dict(type='ZooSignalDataset'),
     dict(amp=True), 'nonfinite_backward'),
    ('leaf', dict(type='ZooLeafLoss'), dict(type='ZooVectorDataset'), {},
     'dead_loss'),
]


@pytest.mark.slow
@pytest.mark.parametrize('name, model, data, kwargs, cause', ZOO)
def test_each_seed_failure_is_the_top_cause(tmp_path, name, model, data,
                                            kwargs, cause):
    with pytest.raises(Exception):
        _run(tmp_path / 'work', model, data, **kwargs)
    diag, html_path, md_path = diagnose_work_dir(str(tmp_path / 'work'))
    assert diag.causes[0].cause == cause, diag.causes
    assert diag.causes[0].severity == 'error'
    with open(md_path) as f:
        markdown = f.read()
    assert markdown.index('## Verdict') < markdown.index('## Timeline')
    assert f'[{cause}, error at iteration' in markdown


@pytest.mark.slow
def test_clean_twins_are_healthy(tmp_path):
    for i, (model, data) in enumerate([
        (dict(type='ZooUndecodedHead', broken=False), BOXES),
        (dict(type='ZooLeafLoss', broken=False),
         dict(type='ZooVectorDataset')),
    ]):
        _run(tmp_path / str(i), model, data)
        diag, _, _ = diagnose_work_dir(str(tmp_path / str(i)))
        assert diag.healthy, diag.causes


MUTANTS = ('yolo/loss_copy_pixel_dfl_targets', 'rtdetr/lr_x1000',
           'audio/peft_label_filter', 'ris/half_labels_region_off',
           'toy/nan_sample_at_5', 'yolo/clean')


@pytest.mark.slow
def test_a_sample_of_mutants_and_a_clean_detector_run(tmp_path):
    cases = {c.name: c for c in all_cases('main')}
    for name in MUTANTS:
        case = cases[name]
        run_case(case, str(tmp_path), 900)
        work = tmp_path / name.replace('/', '__') / 'work'
        diag, html_path, _ = diagnose_work_dir(str(work))
        if case.category == 'clean':
            assert diag.healthy, (name, diag.causes)
            continue
        assert diag.causes[0].cause in case.accepted, (name, diag.causes)
    assert os.path.getsize(html_path) > 20000


def _chromium():
    return shutil.which('chromium') or shutil.which('chromium-browser')


@pytest.mark.slow
@pytest.mark.skipif(_chromium() is None,
                    reason='Chromium is not installed (tools/install.sh '
                    'installs it where apt-get is available)')
def test_the_html_report_renders_with_its_plots(tmp_path):
    _run(tmp_path / 'work', dict(type='ZooDFLHead', broken=False), BOXES)
    _, html_path, _ = diagnose_work_dir(str(tmp_path / 'work'))
    with open(html_path) as f:
        page = f.read()
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(images) >= 3
    for data in images:
        assert base64.b64decode(data)[:8] == b'\x89PNG\r\n\x1a\n'
    shot = tmp_path / 'shot.png'
    dom = subprocess.run([
        _chromium(), '--headless', '--no-sandbox', '--disable-gpu',
        '--disable-background-networking', '--no-first-run',
        f'--user-data-dir={tmp_path / "profile"}', '--dump-dom',
        f'file://{html_path}'
    ], capture_output=True, text=True, timeout=120).stdout
    # Every embedded plot is an <img> the browser decoded into the page.
    assert dom.count('<img') == len(images)
    subprocess.run([
        _chromium(), '--headless', '--no-sandbox', '--disable-gpu',
        '--disable-background-networking', '--no-first-run',
        f'--user-data-dir={tmp_path / "profile"}',
        f'--screenshot={shot}', '--window-size=1200,2400',
        f'file://{html_path}'
    ], capture_output=True, timeout=120)
    from PIL import Image
    with Image.open(shot) as img:
        colors = img.convert('RGB').getcolors(maxcolors=1 << 20)
    # A page with plots has thousands of colours; a blank one has few.
    assert colors is None or len(colors) > 500
