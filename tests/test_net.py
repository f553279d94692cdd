import os
import re

import chainer
import chainer.functions as F
import numpy as np
from numpy.testing import assert_allclose, assert_array_equal
import pytest

from music_classification import MUSIC_NET, load_model, save_model
from music_classification.errors import ModelFileError, ParameterError
from music_classification.net import (build_model, conv_output_shape,
                                      copy_feature_layers, initial_std,
                                      min_input_shape)


@pytest.fixture(scope='module')
def model():
    np.random.seed(0)
    return MUSIC_NET()


#: A window short enough to make MUSIC_NET's fc4 small (saving and loading
#: do not depend on the size).
SMALL = (64, 48)


@pytest.fixture(scope='module')
def small():
    np.random.seed(0)
    return MUSIC_NET(input_shape=SMALL)


def test_original_parameter_count(model):
    assert sum(p.size for p in model.params()) == 69791607


def test_original_layers(model):
    shapes = {name: p.shape for name, p in model.namedparams()}
    assert shapes == {
        '/conv1/W': (16, 1, 16, 9), '/conv1/b': (16,),
        '/conv2/W': (32, 16, 5, 3), '/conv2/b': (32,),
        '/conv3/W': (64, 32, 3, 3), '/conv3/b': (64,),
        '/fc4/W': (4096, 64 * 14 * 19), '/fc4/b': (4096,),
        '/fc5/W': (7, 4096), '/fc5/b': (7,),
    }
    assert model.conv1.stride == (4, 4)
    assert model.conv2.stride == (2, 2)
    assert model.conv3.stride == (2, 2)
    assert model.conv1.pad == model.conv2.pad == model.conv3.pad == (0, 0)
    assert conv_output_shape((256, 321)) == (64, 14, 19)


#: Std of each layer's initial weights under Chainer v1.9+ (the original's
#: era): sqrt(0.02 * sqrt(fan_in) / fan_in), from ORIGINAL_NOTES.md.
LATE_V1_STD = {'conv1': 0.0408, 'conv2': 0.0359, 'conv3': 0.0343,
               'fc4': 0.0124, 'fc5': 0.0177}


def check_initial_weights(model, expected_std):
    for name, p in model.namedparams():
        layer = name.split('/')[1]
        if name.endswith('/W'):
            std = expected_std[layer]
            tolerance = 4 * std / np.sqrt(2 * p.size)  # ~4 s.e. of a std
            # the notes round to 4 digits
            assert abs(float(p.array.std()) - std) < max(tolerance, 6e-5), \
                (name, float(p.array.std()), std)
            assert abs(float(p.array.mean())) < 4 * std / np.sqrt(p.size)
        else:
            assert not p.array.any(), name


def test_initial_weights_late_v1_per_layer_std(model):
    # The default: wscale=0.02*sqrt(fan_in) as Chainer v1.9 to v1.24 read it.
    check_initial_weights(model, LATE_V1_STD)


def test_initial_weights_v1_8_reading():
    np.random.seed(1)  # 0.02 whatever the fan-in: any window will do
    check_initial_weights(MUSIC_NET(init='v1.8', input_shape=(128, 161)),
                          dict.fromkeys(LATE_V1_STD, 0.02))


@pytest.mark.parametrize('fan_in,std', [(144, 0.0408), (240, 0.0359),
                                        (288, 0.0343), (17024, 0.0124),
                                        (4096, 0.0177)])
def test_initial_std_formula(fan_in, std):
    assert initial_std(fan_in) == pytest.approx(std, abs=5e-5)
    assert initial_std(fan_in, 'v1.8') == pytest.approx(0.02)


def test_unknown_init_is_rejected():
    with pytest.raises(ParameterError, match="init must be one of"):
        MUSIC_NET(init='he')


def check_forward(model, x, t):
    """Shared by the CPU and GPU tests: forward, loss, backward, predict."""
    xp = model.xp
    model.cleargrads()
    with chainer.using_config('train', True):
        loss, accuracy = model(x, t)
    assert loss.shape == () and np.isfinite(float(loss.array))
    assert 0.0 <= float(accuracy.array) <= 1.0
    loss.backward()
    for name, p in model.namedparams():
        assert p.grad is not None and xp.isfinite(p.grad).all(), name
    first = model.timbral74 if model.variant == 'musicnn' else model.conv1
    assert float(abs(first.W.grad).sum()) > 0
    probs = model.predict(x)
    assert probs.shape == (x.shape[0], model.n_classes)
    assert_allclose(chainer.backends.cuda.to_cpu(probs.array.sum(axis=1)),
                    1.0, rtol=1e-5)
    return chainer.backends.cuda.to_cpu(probs.array)


def tiny_batch(rng, n=2, shape=(256, 321)):
    x = rng.uniform(0, 3, size=(n, 1) + shape).astype(np.float32)
    t = np.arange(n, dtype=np.int32) % 7
    return x, t


@pytest.mark.parametrize('options', [
    dict(model='music_net', input_shape=SMALL),
    dict(model='music_net', input_shape=SMALL, head='pool'),
    dict(model='small_cnn', input_shape=(32, 24), width=4),
    dict(model='small_cnn', input_shape=(32, 24), width=4,
         head='pool_layers'),
    dict(model='music_net', input_shape=SMALL, head='pool_layers'),
    dict(model='wave', input_shape=(1, 20480), head='pool')])
def test_forward_is_the_output_layer_on_embed(options, rng):
    np.random.seed(1)
    net = build_model(n_classes=4, **options)
    shape = net.input_shape
    x = rng.uniform(0, 3, size=(3, 1) + shape).astype(np.float32)
    with chainer.using_config('train', False):
        e = net.embed(x).array
        assert e.shape == (3, net.fc5.W.shape[1])
        assert_allclose(net.forward(x).array, e @ net.fc5.W.array.T +
                        net.fc5.b.array, rtol=1e-5, atol=1e-5)
    # in training the output layer reads the embedding through dropout
    with chainer.using_config('train', True):
        y = net.forward(x).array
        net.dropout_ratio = 0.0
        assert not np.allclose(y, net.forward(x).array)


def test_forward_backward_cpu(model, rng):
    x, t = tiny_batch(rng)
    check_forward(model, x, t)


@pytest.mark.gpu
@pytest.mark.parametrize('name, shape, options', [
    ('music_net', (256, 321), {}),
    ('small_cnn', (128, 97), {}),
    ('small_cnn', (128, 97), {'head': 'pool_layers'}),
    ('musicnn', (96, 187), {}),
])
def test_forward_backward_gpu_matches_cpu(name, shape, options, rng):
    # On the CPU the convolutions, batch norm and pooling are fast_cpu's,
    # on the GPU Chainer's (cuDNN): the same probabilities, and the same
    # running statistics after a training step.
    cupy = pytest.importorskip('cupy')
    if not chainer.backends.cuda.available:
        pytest.skip('chainer.backends.cuda.available is False (no GPU?)')
    np.random.seed(1)
    cpu = build_model(name, n_classes=7, input_shape=shape, **options)
    gpu = cpu.copy(mode='copy')
    gpu.to_device('@cupy:0')
    x, t = tiny_batch(rng, shape=shape)
    expected = check_forward(cpu, x, t)
    got = check_forward(gpu, cupy.asarray(x), cupy.asarray(t))
    assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


def test_dropout_follows_config(model, rng):
    x, _ = tiny_batch(rng, n=1)
    with chainer.using_config('train', True):
        a = model.forward(x).array
        b = model.forward(x).array
    assert not np.array_equal(a, b)
    with chainer.using_config('train', True):  # predict never drops out
        p1 = model.predict(x).array
        p2 = model.predict(x).array
    assert_array_equal(p1, p2)
    with chainer.using_config('train', False):
        assert_allclose(chainer.functions.softmax(model.forward(x)).array,
                        p1, rtol=1e-6)


@pytest.mark.parametrize('options', [
    dict(model='small_cnn', input_shape=(32, 24), width=4),
    dict(model='musicnn', input_shape=(96, 187))])
def test_inference_mode_training_keeps_the_statistics(options, rng):
    # train --fine-tune: the loss of a training step is the inference-time
    # loss (saved batch-norm statistics, no dropout), and the statistics
    # stay as they were; the gradients still reach every layer
    np.random.seed(1)
    net = build_model(n_classes=3, **options)
    x = rng.uniform(0, 3, (4, 1) + net.input_shape).astype(np.float32)
    t = np.array([0, 1, 2, 1], np.int32)
    saved = [(link, link.avg_mean.copy()) for link in net.links()
             if isinstance(link, chainer.links.BatchNormalization)]
    assert saved
    with chainer.using_config('train', False):
        expected = float(net(x, t)[0].array)
    net.inference_mode_training = True
    with chainer.using_config('train', True):
        loss, _ = net(x, t)
    assert_allclose(float(loss.array), expected, rtol=1e-6)
    for link, mean in saved:
        assert_array_equal(link.avg_mean, mean)
    net.cleargrads()
    loss.backward()
    first = net.timbral74 if net.variant == 'musicnn' else net.conv1
    assert float(abs(first.W.grad).sum()) > 0
    net.inference_mode_training = False  # a network trains as it did
    with chainer.using_config('train', True):
        assert abs(float(net(x, t)[0].array) - expected) > 1e-3
    assert any(not np.array_equal(link.avg_mean, mean)
               for link, mean in saved)


def test_other_window_length_and_classes(rng):
    net = MUSIC_NET(n_classes=3, input_shape=(128, 161))
    assert net.fc4.W.shape[1] == 64 * conv_output_shape((128, 161))[1] * \
        conv_output_shape((128, 161))[2]
    x, t = tiny_batch(rng, shape=(128, 161))
    check_forward(net, x, t % 3)


@pytest.mark.parametrize('kwargs, message', [
    (dict(input_shape=(20, 30)), "input shape (20, 30) is too small for "
     "music_net's convolutions (need at least 48 x 33)"),
    (dict(n_classes=1), 'n_classes must be at least 2, got 1'),
    (dict(head='attention'), "head must be one of ('flatten', 'pool', "
     "'pool_layers'), got 'attention'"),
])
def test_bad_construction(kwargs, message):
    with pytest.raises(ParameterError) as e:
        MUSIC_NET(**kwargs)
    assert str(e.value) == message


def test_initial_weights_of_the_pooled_head():
    # fc5 reads mean and max over time of 64 channels x 14 bands: 1792
    np.random.seed(2)
    net = MUSIC_NET(head='pool')
    assert net.fc5.W.shape == (7, 1792)
    check_initial_weights(net, dict(LATE_V1_STD, fc5=initial_std(1792)))


@pytest.mark.parametrize('layers, pooling, pad, least', [
    (None, False, 0, (48, 33)),   # MUSIC_NET's convolutions
    (None, True, 0, (112, 89)),   # and pooled after each
    (((4, (5, 3), (2, 1)),), False, 0, (5, 3)),
    (((8, 3, 1), (16, 3, 1)), True, 1, (1, 1)),  # padded, as SMALL_CNN
    (((4, 5, 1),), False, 1, (3, 3)),
])
def test_the_least_input_shape_of_the_convolutions(layers, pooling, pad,
                                                   least):
    from music_classification.net import CONV_LAYERS
    layers = CONV_LAYERS if layers is None else layers
    assert min_input_shape(layers, pooling, pad) == least
    h, w = least
    channels, out_h, out_w = conv_output_shape(least, layers, pooling, pad)
    assert (channels, out_h, out_w) == (layers[-1][0], 1, 1)
    for shape in ((h - 1, w), (h, w - 1)):
        with pytest.raises(ParameterError) as e:
            conv_output_shape(shape, layers, pooling, pad, name='net')
        assert str(e.value) == (
            "input shape {} is too small for net's convolutions (need at "
            "least {} x {})".format(shape, h, w))


def test_conv_output_shape_defaults():
    assert min_input_shape() == (48, 33)
    with pytest.raises(ParameterError) as e:
        conv_output_shape((10, 40))
    assert str(e.value) == ("input shape (10, 40) is too small for "
                            "MUSIC_NET's convolutions (need at least 48 x 33)")
    assert conv_output_shape((5, 7), layers=()) == (1, 5, 7)  # the input


def test_build_model_defaults_to_the_articles_net():
    net = build_model(input_shape=(48, 33))
    assert type(net) is MUSIC_NET and net.n_classes == 7
    assert net.spec()['model'] == 'music_net' and not net.pooling


@pytest.mark.parametrize('head', ['flatten', 'pool'])
def test_no_dropout_when_its_ratio_is_zero(rng, head):
    net = MUSIC_NET(n_classes=3, input_shape=(48, 40), dropout_ratio=0.0,
                    head=head)
    x = rng.standard_normal((2, 1, 48, 40)).astype(np.float32)
    with chainer.using_config('train', True):
        assert_array_equal(net.forward(x).array, net.forward(x).array)
    net.dropout_ratio = 0.5  # and it does drop out with a ratio
    with chainer.using_config('train', True):
        assert not np.array_equal(net.forward(x).array, net.forward(x).array)


def test_wrong_input_shape_is_a_clear_error(model):
    with pytest.raises(ParameterError, match=r'\(batch, 1, 256, 321\)'):
        model.predict(np.zeros((1, 1, 256, 320), np.float32))


def test_save_load_round_trip(small, rng, tmp_path):
    path = save_model(small, tmp_path / 'sub' / 'model.npz')
    assert os.listdir(tmp_path / 'sub') == ['model.npz']  # no temp left
    loaded = load_model(path, input_shape=SMALL)
    assert loaded.n_classes == 7
    x, _ = tiny_batch(rng, shape=SMALL)
    assert_array_equal(loaded.predict(x).array, small.predict(x).array)


def test_failed_save_keeps_the_old_file(small, tmp_path, monkeypatch):
    path = save_model(small, tmp_path / 'model.npz')
    before = open(path, 'rb').read()

    def broken(*args, **kwargs):
        raise OSError('disk full')
    monkeypatch.setattr(chainer.serializers, 'save_npz', broken)
    with pytest.raises(OSError, match='disk full'):
        save_model(small, path)
    assert open(path, 'rb').read() == before
    assert os.listdir(tmp_path) == ['model.npz']


def test_pickled_npz_is_refused(tmp_path):
    # A complete, loadable model plus one pickled key: only the pickle can
    # be the reason for the refusal (and the folder's name says nothing).
    net = build_model('music_net', n_classes=3, input_shape=(64, 41))
    arrays = {name.lstrip('/'): p.array for name, p in net.namedparams()}
    good = tmp_path / 'good.npz'
    np.savez(good, **arrays)
    load_model(good, input_shape=(64, 41))  # loads without the extra key
    evil = tmp_path / 'model.npz'
    np.savez(evil, payload=np.array([{'a': 1}], dtype=object), **arrays)
    with pytest.raises(ModelFileError,
                       match='holds a pickled Python object; refusing'):
        load_model(evil, input_shape=(64, 41))


def test_not_a_model_file(tmp_path):
    path = tmp_path / 'model.npz'
    path.write_bytes(b'this is not a zip file')
    with pytest.raises(ModelFileError, match='model.npz'):
        load_model(path)
    with pytest.raises(ModelFileError, match='no such'):
        load_model(tmp_path / 'missing.npz')
    np.savez(tmp_path / 'other.npz', a=np.zeros(3))
    with pytest.raises(ModelFileError, match='fc5/b'):
        load_model(tmp_path / 'other.npz')


def test_mismatched_model_names_the_parameter(small, tmp_path):
    path = save_model(small, tmp_path / 'model.npz')
    with pytest.raises(ModelFileError, match='fc5/W'):
        load_model(path, MUSIC_NET(n_classes=5, input_shape=SMALL))
    with pytest.raises(ModelFileError, match='fc4/W'):
        load_model(path, input_shape=(128, 161))


def test_reads_the_originals_hdf5_format(small, rng, tmp_path):
    # serializers.save_hdf5 of the original wrote one dataset per parameter.
    h5py = pytest.importorskip('h5py')
    path = tmp_path / 'model3-01-00999.model'
    with h5py.File(path, 'w') as f:
        for name, p in small.namedparams():
            f.create_dataset(name.lstrip('/'), data=p.array)
    loaded = load_model(path, input_shape=SMALL)
    x, _ = tiny_batch(rng, shape=SMALL)
    assert_array_equal(loaded.predict(x).array, small.predict(x).array)


VARIANT_CASES = [
    # (name, input_shape, options, parameter count)
    ('music_net', (256, 321), {}, 69791607),
    ('music_net_pool', (256, 321), {}, None),
    ('music_net', (256, 321), {'batchnorm': True}, None),
    ('music_net', (256, 321), {'head': 'pool'}, None),
    ('wave', (1, 163840), {}, None),
    ('small_cnn', (128, 97), {}, None),
    ('small_cnn', (128, 97), {'members': 2}, None),
    ('small_cnn', (128, 97), {'head': 'pool_layers'}, None),
    ('music_net', (128, 97), {'head': 'pool', 'batchnorm': True,
                              'members': 3}, None),
]


@pytest.mark.parametrize('name,shape,options,count', VARIANT_CASES)
def test_variants_train_and_reload(tmp_path, rng, name, shape, options,
                                   count):
    # Every variant learns (forward, backward), saves and loads back from
    # its spec() alone, batch normalisation's running statistics included.
    np.random.seed(0)
    net = build_model(name, n_classes=7, input_shape=shape, **options)
    if count is not None:
        assert sum(p.size for p in net.params()) == count
    x = rng.standard_normal((3, 1) + shape).astype(np.float32)
    t = np.array([0, 3, 6], np.int32)
    optimizer = chainer.optimizers.Adam(1e-3)
    optimizer.setup(net)
    for _ in range(2):
        with chainer.using_config('train', True):
            loss, _ = net(x, t)
        net.cleargrads()
        loss.backward()
        optimizer.update()
    expected = net.predict(x).array
    spec = net.spec()
    assert spec['model'] == {'music_net_pool': 'music_net'}.get(name, name)
    path = save_model(net, tmp_path / 'm.npz')
    again = load_model(path, spec=spec, input_shape=shape)
    assert type(again) is type(net) and again.spec() == spec
    assert_allclose(again.predict(x).array, expected, rtol=1e-5, atol=1e-6)


def test_pooling_and_batchnorm_are_where_asked():
    pooled = build_model('music_net_pool', n_classes=3)
    assert pooled.pooling and pooled.conv_shape == (64, 2, 2)
    assert pooled.fc4.W.shape == (4096, 64 * 2 * 2)
    bn = build_model('music_net', n_classes=3, batchnorm=True,
                     input_shape=SMALL)
    assert isinstance(bn.bn3, chainer.links.BatchNormalization)
    assert bn.conv1.b is None  # batch norm's beta replaces the bias
    small = build_model('small_cnn', n_classes=6, input_shape=(128, 97))
    assert 90000 < sum(p.size for p in small.params()) < 120000
    assert not hasattr(small, 'fc4')


@pytest.mark.parametrize('call, message', [
    (lambda: build_model('resnet'), 'model must be one of'),
    (lambda: build_model('wave', input_shape=(256, 321)), 'WAVE_NET takes'),
    (lambda: build_model('music_net_pool', input_shape=(256, 81)),
     'too small'),
    (lambda: build_model('music_net', head='attention'), 'head must be'),
    (lambda: build_model('small_cnn', init='v1.8'), 'small_cnn'),
    (lambda: build_model('small_cnn', head='flatten'),
     "small_cnn's head must be one of"),
])
def test_bad_variants(call, message):
    with pytest.raises(ParameterError, match=message):
        call()


def test_small_cnn_layers_and_he_initialisation():
    from music_classification.net import SMALL_CNN
    np.random.seed(0)
    net = SMALL_CNN()
    assert net.n_classes == 7 and net.input_shape == (128, 97)
    assert net.layers == ((16, 3, 1), (32, 3, 1), (64, 3, 1), (128, 3, 1))
    assert net.conv_shape == (128, 8, 7)  # four 2 x 2 poolings
    assert net.pooling and net.batchnorm and net.head == 'pool'
    assert hasattr(net, 'bn4') and net.conv1.b is None
    assert net.fc5.W.shape == (7, 2 * 128 * 8)
    # He initialisation of the convolutions, 1 / fan_in for fc5
    W = net.conv4.W.array
    assert W.std() == pytest.approx(np.sqrt(2.0 / (64 * 9)), rel=0.02)
    assert net.fc5.W.array.std() == pytest.approx(np.sqrt(1.0 / 2048),
                                                  rel=0.05)
    wide = SMALL_CNN(width=8, n_classes=3)
    assert wide.layers[0][0] == 8 and wide.spec() == {
        'model': 'small_cnn', 'width': 8, 'dropout_ratio': 0.3}


def test_wave_net_defaults_checks_and_front_end():
    import inspect
    from music_classification.net import WAVE_NET
    defaults = {k: p.default for k, p in
                inspect.signature(WAVE_NET).parameters.items()}
    assert defaults == {
        'n_classes': 7, 'input_shape': (1, 163840), 'dropout_ratio': 0.5,
        'init': 'v1.9', 'pooling': False, 'batchnorm': False,
        'head': 'flatten', 'n_filters': 256, 'filter_length': 2048,
        'hop': 512}
    for shape in ((2, 8192), (1, 511), (8192,)):
        with pytest.raises(ParameterError) as e:
            WAVE_NET(input_shape=shape, filter_length=512)
        assert str(e.value) == (
            'WAVE_NET takes (1, n_samples) waveforms of at least 512 '
            'samples, got input shape {}'.format(shape))
    WAVE_NET(n_classes=2, input_shape=(1, 512 + 127 * 128), n_filters=64,
             filter_length=512, hop=128, head='pool')  # 128 frames
    np.random.seed(0)
    net = WAVE_NET(n_classes=3, input_shape=(1, 81920), filter_length=512,
                   pooling=True, batchnorm=True, head='pool', init='v1.8')
    assert (net.pooling, net.batchnorm, net.head, net.init) == (
        True, True, 'pool', 'v1.8')
    assert hasattr(net, 'bn3') and net.n_classes == 3
    assert net.conv0.W.shape == (256, 1, 1, 512)
    assert net.conv0.stride == (1, 512)
    assert net.conv0.W.array.std() == pytest.approx(0.02, rel=0.02)  # v1.8
    spec = net.spec()
    assert spec == {'model': 'wave', 'pooling': True, 'batchnorm': True,
                    'head': 'pool', 'dropout_ratio': 0.5, 'init': 'v1.8',
                    'n_filters': 256, 'filter_length': 512, 'hop': 512}
    again = build_model(n_classes=3, input_shape=(1, 81920), **spec)
    assert again.spec() == spec
    v19 = WAVE_NET(n_classes=3, input_shape=(1, 81920), filter_length=512,
                   head='pool')
    assert v19.conv0.W.array.std() == pytest.approx(
        np.sqrt(0.02 * np.sqrt(512) / 512), rel=0.02)


def test_wave_net_defaults_and_shortest_input():
    from music_classification.net import WAVE_NET
    net = WAVE_NET(n_classes=3, input_shape=(1, 64 + 32 * 40), n_filters=64,
                   filter_length=64, hop=32)  # 64 x 41
    assert not net.batchnorm and not net.pooling
    assert not hasattr(net, 'bn1')
    with pytest.raises(ParameterError, match='at least 64 samples'):
        WAVE_NET(n_classes=3, input_shape=(1, 63), n_filters=4,
                 filter_length=64, hop=32)
    # one filter's length is one frame: enough for the front end, too
    # little for the convolutions after it
    with pytest.raises(ParameterError) as e:
        WAVE_NET(n_classes=3, input_shape=(1, 64), n_filters=48,
                 filter_length=64, hop=32)
    assert str(e.value) == ("input shape (48, 1) is too small for wave's "
                            "convolutions (need at least 48 x 33)")
    least = WAVE_NET(input_shape=(1, 64 + 32 * 32), n_filters=48,
                     filter_length=64, hop=32)  # 48 x 33, the least
    assert least.n_classes == 7 and least.conv_shape == (64, 1, 1)
    with pytest.raises(ParameterError, match=r'\(48, 32\) is too small'):
        WAVE_NET(input_shape=(1, 64 + 32 * 32 - 1), n_filters=48,
                 filter_length=64, hop=32)  # a sample short of 33 frames


def test_load_model_builds_the_spec_with_the_given_input_shape(tmp_path):
    # MUSIC_NET's fc4 depends on the input shape given to load_model.
    net = build_model('music_net', n_classes=3, input_shape=(64, 41))
    path = str(tmp_path / 'model.npz')
    save_model(net, path)
    again = load_model(path, spec=net.spec(), input_shape=(64, 41))
    assert_array_equal(again.fc4.W.array, net.fc4.W.array)
    np.savez(path, **{k: v for k, v in np.load(path).items()
                      if k != 'fc5/b'})
    with pytest.raises(ModelFileError) as e:
        load_model(path, spec=net.spec(), input_shape=(64, 41))
    assert str(e.value) == '{}: not a MUSIC_NET model (no fc5/b)'.format(path)


def _with_statistics(weight, seed=0):
    from music_classification.net import SMALL_CNN
    np.random.seed(seed)
    model = SMALL_CNN(n_classes=3, input_shape=(32, 24), width=4)
    model.add_statistics_classifier(weight)
    rng = np.random.default_rng(seed)
    model.stats_W[...] = rng.normal(size=(3, 80))
    model.stats_b[...] = rng.normal(size=3)
    model.stats_mean[...] = rng.normal(size=80)
    model.stats_scale[...] = rng.uniform(1, 3, size=80)
    return model


@pytest.mark.parametrize('weight', [0.25, 0.5, 1.0])
def test_predict_mixes_in_the_statistics_classifier(weight):
    from music_classification.features import window_statistics
    model = _with_statistics(weight)
    x = np.random.default_rng(1).normal(size=(4, 1, 32, 24)).astype(
        np.float32)
    with chainer.using_config('train', False):
        net = chainer.functions.softmax(model.forward(x)).array
    s = (window_statistics(x=x) - model.stats_mean) / model.stats_scale
    z = s @ model.stats_W.T + model.stats_b
    stats = np.exp(z - z.max(1, keepdims=True))
    stats /= stats.sum(1, keepdims=True)
    assert_allclose(model.predict(x).array,
                    (1 - weight) * net + weight * stats, rtol=1e-4,
                    atol=1e-6)
    assert model.spec()['stats_weight'] == weight


def test_a_statistics_classifier_is_saved_loaded_and_never_trained(
        tmp_path):
    model = _with_statistics(0.5)
    x = np.random.default_rng(2).normal(size=(6, 1, 32, 24)).astype(
        np.float32)
    fitted = [model.stats_W.copy(), model.stats_b.copy()]
    optimizer = chainer.optimizers.Adam(1e-2)
    optimizer.setup(model)
    optimizer.add_hook(chainer.optimizer_hooks.WeightDecay(0.1))
    t = np.array([0, 1, 2, 0, 1, 2], np.int32)
    optimizer.update(lambda: model(x, t)[0])
    assert_array_equal(model.stats_W, fitted[0])
    assert_array_equal(model.stats_b, fitted[1])
    assert sum(p.size for p in model.params()) == sum(
        p.size for p in build_model(**dict(model.spec(), stats_weight=0),
                                    n_classes=3,
                                    input_shape=(32, 24)).params())
    path = save_model(model, str(tmp_path / 'model.npz'))
    loaded = load_model(path, spec=model.spec(), input_shape=(32, 24))
    assert loaded.stats_weight == 0.5
    assert_allclose(loaded.predict(x).array, model.predict(x).array,
                    rtol=1e-6)
    plain = build_model(**dict(model.spec(), stats_weight=0.0),
                        n_classes=3, input_shape=(32, 24))
    assert 'stats_weight' not in plain.spec()
    assert not hasattr(plain, 'stats_W')


@pytest.mark.parametrize('model, weight, message', [
    ('small_cnn', 1.5, 'stats_weight must be in (0, 1], got 1.5'),
    ('small_cnn', -0.5, 'stats_weight must be in (0, 1], got -0.5'),
    ('wave', 0.5, 'a statistics classifier needs mel features, not wave'),
    ('small_cnn_8_frames', 0.5, 'a statistics classifier needs windows of '
     'at least 9 frames and 1 to n_mels coefficients, got 32 x 8 and 20'),
    ('small_cnn_16_mels', 0.5, 'a statistics classifier needs windows of '
     'at least 9 frames and 1 to n_mels coefficients, got 16 x 24 and 20'),
])
def test_a_statistics_classifier_is_refused(model, weight, message):
    shape = {'wave': (1, 40960), 'small_cnn_8_frames': (32, 8),
             'small_cnn_16_mels': (16, 24)}.get(model, (32, 24))
    options = {'head': 'pool'} if model == 'wave' else {}
    model = model if model == 'wave' else 'small_cnn'
    with pytest.raises(ParameterError) as e:
        build_model(model, n_classes=3, input_shape=shape,
                    stats_weight=weight, **options)
    assert str(e.value) == message



def test_a_statistics_classifier_of_other_coefficients_reloads(tmp_path):
    from music_classification.net import SMALL_CNN
    model = SMALL_CNN(n_classes=3, input_shape=(32, 24), width=4)
    model.add_statistics_classifier(0.4, n_coefficients=12)
    model.stats_W[...] = np.random.default_rng(0).normal(size=(3, 48))
    spec = model.spec()
    assert (spec['stats_weight'], spec['stats_coefficients']) == (0.4, 12)
    path = save_model(model, str(tmp_path / 'model.npz'))
    loaded = load_model(path, spec=spec, input_shape=(32, 24))
    assert loaded.n_coefficients == 12
    assert_array_equal(loaded.stats_W, model.stats_W)
    default = build_model('small_cnn', n_classes=3, input_shape=(32, 24),
                          stats_weight=0.4)
    assert 'stats_coefficients' not in default.spec()


def test_an_ensemble_predicts_its_members_mean_probability():
    from music_classification.net import ENSEMBLE
    np.random.seed(3)
    model = build_model('small_cnn', n_classes=3, input_shape=(32, 24),
                        width=4, members=3, stats_weight=0.25)
    assert isinstance(model, ENSEMBLE) and len(model) == 3
    assert model.spec() == {'model': 'small_cnn', 'width': 4,
                            'dropout_ratio': 0.3, 'members': 3,
                            'stats_weight': 0.25}
    # Each member starts from its own initial weights.
    assert not np.allclose(model[0].conv1.W.array, model[1].conv1.W.array)
    rng = np.random.default_rng(4)
    model.stats_W[...] = rng.normal(size=(3, 80))
    x = rng.normal(size=(5, 1, 32, 24)).astype(np.float32)
    with chainer.using_config('train', False):
        members = np.mean([chainer.functions.softmax(m.forward(x)).array
                           for m in model], axis=0)
        assert_allclose(np.exp(model.forward(x).array), members,
                        rtol=1e-5, atol=1e-7)
    z = model.statistics_scores(x)
    stats = np.exp(z - z.max(1, keepdims=True))
    stats /= stats.sum(1, keepdims=True)
    assert_allclose(model.predict(x).array, 0.75 * members + 0.25 * stats,
                    rtol=1e-5, atol=1e-7)


def test_each_member_of_an_ensemble_learns_from_its_own_loss():
    from music_classification.training import loss_with_report
    np.random.seed(27)  # members that disagree with their mean, below
    model = build_model('small_cnn', n_classes=3, input_shape=(32, 24),
                        width=4, members=2, dropout_ratio=0.0)
    alone = build_model('small_cnn', n_classes=3, input_shape=(32, 24),
                        width=4, dropout_ratio=0.0)
    alone.copyparams(model[1])
    rng = np.random.default_rng(6)
    x = rng.normal(size=(4, 1, 32, 24)).astype(np.float32)
    t = np.array([0, 1, 2, 1], np.int32)
    # The accuracy is the ensemble's, not a member's.
    F = chainer.functions
    with chainer.using_config('train', False):
        scores = model.member_scores(x)
        expected = float(F.accuracy(model.combine(scores), t).array)
        assert expected not in [float(F.accuracy(y, t).array)
                                for y in scores]
        assert float(model(x, t)[1].array) == expected
        reporter = chainer.Reporter()
        reporter.add_observer('main', model)
        observed = {}
        with reporter.scope(observed):
            loss_with_report(model)(x, t)
        assert float(observed['main/accuracy'].array) == expected
    ys = [chainer.functions.softmax_cross_entropy(m.forward(x), t).array
          for m in model]
    loss, _ = model(x, t)
    assert_allclose(loss.array, np.mean(ys), rtol=1e-6)
    assert_allclose(loss_with_report(model)(x, t).array, np.mean(ys),
                    rtol=1e-6)
    model.cleargrads()
    loss.backward()
    own, _ = alone(x, t)
    alone.cleargrads()
    own.backward()
    # Member 1's gradient is its own loss's (halved by the mean), whatever
    # member 0 says: the members do not learn to make up for each other.
    assert_allclose(model[1].conv1.W.grad, alone.conv1.W.grad / 2,
                    rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize('members, message', [
    (0, 'members must be a positive integer, got 0'),
    (1.5, 'members must be a positive integer, got 1.5'),
])
def test_bad_member_counts(members, message):
    with pytest.raises(ParameterError) as e:
        build_model('small_cnn', n_classes=3, input_shape=(32, 24),
                    members=members)
    assert str(e.value) == message


def _bn_statistics(net, rng):
    # Running statistics that no fresh network has
    for name in ('bn1', 'bn2', 'bn3', 'bn4'):
        bn = getattr(net, name)
        bn.avg_mean[...] = rng.normal(size=bn.avg_mean.shape)
        bn.avg_var[...] = rng.uniform(0.5, 2, size=bn.avg_var.shape)


@pytest.mark.parametrize('members', [1, 3])
def test_a_network_starts_from_all_but_the_output_layer_of_another(members):
    from music_classification.net import copy_feature_layers
    np.random.seed(5)
    rng = np.random.default_rng(5)
    # Trained on 4 classes (a snapshot ensemble of 3, or one network) ...
    source = build_model('small_cnn', n_classes=4, input_shape=(32, 24),
                         width=4, members=members, stats_weight=0.3)
    last = source[members - 1] if members > 1 else source
    for net in (source if members > 1 else [source]):
        _bn_statistics(net, rng)
    # ... and started on 3 other classes.
    target = build_model('small_cnn', n_classes=3, input_shape=(32, 24),
                         width=4, stats_weight=0.3)
    output = target.fc5.W.array.copy(), target.fc5.b.array.copy()
    source.stats_W[...] = rng.normal(size=source.stats_W.shape)
    target.stats_W[...] = rng.normal(size=target.stats_W.shape)
    stats_W = target.stats_W.copy()
    # 4 convolutions, 4 batch norms of 5 arrays (N included)
    assert copy_feature_layers(source, target) == 24
    for name in ('conv1', 'conv2', 'conv3', 'conv4'):
        assert_array_equal(getattr(target, name).W.array,
                           getattr(last, name).W.array)
    for name in ('bn1', 'bn4'):
        for key in ('gamma', 'beta', 'avg_mean', 'avg_var'):
            value = getattr(getattr(target, name), key)
            assert_array_equal(getattr(value, 'array', value), getattr(
                getattr(getattr(last, name), key), 'array',
                getattr(getattr(last, name), key)))
    # The output layer and the statistics classifier are its own.
    assert_array_equal(target.fc5.W.array, output[0])
    assert_array_equal(target.fc5.b.array, output[1])
    assert_array_equal(target.stats_W, stats_W)
    # The copies are copies: training one does not move the other.
    target.conv1.W.array[...] += 1
    assert not np.allclose(target.conv1.W.array, last.conv1.W.array)


@pytest.mark.parametrize('model', ['small_cnn', 'music_net_pool'])
def test_the_layers_head_adds_every_convolutions_channel_statistics(
        model, rng):
    # 'pool_layers' reads what 'pool' reads, then the mean, standard
    # deviation and maximum over frequency and time of each channel of
    # each convolution (after its ReLU and pooling), in layer order.
    np.random.seed(2)
    shape = (32, 24) if model == 'small_cnn' else (112, 89)
    options = dict(width=4) if model == 'small_cnn' else dict(head='pool')
    pool = build_model(model, n_classes=3, input_shape=shape, **options)
    options['head'] = 'pool_layers'
    both = build_model(model, n_classes=3, input_shape=shape, **options)
    copy_feature_layers(pool, both)
    x = rng.uniform(0, 3, size=(2, 1) + shape).astype(np.float32)
    expected = []
    with chainer.using_config('train', False):
        h = x
        for i in range(1, len(pool.layers) + 1):
            h = pool['conv{}'.format(i)](h)
            if pool.batchnorm:
                h = pool['bn{}'.format(i)](h)
            if pool.pooling:
                h = F.max_pooling_2d(h, 2)  # cover_all, as Chainer
            h = F.relu(h)
            a = h.array.reshape(len(x), h.shape[1], -1)
            expected += [a.mean(axis=2), a.std(axis=2), a.max(axis=2)]
        got = both.embed(x).array
        first = pool.embed(x).array
    channels = sum(out for out, _, _ in pool.layers)
    assert got.shape == (2, first.shape[1] + 3 * channels)
    assert both.fc5.W.shape == (3, got.shape[1])
    assert_allclose(got[:, :first.shape[1]], first, rtol=1e-6)
    assert_allclose(got[:, first.shape[1]:], np.concatenate(expected, 1),
                    rtol=1e-4, atol=1e-5)
    # what it adds is read by fc5 and learns: gradients reach conv1 through
    # the channel statistics alone (fc5 reads nothing else)
    both.fc5.W.array[:, :first.shape[1]] = 0
    loss, _ = both(x, np.array([0, 2], np.int32))
    both.cleargrads()
    loss.backward()
    assert np.isfinite(both.conv1.W.grad).all()
    assert np.abs(both.conv1.W.grad).sum() > 0
    # the spec names the head; a plain small_cnn's spec as before
    assert both.spec()['head'] == 'pool_layers'
    assert (model == 'small_cnn') == ('head' not in pool.spec())


@pytest.mark.parametrize('trained, other, message', [
    (dict(model='small_cnn', width=4), dict(model='small_cnn', width=8),
     'the trained small_cnn has other options: width 4 where this one has '
     '8'),
    (dict(model='small_cnn', width=4),
     dict(model='music_net', pooling=True, head='pool'),
     'a small_cnn, not a music_net'),
    (dict(model='music_net', head='flatten'),
     dict(model='music_net', head='pool_layers'),
     'the trained music_net has other options: head flatten where this one '
     'has pool_layers'),
    (dict(model='music_net', head='pool'),
     dict(model='music_net_pool', head='pool'),
     'the trained music_net has other options: pooling False where this one '
     'has True'),
    # options alike, another input: MUSIC_NET's fc4 does not fit
    (dict(model='music_net', input_shape=(112, 160)), dict(model='music_net'),
     'the trained music_net does not fit this one: fc4/W (4096, '),
])
def test_a_network_of_another_shape_is_refused_by_name(trained, other,
                                                       message):
    from music_classification.net import copy_feature_layers
    source = build_model(n_classes=4, **dict(dict(input_shape=(112, 89)),
                                             **trained))
    target = build_model(n_classes=3, input_shape=(112, 89), **other)
    with pytest.raises(ParameterError, match=re.escape(message)):
        copy_feature_layers(source, target)


def test_an_ensemble_of_members_is_not_started_from_one_network():
    from music_classification.net import copy_feature_layers
    source = build_model('small_cnn', n_classes=4, input_shape=(32, 24),
                         width=4)
    target = build_model('small_cnn', n_classes=3, input_shape=(32, 24),
                         width=4, members=2)
    with pytest.raises(ParameterError, match='ensemble'):
        copy_feature_layers(source, target)


@pytest.mark.parametrize('options, spec, size', [
    # max and mean over time of 561 front-end and 3 x 64 mid-end
    # channels, and the 200 units of the penultimate layer
    ({}, {}, 2 * (561 + 3 * 64) + 200),
    ({'head': 'pool'}, {}, 1706),
    # and each channel's standard deviation over time
    ({'head': 'pool_layers'}, {'head': 'pool_layers'}, 1706 + 753),
    # their signed square roots
    ({'head': 'pool_layers', 'signed_sqrt': True},
     {'head': 'pool_layers', 'signed_sqrt': True}, 1706 + 753),
])
def test_musicnn_shapes_spec_and_refusals(options, spec, size):
    from music_classification.features import MUSICNN_FEATURES
    model = build_model('musicnn', n_classes=4,
                        input_shape=MUSICNN_FEATURES.input_shape, **options)
    assert model.spec() == {'model': 'musicnn', 'dropout_ratio': 0.5,
                            **spec}
    x = np.random.default_rng(0).random((3, 1, 96, 187), np.float32)
    with chainer.using_config('train', False):
        h = model.embed(x)
        y = model.forward(x)
    assert h.shape == (3, size)
    assert y.shape == (3, 4)
    assert_allclose(y.array, h.array @ model.fc5.W.array.T
                    + model.fc5.b.array, rtol=1e-5, atol=1e-5)
    rebuilt = build_model(n_classes=4, input_shape=(96, 187), **model.spec())
    assert type(rebuilt) is type(model)
    assert rebuilt.signed_sqrt == model.signed_sqrt
    with pytest.raises(ParameterError, match='musicnn takes 96 x 187'):
        build_model('musicnn', n_classes=4, input_shape=(128, 97))
    with pytest.raises(ParameterError, match='n_classes must be at least 2'):
        build_model('musicnn', n_classes=1, input_shape=(96, 187))
    with pytest.raises(ParameterError, match='expects input of shape'):
        model.embed(x[:, :, :64])
    with pytest.raises(ParameterError, match="musicnn's head is one of "
                       "pool, pool_layers, got 'flatten'"):
        build_model('musicnn', n_classes=4, input_shape=(96, 187),
                    head='flatten')


def test_musicnn_pool_layers_adds_each_channels_deviation_over_time():
    from music_classification import pretrained
    arrays = pretrained.musicnn_arrays()
    plain, layers = (build_model('musicnn', n_classes=3,
                                 input_shape=(96, 187), head=head)
                     for head in ('pool', 'pool_layers'))
    plain.load_pretrained(arrays)
    layers.load_pretrained(arrays)
    x = np.random.default_rng(1).random((2, 1, 96, 187), np.float32)
    with chainer.using_config('train', False):
        h, g = plain.embed(x).array, layers.embed(x).array
        channels = layers.channels(x).array
    assert channels.shape == (2, 753, 187)
    assert_allclose(g[:, :1706], h, rtol=1e-6)
    assert_allclose(h[:, :753], channels.max(axis=2), rtol=1e-6)
    assert_allclose(g[:, 1706:], channels.std(axis=2), rtol=1e-4,
                    atol=1e-5)
    assert g[:, 1706:].std() > 0.01  # the deviations vary


@pytest.mark.parametrize('head', ['pool', 'pool_layers'])
def test_musicnn_signed_sqrt_reads_the_square_roots_of_its_features(head):
    from music_classification import pretrained
    arrays = pretrained.musicnn_arrays()
    plain, rooted = (build_model('musicnn', n_classes=3,
                                 input_shape=(96, 187), head=head,
                                 signed_sqrt=signed)
                     for signed in (False, True))
    plain.load_pretrained(arrays)
    rooted.load_pretrained(arrays)
    x = np.random.default_rng(2).random((2, 1, 96, 187), np.float32)
    with chainer.using_config('train', False):
        h, g = plain.embed(x).array, rooted.embed(x).array
    assert (h < 0).any() and (h > 0).any()  # both signs to keep
    assert_allclose(g, np.sign(h) * np.sqrt(np.abs(h)), rtol=1e-5,
                    atol=1e-5)
    # its gradient stays finite where a feature is 0
    z = chainer.Variable(np.array([[0.0, 4.0, -9.0]], np.float32))
    from music_classification.net import _signed_sqrt
    y = _signed_sqrt(z)
    assert_allclose(y.array, [[0.0, 2.0, -3.0]], atol=1e-5)
    F.sum(y).backward()
    assert np.isfinite(z.grad).all()


@pytest.mark.parametrize('source, target', [
    ({'signed_sqrt': True}, {}),
    ({}, {'signed_sqrt': True, 'head': 'pool_layers'}),
])
def test_musicnn_starts_from_another_whatever_its_square_roots(source,
                                                               target):
    # only fc5, which is not copied, reads the square roots
    from music_classification.net import copy_feature_layers
    a = build_model('musicnn', n_classes=4, input_shape=(96, 187), **source)
    b = build_model('musicnn', n_classes=3, input_shape=(96, 187), **target)
    assert copy_feature_layers(a, b) > 0
    assert_array_equal(b.timbral74.W.array, a.timbral74.W.array)
