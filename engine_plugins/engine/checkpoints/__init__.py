from .atomic_local_backend import AtomicLocalBackend
from .checkpoint_files import (CheckpointFileError, diagnose_file, is_loadable,
                               remove_stale_temporaries, resolve_resume_point,
                               write_atomically, write_text_atomically)
from .class_head import (ClassHead, ClassHeadReinit, compact_names,
                         reinit_class_head)
from .key_match import CheckpointMismatchError, KeyMatch, checkpoint_weights
from .state_checksums import (CheckpointIntegrityError, add_checksums,
                              verify_checksums)

__all__ = [
    'AtomicLocalBackend', 'CheckpointFileError', 'CheckpointIntegrityError',
    'CheckpointMismatchError', 'ClassHead', 'ClassHeadReinit', 'KeyMatch',
    'add_checksums', 'checkpoint_weights', 'compact_names', 'diagnose_file',
    'is_loadable', 'reinit_class_head', 'remove_stale_temporaries',
    'resolve_resume_point', 'verify_checksums', 'write_atomically',
    'write_text_atomically'
]
