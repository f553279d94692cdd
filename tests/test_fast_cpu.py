import chainer
import chainer.functions as F
import chainer.links as L
import numpy as np
from numpy.testing import assert_allclose, assert_array_equal
import pytest

from music_classification import fast_cpu
from music_classification.net import build_model


def run(function, arrays, rng, need_grad=None):
    """``function(*variables)``'s output and the gradients of
    ``sum(output * g)`` (``g`` random) with respect to the variables
    (``need_grad[i]`` false: a plain array, no gradient)."""
    need_grad = need_grad or [True] * len(arrays)
    xs = [chainer.Variable(a.copy()) if need else a.copy()
          for a, need in zip(arrays, need_grad)]
    y = function(*xs)
    g = np.random.RandomState(7).randn(*y.shape).astype(np.float32)
    F.sum(y * g).backward()
    return [y.array] + [x.grad for x, need in zip(xs, need_grad) if need]


@pytest.mark.parametrize('x_shape, w_shape, stride, pad, bias', [
    ((3, 2, 11, 13), (4, 2, 3, 3), 1, 1, True),
    ((3, 2, 11, 13), (4, 2, 3, 3), 1, 1, False),
    ((2, 1, 40, 37), (5, 1, 16, 9), 4, 0, True),   # MUSIC_NET's conv1
    ((2, 3, 15, 19), (4, 3, 5, 3), 2, (1, 2), True),
    ((2, 1, 1, 50), (3, 1, 1, 8), (1, 3), 0, False),  # WAVE_NET's conv0
])
def test_convolution_matches_chainers(x_shape, w_shape, stride, pad, bias,
                                      rng):
    arrays = [rng.standard_normal(x_shape, dtype=np.float32),
              rng.standard_normal(w_shape, dtype=np.float32)]
    if bias:
        arrays.append(rng.standard_normal(w_shape[:1], dtype=np.float32))
    expected = run(lambda *v: F.convolution_2d(*v, stride=stride, pad=pad),
                   arrays, rng)
    got = run(lambda *v: fast_cpu.convolution_2d(*v, stride=stride,
                                                 pad=pad), arrays, rng)
    assert len(got) == len(expected) == len(arrays) + 1
    for a, b in zip(got, expected):
        assert a.shape == b.shape and a.dtype == np.float32
        assert_allclose(a, b, rtol=1e-4, atol=1e-4)
    assert got[0].flags.c_contiguous


def test_convolution_of_the_input_still_trains_the_filters(rng):
    arrays = [rng.standard_normal(s, dtype=np.float32)
              for s in ((2, 1, 9, 8), (3, 1, 3, 3), (3,))]
    expected = run(lambda *v: F.convolution_2d(*v, pad=1), arrays, rng,
                   [False, True, True])
    got = run(lambda *v: fast_cpu.convolution_2d(*v, pad=1), arrays, rng,
              [False, True, True])
    assert len(got) == 3
    for a, b in zip(got, expected):
        assert_allclose(a, b, rtol=1e-4, atol=1e-4)


def test_convolution_link_loads_chainers_parameters_and_falls_back(
        rng, tmp_path):
    theirs = L.Convolution2D(2, 3, ksize=3, pad=1)
    path = str(tmp_path / 'conv.npz')
    chainer.serializers.save_npz(path, theirs)
    ours = fast_cpu.Convolution2D(2, 3, ksize=3, pad=1)
    chainer.serializers.load_npz(path, ours)
    x = rng.standard_normal((2, 2, 7, 6), dtype=np.float32)
    assert_allclose(ours(x).array, theirs(x).array, rtol=1e-5, atol=1e-5)
    dilated = fast_cpu.Convolution2D(2, 3, ksize=3, pad=2, dilate=2)
    assert_allclose(dilated(x).array,
                    F.convolution_2d(x, dilated.W, dilated.b, pad=2,
                                     dilate=2).array, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('shape', [(2, 3, 8, 10), (2, 3, 9, 10),
                                   (2, 3, 8, 7), (1, 2, 5, 5), (1, 1, 1, 3)])
def test_max_pooling_matches_chainers_exactly(shape, rng):
    x = rng.standard_normal(shape, dtype=np.float32)
    # Ties, as after ReLU: the first maximum takes the gradient.
    x = np.maximum(x, 0)
    x[0, 0, :2, :2] = 1.5
    expected = run(lambda v: F.max_pooling_2d(v, 2), [x], rng)
    got = run(fast_cpu.max_pooling_2x2, [x], rng)
    for a, b in zip(got, expected):
        assert a.shape == b.shape
        assert_array_equal(a, b)


def batch_norm_run(link, x, rng):
    got = run(link, [x], rng)
    return got + [link.gamma.grad, link.beta.grad, link.avg_mean.copy(),
                  link.avg_var.copy()]


@pytest.mark.parametrize('shape', [(4, 3, 5, 6), (16, 8, 32, 25)])
def test_batch_normalization_matches_chainers(shape, rng):
    x = (rng.standard_normal(shape, dtype=np.float32) * 3 + 5)
    links = []
    for cls in (L.BatchNormalization, fast_cpu.BatchNormalization):
        link = cls(shape[1])
        link.gamma.array[:] = np.linspace(0.5, 1.5, shape[1])
        link.beta.array[:] = np.linspace(-1, 1, shape[1])
        links.append(link)
    for step in range(2):  # the running statistics move twice
        results = []
        for link in links:
            link.cleargrads()
            results.append(batch_norm_run(link, x + step, rng))
        for a, b in zip(*results):
            assert_allclose(a, b, rtol=1e-4, atol=1e-4 * np.abs(b).max())
    with chainer.using_config('train', False):
        assert_allclose(links[1](x).array, links[0](x).array, rtol=1e-5,
                        atol=1e-5)


def reference_scores(model, x):
    """The variant's forward pass written with Chainer's own functions, in
    the article's order: convolution, batch norm, ReLU, pooling."""
    h = x
    for i in range(1, len(model.layers) + 1):
        conv = model['conv{}'.format(i)]
        h = F.convolution_2d(h, conv.W, conv.b, conv.stride, conv.pad)
        if model.batchnorm:
            bn = model['bn{}'.format(i)]
            h = F.batch_normalization(h, bn.gamma, bn.beta, eps=bn.eps)
        h = F.relu(h)
        if model.pooling:
            h = F.max_pooling_2d(h, 2)
    if model.head == 'flatten':
        return model.fc5(F.relu(model.fc4(F.reshape(h, (len(x), -1)))))
    h = F.concat([F.mean(h, axis=3), F.max(h, axis=3)])
    return model.fc5(F.reshape(h, (len(x), -1)))


@pytest.mark.parametrize('name, options, shape', [
    ('small_cnn', {}, (32, 23)),
    ('music_net_pool', {'batchnorm': True}, (256, 321)),
    ('music_net', {}, (64, 48)),
])
def test_networks_match_chainers_functions(name, options, shape, rng):
    np.random.seed(3)
    model = build_model(name, n_classes=4, input_shape=shape,
                        dropout_ratio=0.0, **options)
    x = rng.standard_normal((3, 1) + shape, dtype=np.float32)
    results = []
    for forward in (model.forward, lambda v: reference_scores(model, v)):
        model.cleargrads()
        got = run(forward, [x], rng, [False])
        results.append(got + [p.grad for _, p in sorted(model.namedparams())])
    assert len(results[0]) > 3
    for a, b in zip(*results):
        assert_allclose(a, b, rtol=1e-3, atol=1e-4 * np.abs(b).max())


def test_chainers_own_functions_on_request(rng):
    x = rng.standard_normal((2, 2, 6, 6), dtype=np.float32)
    conv = fast_cpu.Convolution2D(2, 2, ksize=3, pad=1)
    bn = fast_cpu.BatchNormalization(2)
    calls = {'conv': lambda: conv(x), 'bn': lambda: bn(x),
             'pool': lambda: fast_cpu.max_pooling_2x2(x)}
    ours = {k: type(f().creator).__module__ for k, f in calls.items()}
    with chainer.using_config('fast_cpu', False):
        theirs = {k: type(f().creator).__module__ for k, f in calls.items()}
    assert set(ours.values()) == {'music_classification.fast_cpu'}
    assert all(m.startswith('chainer.functions.') for m in theirs.values())


def test_max_pooling_of_nan_and_infinite_gradients_as_chainers(rng):
    x = np.array([[[[np.nan, 1, 2], [.5, 3, 1], [1, 2, np.nan]]]],
                 dtype=np.float32)
    expected = run(lambda v: F.max_pooling_2d(v, 2), [x], rng)
    got = run(fast_cpu.max_pooling_2x2, [x], rng)
    for a, b in zip(got, expected):
        assert_array_equal(a, b)
    x = np.array([[[[1, 2], [3, 0]]]], dtype=np.float32)
    xv = chainer.Variable(x)
    y = fast_cpu.max_pooling_2x2(xv)
    y.grad = np.full(y.shape, np.inf, dtype=np.float32)
    y.backward()
    assert_array_equal(xv.grad, [[[[0, 0], [np.inf, 0]]]])


@pytest.mark.parametrize('make, shape, dtype', [
    (lambda: fast_cpu.BatchNormalization((2, 3, 3)), (4, 2, 3, 3),
     np.float32),
    (lambda: fast_cpu.BatchNormalization(2, use_gamma=False), (4, 2, 3, 3),
     np.float32),
    (lambda: fast_cpu.BatchNormalization(2, use_beta=False), (4, 2, 3, 3),
     np.float32),
    (lambda: fast_cpu.BatchNormalization(2), (4, 2, 3, 3), np.float64),
])
def test_batch_normalization_falls_back_where_it_must(make, shape, dtype,
                                                      rng):
    x = rng.standard_normal(shape).astype(dtype)
    ours = make()
    y = ours(x)
    assert type(y.creator).__module__.startswith('chainer.functions.')
    theirs = make()
    with chainer.using_config('fast_cpu', False):
        assert_allclose(y.array, theirs(x).array)


def test_mixed_dtypes_and_type_errors_are_chainers(rng):
    x = rng.standard_normal((2, 3, 5, 5))  # float64
    W = rng.standard_normal((4, 3, 3, 3), dtype=np.float32)
    y = fast_cpu.convolution_2d(x, W)
    assert type(y.creator).__module__.startswith('chainer.functions.')
    assert_allclose(y.array, F.convolution_2d(x, W).array)
    with pytest.raises(chainer.utils.type_check.InvalidType):
        fast_cpu.convolution_2d(x[:, :2].astype(np.float32), W)


@pytest.mark.parametrize('function', [
    lambda x, W: fast_cpu.convolution_2d(x, W, pad=1),
    lambda x, W: fast_cpu.max_pooling_2x2(x),
    lambda x, W: fast_cpu.BatchNormalization(3)(x),
])
def test_second_order_gradients_are_refused(function, rng):
    x = chainer.Variable(rng.standard_normal((2, 3, 4, 4), dtype=np.float32))
    W = chainer.Variable(rng.standard_normal((2, 3, 3, 3), dtype=np.float32))
    gx, = chainer.grad([F.sum(function(x, W) ** 2)], [x],
                       enable_double_backprop=True)
    with pytest.raises(NotImplementedError, match='first-order'):
        F.sum(gx * gx).backward()
