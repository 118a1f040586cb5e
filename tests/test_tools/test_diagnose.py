"""tools/diagnose.py: the command line."""
from tests.test_tools.test_train import _train
from tests.tool_loading import load_tool

diagnose_tool = load_tool('diagnose')


def test_a_missing_work_dir_is_a_clear_error(tmp_path, capsys):
    assert diagnose_tool.main([str(tmp_path / 'nope')]) == 2
    assert 'work dir not found' in capsys.readouterr().err


def test_a_finished_run_and_its_checkpoint(tmp_path, capsys):
    _train(tmp_path)  # 8 iterations, checkpoints at 4 and 8
    capsys.readouterr()  # the training log
    out = tmp_path / 'report' / 'r.html'
    assert diagnose_tool.main([
        str(tmp_path), '--checkpoint',
        str(tmp_path / 'iter_8.pth'), '--out',
        str(out)
    ]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith('verdict: healthy')
    markdown = (tmp_path / 'report' / 'r.md').read_text()
    # Every weight moved between the first checkpoint and the last.
    assert '- **never updated since iteration 4**: none' in markdown
    assert '- **non-finite weights by module**: {}' in markdown
    assert out.is_file()
