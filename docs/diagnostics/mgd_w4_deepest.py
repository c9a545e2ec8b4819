# Held-out diagnostic (docs/diagnostics/README.md): MGD-AMP at the deepest
# position only (the 16 <- 64 channel stage output), with its weight.
_base_ = ['./mgd_w4.py']
model = dict(distiller=dict(positions=[_base_.model.distiller.positions[2]]))
