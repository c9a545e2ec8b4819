# MGD-SM (sparse matching): as MGD-AMP, but each student channel is taught
# by one teacher channel of its own (a one-to-one matching); the other
# teacher channels are unused.
_base_ = ['./mgd-amp_resnet18-w16-w4_10e_fashion-mnist-10k.py']

model = dict(distiller=dict(reducer=dict(type='SparseMatchReducer')))
