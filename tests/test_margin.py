"""Tests of bn_margin against a SciPy version of the formula."""
import numpy as np
import pytest
import torch
from scipy.stats import norm
from torch import nn

import mgd_plugin  # noqa: F401  (compat layer before mmrazor.models)
from mgd_plugin.models.utils import bn_margin


def scipy_margin(gamma, beta):
    """The formula of MGD_SPEC section 4, one channel at a time."""
    out = []
    for g, b in zip(np.asarray(gamma, float), np.asarray(beta, float)):
        s = abs(g)
        if norm.cdf(-b / s) > 0.001:
            out.append(b - s * norm.pdf(b / s) / norm.cdf(-b / s))
        else:
            out.append(-3 * s)
    return np.array(out)


def make_bn(gamma, beta, cls=nn.BatchNorm2d):
    bn = cls(len(gamma))
    with torch.no_grad():
        bn.weight.copy_(torch.as_tensor(gamma))
        bn.bias.copy_(torch.as_tensor(beta))
    return bn


def test_matches_scipy_on_random_parameters():
    rng = np.random.default_rng(0)
    gamma = rng.normal(0, 1, 64)
    beta = rng.normal(0, 2, 64)
    # Both branches must be exercised: Phi(-beta/s) <= 0.001 needs
    # beta/s > 3.09.
    gamma[:4] = [0.5, -0.5, 1.0, 0.2]
    beta[:4] = [2.0, 3.0, 5.0, 0.7]
    expected = scipy_margin(gamma, beta)
    assert (norm.cdf(-beta / np.abs(gamma)) <= 0.001).sum() >= 4
    assert (norm.cdf(-beta / np.abs(gamma)) > 0.001).sum() >= 30
    margin = bn_margin(make_bn(gamma, beta))
    assert margin.dtype == torch.float32
    assert margin.shape == (64, )
    assert not margin.requires_grad
    np.testing.assert_allclose(margin.numpy(), expected, rtol=1e-5, atol=1e-5)


def test_known_values():
    # gamma=1, beta=0: -phi(0) / Phi(0) = -sqrt(2 / pi); the -3s branch.
    margin = bn_margin(make_bn([1.0, -2.0], [0.0, 10.0]))
    torch.testing.assert_close(
        margin, torch.tensor([-np.sqrt(2 / np.pi), -6.0], dtype=torch.float32))


def test_zero_weight_gives_the_limits_without_nan():
    margin = bn_margin(make_bn([0.0, 0.0, 0.0, -0.0], [-1.5, 0.0, 2.0, -0.1]))
    assert torch.isfinite(margin).all()
    # Constant output beta: its negative part is beta itself when beta < 0,
    # and there is none otherwise (-3 * 0).
    torch.testing.assert_close(margin, torch.tensor([-1.5, 0.0, 0.0, -0.1]))
    # The SciPy formula reaches the same values through inf / NaN.
    with np.errstate(divide='ignore', invalid='ignore'):
        expected = scipy_margin([0.0, 0.0, 0.0, -0.0], [-1.5, 0.0, 2.0, -0.1])
    np.testing.assert_allclose(margin.numpy(), expected, atol=1e-7)


def test_other_batchnorm_kinds_and_dtypes():
    gamma, beta = [0.3, -1.2, 0.8], [0.1, -0.4, 1.0]
    expected = torch.tensor(scipy_margin(gamma, beta), dtype=torch.float32)
    for cls in (nn.BatchNorm1d, nn.BatchNorm2d, nn.SyncBatchNorm):
        torch.testing.assert_close(
            bn_margin(make_bn(gamma, beta, cls)), expected)
    half = make_bn(gamma, beta).half()
    assert bn_margin(half).dtype == torch.float32


def test_rejects_non_batchnorm():
    with pytest.raises(TypeError, match='BatchNorm'):
        bn_margin(nn.Conv2d(3, 3, 1))
    with pytest.raises(TypeError, match='BatchNorm'):
        bn_margin(nn.GroupNorm(1, 3))


def test_rejects_non_affine_batchnorm():
    with pytest.raises(ValueError, match='affine'):
        bn_margin(nn.BatchNorm2d(3, affine=False))
