"""Hook that configures the grad-sanity optim wrapper and reports from it."""
from typing import Mapping, Optional, Sequence

from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper

from engine_plugins.registry import HOOKS
from ..optim_wrappers.grad_sanity_optim_wrapper import GradSanityMixin

SKIPPED_KEY = 'grad_sanity/skipped_steps'
NORM_PREFIX = 'grad_sanity/grad_norm'


@HOOKS.register_module()
class GradSanityHook(Hook):
    """Loss and gradient checks between backward and step.

    ``before_train`` (after a resume has been loaded) configures the
    run's :class:`GradSanityOptimWrapper` / :class:`AmpGradSanityOptimWrapper`
    and routes each iteration's loss terms to it. The checks run inside
    ``optim_wrapper.update_params``, i.e. after backward and, under AMP,
    on gradients still carrying the loss scale (norms are reported
    unscaled). ``after_train_iter`` logs what the wrapper found on checked
    iterations: per-group gradient norms to the message hub and the
    visualizer backends (TensorBoard) as ``grad_sanity/grad_norm/<group>``,
    and a console line ``[grad] backbone=1.2e-02 head=3.4e-01 ok=True``;
    on every iteration, the count of skipped steps
    (``grad_sanity/skipped_steps`` in the message hub, hence in
    checkpoints, and restored on resume).

    Args:
        strict_iters: The first iterations are fully checked and any
            finding raises. Defaults to 3.
        interval: After those, check every ``interval`` iterations with
            ``policy``; 0 disables the periodic checks. Defaults to 50.
        policy: ``'warn'`` (default), ``'skip'`` (skip steps with
            non-finite gradients, leaving weights untouched; checks
            finiteness every step) or ``'raise'``.
        max_consecutive_skips: With ``'skip'``, raise after this many
            skipped steps in a row. Defaults to 5.
        groups: Gradient-norm groups: name → substrings matched against
            module names. Defaults to backbone / neck / head (+criterion),
            the rest as ``other``.
        locate: On non-finite gradients re-run the iteration under
            ``torch.autograd.detect_anomaly`` to name the backward op
            (costs one extra forward/backward, only when it fires).

    Example:
        >>> default_hooks = dict(
        ...     grad_sanity=dict(type='GradSanityHook', strict_iters=3,
        ...                      interval=50, policy='skip', locate=True))
        >>> optim_wrapper = dict(type='GradSanityOptimWrapper', ...)
    """

    priority = 'VERY_HIGH'

    def __init__(self,
                 strict_iters: int = 3,
                 interval: int = 50,
                 policy: str = 'warn',
                 max_consecutive_skips: int = 5,
                 groups: Optional[Mapping[str, Sequence[str]]] = None,
                 locate: bool = False) -> None:
        self.kwargs = dict(
            strict_iters=strict_iters,
            interval=interval,
            policy=policy,
            max_consecutive_skips=max_consecutive_skips,
            groups=groups,
            locate=locate)

    def before_train(self, runner) -> None:
        wrapper = runner.optim_wrapper
        if not isinstance(wrapper, GradSanityMixin):
            raise TypeError(
                'GradSanityHook checks gradients inside the optim wrapper, '
                "but optim_wrapper.type is '"
                f"{type(wrapper).__name__}'. Set optim_wrapper.type="
                "'GradSanityOptimWrapper' (or 'AmpGradSanityOptimWrapper'), "
                'or disable the hook with default_hooks=dict('
                'grad_sanity=None)')
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        wrapper.skipped_steps = runner.message_hub.get_info(SKIPPED_KEY, 0)
        wrapper.configure_sanity(model=model, **self.kwargs)
        parse_losses = model.parse_losses

        def recording_parse_losses(losses):
            wrapper.record_losses(losses)
            return parse_losses(losses)

        model.parse_losses = recording_parse_losses

    def before_train_iter(self,
                          runner,
                          batch_idx: int,
                          data_batch=None) -> None:
        runner.optim_wrapper.record_batch(data_batch, runner.iter)

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch=None,
                         outputs=None) -> None:
        wrapper = runner.optim_wrapper
        wrapper.record_batch(None)
        wrapper.record_losses(None)
        runner.message_hub.update_info(SKIPPED_KEY, wrapper.skipped_steps)
        if wrapper.last_norms is None:
            return
        # Norms exist only on checked iterations, so they are not 'train/'
        # scalars: the log processor would average stale values into every
        # progress line. They go to the message hub under their own
        # prefix, to the visualizer backends (TensorBoard) at this step,
        # and to the console as one line.
        scalars = {
            f'{NORM_PREFIX}/{group}': value
            for group, value in wrapper.last_norms.items()
        }
        for key, value in scalars.items():
            runner.message_hub.update_scalar(key, value)
        runner.visualizer.add_scalars(scalars, step=runner.iter + 1)
        print_log(
            f'iter {runner.iter + 1}: {wrapper.last_report}', logger='current')
