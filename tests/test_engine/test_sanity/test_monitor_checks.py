"""The checks of the strict window: dead, stuck and zero loss terms,
gradient coverage, optimizer coverage, update size, health statistics and
the loss dict as returned."""
import pytest
import torch
import torch.nn as nn
from mmengine.optim.scheduler import ConstantLR, LinearLR

from engine_plugins.engine import (DeadLossError, DivergenceError, HealthStat,
                                   NoGradientError, NoUpdateError,
                                   OptimizerCoverageError)
from engine_plugins.engine.sanity.errors import (HealthStatError,
                                                 LossDictError, LossRangeError)
from .harness import Engine, Net, params


def _head_sum(model, inputs):
    return dict(loss=model.head(torch.ones(1, 4)).sum())


# -- the loss dict -----------------------------------------------------------
def test_leaf_tensor_loss_is_diagnosed_before_backward():
    engine = Engine(
        Net(lambda m, x: dict(
            loss_fresh=torch.tensor(1.5, requires_grad=True))))
    with pytest.raises(DeadLossError) as err:
        engine.step()
    message = str(err.value)
    assert message.startswith(
        'loss check at iteration 1: the loss cannot train the model: '
        'loss_fresh = 1.5 is a leaf tensor, not computed from the model.')
    assert 'No inf checks were recorded' in message


def test_all_zero_terms_name_the_dead_terms():

    def zeros(model, inputs):
        out = model.head(torch.ones(1, 4)).sum()
        return dict(loss_bbox=out * 0, loss_cls=out * 0)

    with pytest.raises(DeadLossError, match='loss_bbox, loss_cls are 0.0'):
        Engine(Net(zeros)).step()


def test_detached_term_is_named_even_if_others_train():

    def detached(model, inputs):
        out = model.head(torch.ones(1, 4)).sum()
        return dict(loss_cls=out, loss_dfl=out.detach())

    with pytest.raises(
            DeadLossError,
            match='dead loss terms: loss_dfl = [-0-9.e]+ is '
            'detached from the graph'):
        Engine(Net(detached)).step()


def test_a_detached_total_after_the_strict_window_still_stops_the_run():
    # Backward would fail inside torch; the check says why instead.
    engine = Engine(
        Net(lambda m, x: dict(loss=m.head(torch.ones(1, 4)).sum().detach())),
        strict_iters=0)
    with pytest.raises(DeadLossError, match='is detached from the graph'):
        engine.step()


def test_everything_frozen_is_named_as_frozen():
    model = Net(_head_sum)
    model.requires_grad_(False)
    with pytest.raises(DeadLossError) as err:
        Engine(model).step()
    assert err.value.cause == 'frozen'
    assert 'every parameter of the model has requires_grad=False' in str(
        err.value)


@pytest.mark.parametrize(
    'losses, message',
    [({}, 'returned an empty dict'),
     (dict(acc=1.0), "none of the loss dict keys ['acc'] contains 'loss'"),
     (dict(loss_cls=0.7), "loss term 'loss_cls' is a float (0.7)")])
def test_loss_dicts_mmengine_cannot_optimise(losses, message):
    with pytest.raises(
            LossDictError,
            match=message.replace('(',
                                  r'\(').replace(')',
                                                 r'\)').replace('[', r'\[')):
        Engine(Net(lambda m, x: losses)).step()


def test_a_term_without_loss_in_its_name_warns():

    def misnamed(model, inputs):
        out = model.head(torch.ones(1, 4)).sum()
        return dict(loss_cls=out, bbox_l1=model.backbone.weight.sum())

    engine = Engine(Net(misnamed))
    engine.step()
    warning = engine.kinds('warning')[0]
    assert warning['cause'] == 'loss_dict'
    assert warning['message'].startswith(
        "loss check, iteration 1: loss dict key 'bbox_l1' carries gradients "
        "but has no 'loss' in its name")


# -- gradients ---------------------------------------------------------------
def test_zero_coverage_reports_modules():
    def flat(model, inputs):
        return dict(loss=(model.head(torch.ones(1, 4)) * 0).sum() + 1.0)

    engine = Engine(Net(flat))
    with pytest.raises(NoGradientError) as err:
        engine.step()
    assert str(err.value).startswith(
        'iteration 1: 0/2 parameters have non-zero gradients; no grad: '
        'backbone.* (all), head.* (all)')


def test_a_loss_flat_in_every_weight_is_a_dead_loss():
    # round() has a zero derivative: the loss has a graph, a value, and an
    # exactly-zero gradient for every weight.
    def rounded(model, inputs):
        feats = model.backbone(torch.ones(1, 3))
        out = model.head(torch.cat([feats, feats], 1))
        return dict(loss=((torch.round(out * 2) / 2 - 0.3)**2).sum())

    with pytest.raises(DeadLossError) as err:
        Engine(Net(rounded)).step()
    assert str(err.value).startswith(
        'iteration 1: every gradient is exactly 0 (2 parameters: '
        'backbone.* (all), head.* (all)) although the loss is computed from '
        'them: the loss is flat in the weights.')


def test_partial_coverage_warns_zero_grad_informs_frozen_is_silent():
    engine = Engine(Net(_head_sum))
    engine.step()
    assert engine.kinds('warning')[0]['message'] == (
        'iteration 1: 1/2 parameters have non-zero gradients; no grad: '
        'backbone.* (all) (parameters outside the graph: unused modules, or '
        'a branch the forward pass skips)')

    def times_zero(model, inputs):
        feats = model.backbone(torch.ones(1, 3))
        return dict(
            loss=model.head(torch.ones(1, 4)).sum() + (feats * 0).sum())

    engine = Engine(Net(times_zero))
    engine.step()
    assert not engine.kinds('warning')
    assert engine.kinds('info')[0]['message'].startswith(
        'iteration 1: 1/2 parameters have non-zero gradients; zero grad: '
        'backbone.* (all) (in the graph, but nothing flowed back')

    model = Net(_head_sum)
    model.backbone.weight.requires_grad_(False)
    engine = Engine(model)
    engine.step()
    assert not engine.kinds('warning') and not engine.kinds('info')


# -- stuck and zero terms over the strict window ------------------------------
def test_a_term_stuck_at_a_clamp_stops_the_run_at_the_window_end():

    def clamped(model, inputs):
        dfl = (model.head.weight.sum() + 100).clamp(max=10.0)
        return dict(loss_cls=model.backbone.weight.sum(), loss_dfl=dfl)

    engine = Engine(Net(clamped), strict_iters=3)
    engine.step()
    engine.step()
    with pytest.raises(LossRangeError) as err:
        engine.step()
    assert str(err.value).startswith(
        'loss check at iteration 3: loss_dfl = 10 on each of the first 3 '
        'iterations: a term that does not change from batch to batch gives '
        'no gradient')


def test_zero_terms_warn_naming_missing_targets_when_declared():
    targets = HealthStat('health/test_targets', low=0.0, targets_of='loss_b')

    def zero_b(model, inputs):
        targets.publish(torch.tensor(0.0))
        return dict(
            loss_a=model.head(torch.ones(1, 4)).sum(),
            loss_b=model.backbone.weight.sum() * 0)

    engine = Engine(Net(zero_b), strict_iters=2)
    engine.step()
    engine.step()
    warning = engine.kinds('warning')[-1]
    assert warning['cause'] == 'label_mask'
    assert warning['message'].startswith(
        'loss check at iteration 2: loss_b (and health/test_targets = 0) = '
        '0.0 on each of the first 2 iterations: the term has no supervised '
        'targets')
    assert len(engine.kinds('warning')) == 1  # not also a zero weight

    def zero_weight(model, inputs):
        return dict(
            loss_a=model.head(torch.ones(1, 4)).sum(),
            loss_c=model.backbone.weight.sum() * 0)

    engine = Engine(Net(zero_weight), strict_iters=2)
    engine.step()
    engine.step()
    warning = engine.kinds('warning')[-1]
    assert warning['cause'] == 'zero_weight'
    assert 'loss_c = 0.0 on each of the first 2 iterations' in \
        warning['message']


# -- health statistics --------------------------------------------------------
def test_health_statistic_out_of_range_raises_then_warns():
    stat = HealthStat(
        'health/test_iou',
        low=0.1,
        high=1.0,
        cause='box_format',
        meaning='boxes in different frames')
    value = dict(iou=0.02, count=3.0)

    def published(model, inputs):
        stat.publish(torch.tensor(value['iou'] * 3), count=value['count'])
        return _head_sum(model, inputs)

    engine = Engine(Net(published), strict_iters=1, interval=2)
    with pytest.raises(HealthStatError) as err:
        engine.step()
    assert err.value.cause == 'box_format'
    assert str(err.value) == (
        'health check, iteration 1: health/test_iou = 0.02 is outside its '
        'range [0.1, 1]: boxes in different frames')
    engine = Engine(Net(published), strict_iters=0, interval=2)
    engine.step()  # not a checked iteration
    assert not engine.kinds('warning')
    engine.step()
    health = [e for e in engine.kinds('warning') if e['check'] == 'health']
    assert health[0]['data']['stat'] == 'health/test_iou'
    # A step whose count is 0 measured nothing: not checked.
    value.update(count=0.0)
    engine = Engine(Net(published), strict_iters=1)
    engine.step()
    assert not engine.kinds('error')


def test_published_statistics_join_the_logged_losses():
    stat = HealthStat('health/test_logged', low=0.0)

    def published(model, inputs):
        stat.publish(torch.tensor(6.0), count=4)
        stat.publish(torch.tensor(2.0), count=4)
        return _head_sum(model, inputs)

    engine = Engine(Net(published))
    log_vars = engine.step()
    # (6 + 2) / (4 + 4)
    assert float(log_vars['health/test_logged']) == 1.0
    # Not summed into the loss: no 'loss' in the name.
    assert set(log_vars) == {'loss', 'health/test_logged'}
    assert float(log_vars['loss']) != float(log_vars['health/test_logged'])


# -- update size --------------------------------------------------------------
def test_lr_zero_in_the_optimizer_stops_at_iteration_1():
    engine = Engine(Net(_head_sum), lr=0.0, update_iters=3)
    with pytest.raises(NoUpdateError) as err:
        engine.step()
    assert str(err.value).startswith(
        'update check at iteration 1: the optimizer step changed no weight: '
        'the optimizer lr is 0 in every param group')


def test_a_scheduler_at_zero_stops_at_iteration_2_a_warm_up_from_0_not():
    model = Net(_head_sum)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    schedulers = [ConstantLR(optimizer, factor=0.0, end=100)]
    engine = Engine(
        model, optimizer=optimizer, update_iters=3, schedulers=schedulers)
    engine.step()  # a warm-up may start at 0
    with pytest.raises(
            NoUpdateError,
            match='a param_scheduler holds the '
            r'learning rate at 0 \(base lr 0.1\)'):
        engine.step()

    # A warm-up from exactly 0 (mmengine's LinearLR cannot start at 0; a
    # custom schedule can): lr 0, then 0.05, 0.1.
    model = Net(_head_sum)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    engine = Engine(model, optimizer=optimizer, update_iters=3)
    for lr in (0.0, 0.05, 0.1):
        optimizer.param_groups[0].update(lr=lr, initial_lr=0.1)
        engine.step()
    assert not engine.kinds('error')


def test_a_huge_first_step_predicts_divergence_extrapolated_to_base_lr():
    model = Net(_head_sum)
    optimizer = torch.optim.SGD(model.parameters(), lr=100.0)
    warm_up = LinearLR(optimizer, start_factor=0.001, end=100, by_epoch=False)
    engine = Engine(
        model, optimizer=optimizer, update_iters=1, schedulers=[warm_up])
    weight = model.head.weight.norm().item()
    with pytest.raises(DivergenceError) as err:
        engine.step()
    # lr 0.1 now, gradient 1 per entry: ||dw|| = 0.1 * 2; x1000 at base.
    ratio = 0.2 / weight
    message = str(err.value)
    assert message.startswith(
        f'update check at iteration 1: one step moved the head weights by '
        f'{ratio:.3g} of their norm, {ratio * 1000:.3g} at the base lr')
    assert 'warm-up: LinearLR from 0.001x over iterations 0-100' in message


# -- optimizer coverage -------------------------------------------------------
def test_adapter_added_after_the_optimizer_is_named():
    model = Net(_head_sum)
    engine = Engine(model)
    model.adapter = nn.Linear(4, 4)  # e.g. a hook injecting LoRA
    with pytest.raises(OptimizerCoverageError) as err:
        engine.step()
    assert str(err.value).startswith(
        'optimizer check, iteration 1: 2 trainable parameters are not in '
        'the optimizer: adapter.weight, adapter.bias. They get gradients '
        'that are never applied')


def test_optimizer_built_over_a_copy_names_the_copies():
    import copy
    model = Net(_head_sum)
    twin = copy.deepcopy(model)
    engine = Engine(
        model, optimizer=torch.optim.SGD(twin.parameters(), lr=0.1))
    with pytest.raises(OptimizerCoverageError) as err:
        engine.step()
    assert str(err.value).startswith(
        "optimizer check, iteration 1: the optimizer holds 2 parameters and "
        "none is the model's (they "
        'equal backbone.weight, head.weight: copies): it was built over a '
        'copy of the model')


def test_replaced_parameter_and_a_later_unfreeze_are_caught_when_they_happen():
    model = Net(_head_sum)
    engine = Engine(model)
    engine.step()
    engine.monitor.params_changed()  # what the registration hook signals
    model.head.weight = nn.Parameter(model.head.weight.detach().clone())
    with pytest.raises(
            OptimizerCoverageError, match='head.weight replaced parameters'):
        engine.step()

    # requires_grad switched on for a parameter a custom optimizer left out
    model = Net(_head_sum)
    model.backbone.weight.requires_grad_(False)
    engine = Engine(
        model, optimizer=torch.optim.SGD([model.head.weight], lr=0.1))
    engine.step()
    before = params(model)
    model.backbone.weight.requires_grad_(True)
    with pytest.raises(
            OptimizerCoverageError,
            match='not in the optimizer: backbone.weight'):
        engine.step()
    for p, b in zip(model.parameters(), before):
        torch.testing.assert_close(p.detach(), b)


@pytest.mark.parametrize('make', [
    lambda p: torch.optim.SGD(p, lr=0.1, maximize=True),
    lambda p: torch.optim.Adam(p, lr=0.01, maximize=True),
])
def test_a_step_up_the_gradient_predicts_divergence(make):
    model = Net(_head_sum)
    engine = Engine(model, optimizer=make(model.parameters()), update_iters=1)
    with pytest.raises(DivergenceError) as err:
        engine.step()
    # head.weight's gradient is all ones; SGD and Adam's first step both
    # move it by +lr per entry: exactly along the gradient.
    assert str(err.value).startswith(
        'update check at iteration 1: the optimizer step moved the weights '
        'up the gradient (cosine(dw, grad) = +1.00; a descent step is '
        'negative)')


@pytest.mark.parametrize('make', [
    lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, weight_decay=5e-4),
    lambda p: torch.optim.AdamW(p, lr=0.01, weight_decay=0.05),
])
def test_descent_steps_with_weight_decay_pass(make):
    def both(model, inputs):
        feats = model.backbone(torch.ones(1, 3))
        return dict(loss=model.head(torch.cat([feats, feats], 1)).sum())

    model = Net(both)
    engine = Engine(model, optimizer=make(model.parameters()), update_iters=3)
    for _ in range(3):
        engine.step()
    cosines = [e['cosine'] for e in engine.kinds('update')]
    assert len(cosines) == 3 and all(c < -0.5 for c in cosines)
    assert not engine.kinds('error') and not engine.kinds('warning')


def test_findings_are_recorded_with_iteration_and_cause():
    engine = Engine(Net(_head_sum), lr=0.0, update_iters=1)
    with pytest.raises(NoUpdateError):
        engine.step()
    error = engine.kinds('error')[0]
    assert error['iter'] == 1 and error['cause'] == 'no_update'
    assert error['check'] == 'update_size'
    assert engine.kinds('update')[0]['ratios'] == dict(backbone=0.0, head=0.0)


# -- during the run -----------------------------------------------------------
def test_lr_that_reaches_0_before_the_end_stops_the_run():
    model = Net(_head_sum)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    engine = Engine(model, optimizer=optimizer)
    engine.monitor.max_iters = 100
    engine.step()
    engine.step()
    optimizer.param_groups[0]['lr'] = 0.0  # a schedule that ended at 0
    with pytest.raises(NoUpdateError, match='lr check, iteration 3: the '
                       'learning rate is 0 in every param group at '
                       'iteration 3, 97 iterations before the end'):
        engine.step()
    # At the very last iteration a schedule may end at exactly 0.
    engine.monitor.max_iters = 4
    engine.step()


def test_an_lr_far_above_its_base_warns_once():
    model = Net(_head_sum)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    optimizer.param_groups[0]['initial_lr'] = 0.1
    engine = Engine(model, optimizer=optimizer)
    for lr in (0.1, 0.3, 0.9, 2.7):
        optimizer.param_groups[0]['lr'] = lr
        engine.step()
    warnings = [e for e in engine.kinds('warning') if e['check'] == 'lr']
    assert len(warnings) == 1 and warnings[0]['iter'] == 4
    assert warnings[0]['message'].startswith(
        'lr check, iteration 4: the learning rate 2.7 is 27x its configured '
        'base 0.1')


def test_weights_restored_to_their_initial_values_stop_the_run():
    # Every step compares a fingerprint of the weights (iteration 3 is not
    # a checked iteration: strict_iters 1, interval 50).
    model = Net(_head_sum)
    engine = Engine(model)
    initial = params(model)
    engine.step()
    engine.step()
    with torch.no_grad():  # a hook copies a snapshot back
        for p, b in zip(model.parameters(), initial):
            p.copy_(b)
    with pytest.raises(NoUpdateError) as err:
        engine.step()
    assert err.value.cause == 'frozen'
    assert str(err.value).startswith(
        'weight check, iteration 3: the weights are exactly their initial '
        'values again after 2 applied steps')


def test_the_weight_fingerprint_follows_in_place_updates_in_any_layout():
    from engine_plugins.engine.sanity.monitor import _leading_entries
    conv = torch.randn(8, 3, 3, 3).to(memory_format=torch.channels_last)
    for param in (conv, torch.randn(5), torch.tensor(2.0), torch.zeros(0, 4)):
        view = _leading_entries(param)
        assert view.numel() == min(param.numel(), 16 if param.dim() < 2 else
                                   param.shape[-1])
        param.add_(1.0)
        if param.numel():
            assert view.flatten()[0] == param.flatten()[0]


def test_gradients_that_vanish_mid_run_warn():
    scale = dict(value=1.0)
    engine = Engine(
        Net(lambda m, x: dict(loss=scale['value'] * m.head.weight.sum() +
                              m.backbone.weight.sum() * 0)))
    engine.step()
    scale['value'] = 0.0
    engine.step()
    found = [e for e in engine.kinds('warning') if e['check'] == 'coverage']
    assert found[-1]['message'].startswith(
        'iteration 2: every gradient is exactly 0 now, and was not before')


@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16])
def test_half_precision_trainable_parameters_are_refused(dtype):
    from engine_plugins.engine.sanity.errors import PrecisionError
    model = Net(lambda m, x: dict(loss=m.head.weight.float().sum()))
    model.head.to(dtype)
    name = str(dtype).replace('torch.', '')
    with pytest.raises(PrecisionError, match='optimizer check, iteration 1: '
                       f'1 trainable parameters are {name} '
                       r'\(head.weight\): the optimizer would update'):
        Engine(model).step()
    # Frozen half-precision weights (a quantized base model) are fine.
    model.head.requires_grad_(False)
    model.loss_fn = lambda m, x: dict(loss=m.backbone(torch.ones(1, 3)).sum())
    Engine(model).step()


def test_a_term_at_0_with_declared_targets_names_its_weight_at_once():
    targets = HealthStat('health/test_positives', low=0.0,
                         targets_of=('loss_box', ))

    def zero_weight(model, inputs):
        targets.publish(torch.tensor(5.0))
        return dict(
            loss_cls=model.head(torch.ones(1, 4)).sum(),
            loss_box=0.0 * model.backbone.weight.sum())

    engine = Engine(Net(zero_weight), strict_iters=3)
    engine.step()
    warning = [e for e in engine.kinds('warning')
               if e['check'] == 'zero_term'][0]
    assert warning['iter'] == 1 and warning['cause'] == 'zero_weight'
    assert warning['message'] == (
        'loss check at iteration 1: loss_box = 0.0 although the batch has '
        'targets for it (health/test_positives = 5): its loss weight is 0. '
        'Remove a term you disabled on purpose')


def test_divergence_with_huge_inputs_names_the_input_scale():
    model = Net(lambda m, x: dict(loss=(m.head(x[None, :4]) ** 2).sum()))
    engine = Engine(model, lr=0.1, update_iters=1)
    with pytest.raises(DivergenceError) as err:
        engine.step(torch.full((4, ), 500.0))
    assert err.value.cause == 'input_normalization'
    assert 'Likely cause: the float inputs are far from unit scale (mean ' \
        '|x| 500, std 0)' in str(err.value)


def test_declared_loss_terms_that_go_missing_are_named():
    model = Net(lambda m, x: dict(loss_cls=m.head(torch.ones(1, 4)).sum(),
                                  dfl=m.backbone.weight.sum()))
    model.loss_keys = ('loss_cls', 'loss_dfl')
    with pytest.raises(LossDictError) as err:
        Engine(model).step()
    assert str(err.value).startswith(
        'loss check at iteration 1: the loss dict lacks the terms Net '
        'declares: loss_dfl (it holds dfl, loss_cls): a term was renamed, '
        'overwritten or dropped')


def test_odd_batches_and_undeclared_models_pass_through_quietly():
    engine = Engine(Net(_head_sum))
    monitor = engine.monitor
    monitor.num_classes = 3  # as if a dataset declared classes
    for batch in ((torch.ones(2), ), dict(inputs=torch.zeros(0),
                                          data_samples=[]), None,
                  dict(data_samples='not a list')):
        monitor.on_batch(batch)
    monitor.on_inputs((torch.ones(1), ), dict(mode='loss'))
    engine.step(torch.zeros(0))  # an empty input tensor
    assert not engine.kinds('error')


# -- boxes that never reach the model -----------------------------------------
def _det_batch(num_images, ignored=0):
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData
    samples = []
    for i in range(num_images):
        sample = DetDataSample(
            metainfo=dict(img_shape=(32, 32), img_path=f'{i}.png'))
        sample.gt_instances = InstanceData(
            bboxes=torch.zeros(0, 4), labels=torch.zeros(0, dtype=torch.long))
        sample.ignored_instances = InstanceData(
            bboxes=torch.tensor([[2.0, 2.0, 20.0, 20.0]] * ignored),
            labels=torch.zeros(ignored, dtype=torch.long))
        samples.append(sample)
    return dict(inputs=[torch.zeros(3, 32, 32)] * num_images,
                data_samples=samples)


def _batch_monitor(boxed_fraction):
    engine = Engine(Net(_head_sum), strict_iters=3, num_classes=3)
    engine.monitor.boxed_fraction = boxed_fraction
    engine.monitor.start_iter(1)
    return engine.monitor


def test_a_batch_whose_boxes_were_all_ignored_stops_at_once():
    from engine_plugins.engine.sanity.preflight import BatchContractError
    with pytest.raises(BatchContractError) as err:
        _batch_monitor(None).on_batch(_det_batch(2, ignored=1))
    assert str(err.value) == (
        'data check, iteration 1: no image of the batch has a gt box, and 2 '
        'boxes are in ignored_instances: every box was marked ignored '
        '(gt_ignore_flags set by a transform or iscrowd in the annotations; '
        'an inverted ignore condition ignores every object)')


@pytest.mark.parametrize('fraction, images, stops', [
    (0.9, 4, True),    # 0.1**4 = 1e-4: improbable
    (0.9, 2, False),   # too few images to tell
    (0.5, 8, False),   # 0.5**8 = 4e-3: it happens
    (None, 8, False),  # nothing annotated is known
])
def test_a_batch_without_boxes_stops_when_the_annotations_make_it_improbable(
        fraction, images, stops):
    from engine_plugins.engine.sanity.preflight import BatchContractError
    monitor = _batch_monitor(fraction)
    if not stops:
        monitor.on_batch(_det_batch(images))
        return
    with pytest.raises(BatchContractError, match=f'none of the {images} '
                       'images of the batch has a gt box after the pipeline, '
                       'while 90% of the training images have one'):
        monitor.on_batch(_det_batch(images))
