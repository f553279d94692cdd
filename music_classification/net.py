"""MUSIC_NET: the original's convolutional network, in Chainer 7.

Three convolutions without pooling (the article found pooling hurt) and two
fully connected layers, over the ``(batch, 1, 256, 321)`` log-mel input::

    conv1  1 -> 16, ksize (16, 9), stride 4   -> (16, 61, 79)
    conv2 16 -> 32, ksize (5, 3),  stride 2   -> (32, 29, 39)
    conv3 32 -> 64, ksize (3, 3),  stride 2   -> (64, 14, 19)
    fc4   17,024 -> 4,096
    fc5   4,096 -> 7 (class 0 "Other", classes 1..6 the artists)

ReLU after every layer but the last, dropout 0.5 before fc4 and fc5.
The default network has 69,791,607 parameters, as the original.

Initial weights: the original passed ``wscale=0.02 * sqrt(fan_in)`` to every
layer. From Chainer v1.9 (May 2016) until ``wscale`` was removed in v2 that
meant HeNormal scaled by ``sqrt(wscale)``, i.e. a normal distribution with
std ``sqrt(wscale / fan_in) = sqrt(0.02) * fan_in ** -0.25`` (chainer issue
1806); the original's code is of that late v1 era, so ``init='v1.9'`` (the
default) draws conv1 0.0408, conv2 0.0359, conv3 0.0343, fc4 0.0124 and
fc5 0.0177. Up to Chainer v1.8 the same argument meant N(0, 0.02**2) for
every layer: ``init='v1.8'``. Biases start at 0 either way.
"""

import math

import chainer
import chainer.functions as F
import chainer.links as L
from chainer import initializers

from music_classification import features
from music_classification.errors import ParameterError

#: (out_channels, ksize, stride) of conv1, conv2 and conv3.
CONV_LAYERS = ((16, (16, 9), 4), (32, (5, 3), 2), (64, (3, 3), 2))
#: Width of the hidden fully connected layer fc4.
HIDDEN_UNITS = 4096
#: Readings of the original's ``wscale=0.02 * sqrt(fan_in)``: the Chainer v1
#: release range whose meaning they take.
INITS = ('v1.9', 'v1.8')


def initial_std(fan_in, init='v1.9'):
    """Std of the initial weights of a layer with ``fan_in`` inputs.

    ``'v1.9'`` (Chainer v1.9 to v1.24, the original's era): ``sqrt(wscale /
    fan_in)`` with ``wscale = 0.02 * sqrt(fan_in)``; ``'v1.8'`` (Chainer v1.8
    and older): ``wscale / sqrt(fan_in) = 0.02``.

    >>> round(initial_std(16 * 9), 4)
    0.0408
    """
    wscale = 0.02 * math.sqrt(fan_in)
    if init == 'v1.9':
        return math.sqrt(wscale / fan_in)
    if init == 'v1.8':
        return wscale / math.sqrt(fan_in)
    raise ParameterError('init must be one of {}, got {!r}'.format(INITS,
                                                                   init))


def conv_output_shape(input_shape):
    """``(channels, height, width)`` after conv3 for a given input shape.

    Args:
        input_shape (tuple of int): ``(n_mels, frames)`` of one window.

    Raises:
        ParameterError: the input is too small for the three convolutions.
    """
    h, w = input_shape
    channels = 1
    for channels, (kh, kw), stride in CONV_LAYERS:
        h, w = (h - kh) // stride + 1, (w - kw) // stride + 1
        if h < 1 or w < 1:
            raise ParameterError(
                'input shape {} is too small for MUSIC_NET\'s convolutions '
                '(need at least 64 mel bands x 41 frames)'.format(
                    tuple(input_shape)))
    return channels, h, w


class MUSIC_NET(chainer.Chain):
    """The original network, with the class count and input shape as options.

    Args:
        n_classes (int): outputs of fc5 (the original: 7, "Other" plus six
            artists).
        input_shape (tuple of int): ``(n_mels, frames)`` of one window; fc4's
            input size is derived from it (the original hard-coded
            64 * 14 * 19 for (256, 321)).
        dropout_ratio (float): dropout before fc4 and fc5 while
            ``chainer.config.train`` is true.
        init (str): how the original's ``wscale`` is read (see
            :func:`initial_std`): ``'v1.9'`` (default, per-layer std) or
            ``'v1.8'`` (N(0, 0.02**2) everywhere).
    """

    def __init__(self, n_classes=7, input_shape=(features.N_MELS, 321),
                 dropout_ratio=0.5, init='v1.9'):
        super(MUSIC_NET, self).__init__()
        if int(n_classes) < 2:
            raise ParameterError(
                'n_classes must be at least 2, got {}'.format(n_classes))
        self.n_classes = int(n_classes)
        self.input_shape = tuple(int(s) for s in input_shape)
        self.dropout_ratio = dropout_ratio
        self.flat_size = int(chainer.utils.size_of_shape(
            conv_output_shape(self.input_shape)))
        self.init = init
        initial_std(1, init)  # rejects an unknown reading

        def w(fan_in):
            return initializers.Normal(initial_std(fan_in, init))
        (c1, k1, s1), (c2, k2, s2), (c3, k3, s3) = CONV_LAYERS
        fan1, fan2, fan3 = (k1[0] * k1[1], c1 * k2[0] * k2[1],
                            c2 * k3[0] * k3[1])
        with self.init_scope():
            self.conv1 = L.Convolution2D(1, c1, ksize=k1, stride=s1, pad=0,
                                         initialW=w(fan1))
            self.conv2 = L.Convolution2D(c1, c2, ksize=k2, stride=s2, pad=0,
                                         initialW=w(fan2))
            self.conv3 = L.Convolution2D(c2, c3, ksize=k3, stride=s3, pad=0,
                                         initialW=w(fan3))
            self.fc4 = L.Linear(self.flat_size, HIDDEN_UNITS,
                                initialW=w(self.flat_size))
            self.fc5 = L.Linear(HIDDEN_UNITS, self.n_classes,
                                initialW=w(HIDDEN_UNITS))

    def __call__(self, x, t):
        """Loss and accuracy of a batch, as the original.

        Args:
            x: ``(batch, 1, n_mels, frames)`` float32 features.
            t: ``(batch,)`` int32 labels.

        Returns:
            tuple: ``(loss, accuracy)`` Variables.
        """
        y = self.forward(x)
        loss = F.softmax_cross_entropy(y, t)
        accuracy = F.accuracy(y, t)
        return loss, accuracy

    def forward(self, x):
        """Unnormalised class scores ``(batch, n_classes)``."""
        expected = (1,) + self.input_shape
        if x.ndim != 4 or tuple(x.shape[1:]) != expected:
            raise ParameterError(
                'MUSIC_NET expects input of shape (batch, {}, {}, {}), got {}'
                .format(*(expected + (tuple(x.shape),))))
        h = F.relu(self.conv1(x))
        h = F.relu(self.conv2(h))
        h = F.relu(self.conv3(h))
        h = F.reshape(h, (-1, self.flat_size))  # (batch, 64 * 14 * 19)
        h = F.dropout(h, ratio=self.dropout_ratio)
        h = F.dropout(F.relu(self.fc4(h)), ratio=self.dropout_ratio)
        return self.fc5(h)

    def predict(self, x):
        """Class probabilities ``(batch, n_classes)``; never drops out."""
        with chainer.using_config('train', False):
            return F.softmax(self.forward(x))
