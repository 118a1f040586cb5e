from .atomic_local_backend import AtomicLocalBackend
from .checkpoint_files import (CheckpointFileError, diagnose_file, is_loadable,
                               remove_stale_temporaries, resolve_resume_point,
                               write_text_atomically)
from .key_match import CheckpointMismatchError, KeyMatch, checkpoint_weights
from .state_checksums import (CheckpointIntegrityError, add_checksums,
                              verify_checksums)

__all__ = [
    'AtomicLocalBackend', 'CheckpointFileError', 'CheckpointIntegrityError',
    'CheckpointMismatchError', 'KeyMatch', 'add_checksums',
    'checkpoint_weights', 'diagnose_file', 'is_loadable',
    'remove_stale_temporaries', 'resolve_resume_point', 'verify_checksums',
    'write_text_atomically'
]
