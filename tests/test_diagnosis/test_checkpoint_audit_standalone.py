"""The checkpoint audit loads mmengine checkpoints in a process where no
runtime fix was applied (tools/diagnose.py, or a user's script)."""
import os.path as osp
import subprocess
import sys

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SCRIPT = """
import sys, torch, torch.nn as nn
from mmengine.logging import MessageHub
hub = MessageHub.get_instance('audit_standalone')
for value in (3.0, 1.0):
    hub.update_scalar('train/loss', value)
for step, path in ((1, 'a.pth'), (2, 'b.pth')):
    torch.save(dict(meta=dict(iter=step),
                    state_dict=nn.Linear(2, 2).state_dict(),
                    message_hub=hub.state_dict()), sys.argv[1] + path)
from mmengine.logging import HistoryBuffer
from engine_plugins.diagnosis import audit_checkpoint
result = audit_checkpoint(sys.argv[1] + 'b.pth', sys.argv[1] + 'a.pth')
# allowed for that load only
assert HistoryBuffer not in torch.serialization.get_safe_globals()
print('iter', result['iter'], 'reference', result['reference_iter'])
"""


def test_audit_needs_no_global_fix(tmp_path):
    proc = subprocess.run(
        [sys.executable, '-c', SCRIPT, str(tmp_path) + '/'],
        cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert 'iter 2 reference 1' in proc.stdout
