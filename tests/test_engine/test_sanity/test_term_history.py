"""Loss terms over the strict window."""
from engine_plugins.engine.sanity.health import HealthStat
from engine_plugins.engine.sanity.term_history import TermHistory

HealthStat('health/test_history_count', low=0.0, targets_of='loss_box')


def test_stuck_unsupervised_and_zero_terms():
    history = TermHistory()
    for step in range(3):
        history.add({
            'loss_cls': 1.0 / (step + 1),
            'loss_dfl': 10.0,
            'd0.loss_box': 0.0,
            'loss_aux': 0.0,
            'health/test_history_count': 0.0,
            'acc': 0.5,
        })
    stuck, unsupervised, zero = history.verdict()
    assert stuck == ['loss_dfl = 10']
    # 'loss_box' covers the layer-prefixed key by suffix.
    assert unsupervised == [
        'd0.loss_box (and health/test_history_count = 0)'
    ]
    assert zero == ['loss_aux']
    assert history.num_terms == 4


def test_a_zero_term_with_a_positive_target_count():
    found = TermHistory.zero_with_targets({
        'loss_box': 0.0,
        'health/test_history_count': 12.0,
        'loss_cls': 0.0,
    })
    assert found == [('loss_box', 'health/test_history_count', 12.0)]
