# MGD-RD (random drop): as MGD-AMP, but each student channel is taught by a
# random member of its teacher-channel group, redrawn every forward.
_base_ = ['./mgd-amp_resnet18-w16-w4_10e_fashion-mnist-10k.py']

model = dict(distiller=dict(reducer=dict(type='RandomDropReducer')))
