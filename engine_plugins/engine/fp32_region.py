"""FP32 loss regions: code that must not run in half precision.

Inside a region autocast is off and every floating tensor reaching the
region, predictions *and* labels (casting only the predictions leaves
half-precision labels beside fp32 predictions), is widened to float32
(complex32 to complex64), recursively through dicts, lists, tuples and
mmengine data elements. Outputs come back in that dtype.

Example:
    >>> @fp32_region
    ... def covariance_loss(pred, target):
    ...     return torch.linalg.eigvalsh(pred - target).sum()
    >>> with fp32_region(dtype=torch.float64):
    ...     ...  # autocast off; tensors created here are not cast
"""
import functools
from typing import Any, Callable, Optional, Union

import torch
from mmengine.structures import BaseDataElement

_WIDER_COMPLEX = {
    torch.float32: torch.complex64,
    torch.float64: torch.complex128,
}


def cast_floating(obj: Any, dtype: torch.dtype = torch.float32) -> Any:
    """Widen floating and complex tensors in ``obj`` to at least ``dtype``.

    Narrower floats become ``dtype``; complex values become the complex type
    of the same width; integer, bool and wider tensors are left alone, so
    fp64 labels are never narrowed. Containers and data elements are copied,
    not modified in place.
    """
    if isinstance(obj, torch.Tensor):
        if obj.is_floating_point() and obj.dtype.itemsize < dtype.itemsize:
            return obj.to(dtype)
        if obj.is_complex():
            complex_dtype = _WIDER_COMPLEX[dtype]
            if obj.dtype.itemsize < complex_dtype.itemsize:
                return obj.to(complex_dtype)
        return obj
    if isinstance(obj, BaseDataElement):
        new = obj.new()
        for key, value in obj.all_items():
            field = 'metainfo' if key in obj.metainfo_keys() else 'data'
            new.set_field(cast_floating(value, dtype), key, field_type=field)
        return new
    if isinstance(obj, dict):
        return type(obj)((k, cast_floating(v, dtype)) for k, v in obj.items())
    if isinstance(obj, tuple) and hasattr(obj, '_fields'):  # namedtuple
        return type(obj)(*(cast_floating(v, dtype) for v in obj))
    if isinstance(obj, (list, tuple)):
        return type(obj)(cast_floating(v, dtype) for v in obj)
    return obj


#: Per region (the wrapped function's qualified name), what its first call
#: saw: the input dtypes and whether it cast them. The sanity engine
#: records it in the run's contract.
REGION_INPUTS = {}


def _dtypes(obj: Any, found: set) -> set:
    if isinstance(obj, torch.Tensor):
        if obj.is_floating_point() or obj.is_complex():
            found.add(str(obj.dtype).replace('torch.', ''))
    elif isinstance(obj, BaseDataElement):
        for _, value in obj.all_items():
            _dtypes(value, found)
    elif isinstance(obj, dict):
        for value in obj.values():
            _dtypes(value, found)
    elif isinstance(obj, (list, tuple)):
        for value in obj:
            _dtypes(value, found)
    return found


def _autocast_enabled() -> bool:
    return (torch.is_autocast_enabled('cpu')
            or torch.is_autocast_enabled('cuda'))


class fp32_region:  # noqa: N801  (used like a function/decorator)
    """Run a function, or a ``with`` block, in full precision.

    Args:
        fn: The function to wrap when used as a bare decorator.
        dtype: ``torch.float32`` (default) or ``torch.float64`` to widen
            further.
        always: Cast inputs even when autocast is off. By default a region
            outside autocast is free: nothing is cast (inputs can only be
            half precision there if the caller made them so on purpose).
    """

    def __init__(self,
                 fn: Optional[Callable] = None,
                 *,
                 dtype: Union[str, torch.dtype] = torch.float32,
                 always: bool = False) -> None:
        if isinstance(dtype, str):
            dtype = getattr(torch, dtype)
        if dtype not in _WIDER_COMPLEX:
            raise ValueError(
                f'fp32_region dtype must be float32 or float64, got {dtype}')
        self.dtype = dtype
        self.always = always
        self._stack = []
        if fn is not None:
            functools.update_wrapper(self, fn)
        self.fn = fn

    def __call__(self, *args, **kwargs) -> Any:
        if self.fn is None:  # @fp32_region(dtype=...) form
            return fp32_region(args[0], dtype=self.dtype, always=self.always)
        return self.run(self.fn, *args, **kwargs)

    def __get__(self, instance, owner):
        if instance is None:
            return self
        return functools.partial(self.__call__, instance)

    def run(self, fn: Callable, *args, **kwargs) -> Any:
        """Call ``fn`` inside the region."""
        active = (self.always or _autocast_enabled()
                  or self.dtype == torch.float64)
        name = getattr(fn, '__qualname__', repr(fn))
        if name not in REGION_INPUTS:
            REGION_INPUTS[name] = dict(
                inputs=sorted(_dtypes((args, kwargs), set())),
                computes_in=str(self.dtype).replace('torch.', '')
                if active else 'as given (autocast off)')
        if not active:
            return fn(*args, **kwargs)
        args = cast_floating(args, self.dtype)
        kwargs = cast_floating(kwargs, self.dtype)
        with self:
            return cast_floating(fn(*args, **kwargs), self.dtype)

    def __enter__(self) -> 'fp32_region':
        contexts = [torch.autocast('cpu', enabled=False)]
        if torch.cuda.is_available():
            contexts.append(torch.autocast('cuda', enabled=False))
        for ctx in contexts:
            ctx.__enter__()
        self._stack.append(contexts)
        return self

    def __exit__(self, *exc) -> None:
        for ctx in reversed(self._stack.pop()):
            ctx.__exit__(*exc)
