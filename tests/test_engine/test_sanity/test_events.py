"""The event log: findings recorded one JSON object per line."""
import json

import pytest

from engine_plugins.engine.sanity.errors import NoUpdateError
from engine_plugins.engine.sanity.events import SanityEvents


def test_findings_are_written_logged_and_raised(tmp_path):
    events = SanityEvents(str(tmp_path))
    events.iteration = 4
    assert events.warning('zero_weight', 'w', check='zero_term', once='k')
    assert not events.warning('zero_weight', 'w again', once='k')
    events.record('update', ratios=dict(head=float('inf')))
    with pytest.raises(NoUpdateError) as err:
        events.error(
            NoUpdateError, 'nothing moved', check='update_size', lr=0.0)
    assert err.value.cause == 'no_update'
    lines = [
        json.loads(line)
        for line in (tmp_path / 'sanity.jsonl').read_text().splitlines()
    ]
    assert lines == [
        dict(
            kind='warning',
            iter=4,
            cause='zero_weight',
            check='zero_term',
            message='w',
            data={}),
        dict(kind='update', iter=4, ratios=dict(head='inf')),
        dict(
            kind='error',
            iter=4,
            cause='no_update',
            check='update_size',
            message='nothing moved',
            data=dict(lr=0.0)),
    ]


def test_other_ranks_write_their_own_file(tmp_path):
    SanityEvents(str(tmp_path), rank=1).info('frozen', 'note')
    assert (tmp_path / 'sanity.rank1.jsonl').is_file()
    assert not (tmp_path / 'sanity.jsonl').exists()
