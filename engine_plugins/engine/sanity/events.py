"""The sanity engine's findings: logged, recorded, and raised.

Every check reports through one :class:`SanityEvents`. A finding goes to
the log (``print_log``) and, one JSON object per line, to the event file
(``<log_dir>/sanity.jsonl`` on rank 0, ``sanity.rank<r>.jsonl`` on the
others), which ``tools/diagnose.py`` and ``benchmarks/bench_diagnosis.py``
read. An error is recorded first, then raised.

Event fields: ``kind`` (``error``, ``warning``, ``info`` or a record kind
such as ``contract``), ``iter`` (1-based, as in the progress line),
``cause`` (a code of :data:`.causes.CAUSES`), ``check``, ``message`` and
check-specific ``data``.
"""
import json
import logging
import math
import os
import os.path as osp
from typing import Any, Dict, NoReturn, Optional, Set, Type

from mmengine.logging import print_log

from .errors import TrainingSanityError

EVENT_FILE = 'sanity.jsonl'
_LEVELS = dict(error=logging.ERROR, warning=logging.WARNING, info=logging.INFO)


def jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # JSON has no NaN/Inf
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


class SanityEvents:
    """Log, record and raise findings.

    Args:
        log_dir: Folder of the event file; None keeps events in memory
            only (:attr:`events`).
        rank: Process rank; ranks above 0 write their own file.
    """

    def __init__(self, log_dir: Optional[str] = None, rank: int = 0) -> None:
        self.path = None
        if log_dir is not None:
            name = EVENT_FILE if rank == 0 else f'sanity.rank{rank}.jsonl'
            self.path = osp.join(log_dir, name)
        self.iteration = 0
        self.events = []
        self._once: Set[str] = set()

    def record(self, kind: str, **fields: Any) -> Dict[str, Any]:
        """Append one event (``iter`` defaults to the current iteration)."""
        event = dict(kind=kind, iter=fields.pop('iter', self.iteration))
        event.update(jsonable(fields))
        self.events.append(event)
        if self.path is not None:
            os.makedirs(osp.dirname(self.path), exist_ok=True)
            with open(self.path, 'a', encoding='utf-8') as f:
                f.write(json.dumps(event) + '\n')
        return event

    def _finding(self, kind: str, cause: str, message: str, check: str,
                 once: Optional[str], data: Dict[str, Any]) -> bool:
        if once is not None:
            if once in self._once:
                return False
            self._once.add(once)
        self.record(kind, cause=cause, check=check, message=message, data=data)
        print_log(message, logger='current', level=_LEVELS[kind])
        return True

    def error(self,
              error: Type[TrainingSanityError],
              message: str,
              cause: Optional[str] = None,
              check: str = '',
              **data: Any) -> NoReturn:
        """Record and raise ``error(message, cause)``."""
        exc = error(message, cause)
        self._finding('error', exc.cause, message, check, None, data)
        exc.recorded = True
        raise exc

    def warning(self,
                cause: str,
                message: str,
                check: str = '',
                once: Optional[str] = None,
                **data: Any) -> bool:
        """Record and log a warning; with ``once``, only the first time
        that key is seen. Returns whether it was reported."""
        return self._finding('warning', cause, message, check, once, data)

    def info(self,
             cause: str,
             message: str,
             check: str = '',
             once: Optional[str] = None,
             **data: Any) -> bool:
        """Record and log a note that needs no action."""
        return self._finding('info', cause, message, check, once, data)

    def reraise(self, exc: TrainingSanityError, prefix: str = '') -> NoReturn:
        """Record an error raised by a check function, then raise it with
        ``prefix`` before its message."""
        message = f'{prefix}{exc}'
        new = type(exc)(message, exc.cause)
        self._finding('error', new.cause, message, '', None, {})
        new.recorded = True
        raise new from None

    def record_escaped(self, exc: TrainingSanityError) -> None:
        """Record an error a model or loss raised by itself during the run
        (e.g. a loss refusing half precision), unless recorded already."""
        if not getattr(exc, 'recorded', False):
            self._finding('error', exc.cause, str(exc), 'model', None, {})
            exc.recorded = True
