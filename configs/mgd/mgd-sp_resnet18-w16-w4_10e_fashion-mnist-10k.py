# MGD-SP (simple pooling): as MGD-AMP, but each student channel is taught
# by the plain maximum over its teacher-channel group.
_base_ = ['./mgd-amp_resnet18-w16-w4_10e_fashion-mnist-10k.py']

model = dict(distiller=dict(reducer=dict(type='MaxPoolReducer')))
