"""benchmarks/fine_tune_start.py: the losses it prints, and that measuring
them leaves the network as it was."""

import os
import sys

import chainer
import numpy as np
from numpy.testing import assert_allclose, assert_array_equal

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from benchmarks import fine_tune_start  # noqa: E402
from music_classification.net import build_model  # noqa: E402


def test_losses_of_each_mode_leave_the_network_as_it_was():
    np.random.seed(1)
    net = build_model('small_cnn', n_classes=3, input_shape=(32, 24),
                      width=4)
    norms = [link for link in net.links()
             if isinstance(link, chainer.links.BatchNormalization)]
    for link in norms:  # statistics that no batch of these windows has
        link.avg_mean[...] = 0.5
        link.avg_var[...] = 4.0
    x = np.random.default_rng(0).uniform(
        0, 3, (6, 1, 32, 24)).astype(np.float32)
    t = np.array([0, 1, 2, 0, 1, 2], np.int32)
    before = {name: p.array.copy() for name, p in net.namedparams()}
    out = fine_tune_start.losses(net, x, t)
    assert list(out) == [
        'at inference', 'training step, batch statistics and dropout',
        'training step, batch statistics only',
        'training step as --fine-tune trains now']
    (inference, _), (both, _), (stats, _), (now, _) = out.values()
    assert_allclose(now, inference, rtol=1e-6)
    assert abs(stats - inference) > 1e-3 and abs(both - stats) > 1e-3
    assert out == fine_tune_start.losses(net, x, t)  # seeded dropout
    for link in norms:
        assert_array_equal(link.avg_mean, 0.5)
        assert_array_equal(link.avg_var, 4.0)
    for name, p in net.namedparams():
        assert_array_equal(p.array, before[name])
    assert not net.inference_mode_training
    assert net.dropout_ratio == 0.3  # the small CNN's
