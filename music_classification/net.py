"""MUSIC_NET, the original's convolutional network, and its variants.

Three convolutions without pooling (the article found pooling hurt) and two
fully connected layers, over the ``(batch, 1, 256, 321)`` log-mel input::

    conv1  1 -> 16, ksize (16, 9), stride 4   -> (16, 61, 79)
    conv2 16 -> 32, ksize (5, 3),  stride 2   -> (32, 29, 39)
    conv3 32 -> 64, ksize (3, 3),  stride 2   -> (64, 14, 19)
    fc4   17,024 -> 4,096
    fc5   4,096 -> 7 (class 0 "Other", classes 1..6 the artists)

ReLU after every layer but the last, dropout 0.5 before fc4 and fc5.
The default network has 69,791,607 parameters, as the original.

Variants, for the ablation study and the improved recipe (see
:func:`build_model`; a trained model's ``labels.json`` names its variant):

* ``MUSIC_NET(pooling=True)`` (``music_net_pool``): 2 x 2 max pooling after
  each convolution, as the article tried; ``batchnorm=True`` adds batch
  normalisation after each convolution; ``head='pool'`` replaces the
  flatten + fc4 (70 M parameters) by mean and max pooling over time, so the
  net is small; ``head='pool_layers'`` reads besides the mean, standard
  deviation and maximum over frequency and time of every convolution's
  channels (for a linear probe of a trained network).
* :class:`WAVE_NET` (``wave``): the article's raw-waveform experiment, a
  learned 1-D filter bank (256 filters of 2048 samples, hop 512) in front of
  MUSIC_NET's layers, on the waveform instead of the mel spectrogram.
* :class:`SMALL_CNN` (``small_cnn``): a small modern CNN: four 3 x 3
  convolutions with batch normalisation, max pooling, mean and max pooling
  over time, dropout, about 0.1 M parameters.

Any of them can be trained as an :class:`ENSEMBLE` of several networks
(``members``), whose prediction is their mean probability.

All share one forward: the convolutions (each ``conv -> [batch norm] ->
ReLU -> [max pool]``), then the head.

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
import numpy as np

from music_classification import fast_cpu, features
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


def _conv_out(size, ksize, stride, pad):
    return chainer.utils.conv.get_conv_outsize(size, ksize, stride, pad)


def _pool_out(size):
    # F.max_pooling_2d(h, 2) with its default cover_all=True
    return chainer.utils.conv.get_conv_outsize(size, 2, 2, 0, cover_all=True)


def conv_output_shape(input_shape, layers=CONV_LAYERS, pooling=False,
                      pad=0, name='MUSIC_NET'):
    """``(channels, height, width)`` after the last convolution.

    Args:
        input_shape (tuple of int): ``(n_mels, frames)`` of one window.
        layers (tuple): ``(out_channels, ksize, stride)`` of each layer.
        pooling (bool): 2 x 2 max pooling after each convolution.

    Raises:
        ParameterError: the input is too small for the convolutions.
    """
    h, w = input_shape
    channels = 1  # with no layers, the input's one channel
    for channels, ksize, stride in layers:
        (kh, kw), (sh, sw) = _pair(ksize), _pair(stride)
        h, w = _conv_out(h, kh, sh, pad), _conv_out(w, kw, sw, pad)
        if pooling:  # a size below 1 stays below 1
            h, w = _pool_out(h), _pool_out(w)
        if h < 1 or w < 1:
            raise ParameterError(
                'input shape {} is too small for {}\'s convolutions (need '
                'at least {} x {})'.format(
                    tuple(input_shape), name,
                    *min_input_shape(layers, pooling, pad)))
    return channels, h, w


def min_input_shape(layers=CONV_LAYERS, pooling=False, pad=0):
    """The smallest ``(height, width)`` that :func:`conv_output_shape`
    accepts: 48 mel bands x 33 frames for MUSIC_NET's convolutions.

    Args: as :func:`conv_output_shape`.
    """
    h = w = 1  # after the last layer
    for _, ksize, stride in reversed(tuple(layers)):
        (kh, kw), (sh, sw) = _pair(ksize), _pair(stride)
        if pooling:  # ceil(size / 2) >= h
            h, w = 2 * h - 1, 2 * w - 1
        h = max(1, (h - 1) * sh + kh - 2 * pad)
        w = max(1, (w - 1) * sw + kw - 2 * pad)
    return h, w


def _pair(x):
    return tuple(x) if isinstance(x, (tuple, list)) else (x, x)


#: Heads: ``'flatten'`` (the original: flatten, dropout, fc4 of 4,096 ReLU
#: units, dropout, fc5), ``'pool'`` (mean and max over time of each
#: channel and frequency row, dropout, fc5) and ``'pool_layers'`` (``'pool'``
#: and the mean, standard deviation and maximum of each channel of every
#: convolution, over frequency and time).
HEADS = ('flatten', 'pool', 'pool_layers')
#: The heads without fc4, whose layers but fc5 are alike.
POOL_HEADS = ('pool', 'pool_layers')


class _Scoring(object):
    """What every network shares: the loss, predict and the statistics
    classifier. A subclass is also a ``chainer.Link`` and defines
    ``forward``, ``_spec``, ``variant``, ``n_classes`` and
    ``input_shape``."""

    #: Share of the statistics classifier in :meth:`predict` (0: none; see
    #: :meth:`add_statistics_classifier`).
    stats_weight = 0.0
    #: Train as at inference (``train --fine-tune``): batch norms keep
    #: their saved statistics and nothing drops out, so that training goes
    #: on from what a fitted output layer was fitted to.
    inference_mode_training = False

    def spec(self):
        """The variant and its options: ``build_model(**spec)`` rebuilds it.
        """
        spec = self._spec()
        if self.stats_weight:
            spec['stats_weight'] = self.stats_weight
            if self.n_coefficients != features.N_STATS_COEFFICIENTS:
                spec['stats_coefficients'] = self.n_coefficients
        return spec

    def __call__(self, x, t):
        """Loss and accuracy of a batch, as the original.

        The loss is the mean of the members' cross-entropies (a single
        network is its own one member); the accuracy is that of the
        network's prediction (:meth:`combine`, an ensemble's mean
        probability).

        Args:
            x: ``(batch, 1, n_mels, frames)`` float32 features.
            t: ``(batch,)`` int32 labels.

        Returns:
            tuple: ``(loss, accuracy)`` Variables.
        """
        ys = self.training_scores(x)
        loss = sum(F.softmax_cross_entropy(y, t) for y in ys) / len(ys)
        accuracy = F.accuracy(self.combine(ys), t)
        return loss, accuracy

    def member_scores(self, x):
        """Each member's unnormalised class scores ``(batch, n_classes)``,
        in a list (one network: ``[forward(x)]``)."""
        return [self.forward(x)]

    def training_scores(self, x):
        """:meth:`member_scores` as a training step computes them: with
        :attr:`inference_mode_training`, as at inference."""
        with chainer.using_config('train', chainer.config.train
                                  and not self.inference_mode_training):
            return self.member_scores(x)

    def combine(self, ys):
        """The network's scores from :meth:`member_scores`' list."""
        return ys[0]

    def predict(self, x):
        """Class probabilities ``(batch, n_classes)``; never drops out.

        With a statistics classifier, ``(1 - w) * p_net + w * p_stats``,
        ``w = stats_weight``.
        """
        with chainer.using_config('train', False):
            p = F.softmax(self.forward(x))
            if self.stats_weight:
                w = self.stats_weight
                p = (1 - w) * p + w * F.softmax(self.statistics_scores(x))
            return p

    def add_statistics_classifier(self, weight,
                                  n_coefficients=features.
                                  N_STATS_COEFFICIENTS):
        """Add a linear classifier on each window's MFCC-like statistics.

        It reads :func:`~music_classification.features.window_statistics`
        standardised by ``stats_mean`` and ``stats_scale``, scores them
        ``stats_W @ s + stats_b``, and :meth:`predict` mixes its
        probabilities with the network's by ``weight``. Its arrays are
        persistent values, not parameters: saved with the model, never
        trained by backpropagation. They start at 0 (a uniform guess);
        :func:`~music_classification.training.fit_statistics_classifier`
        fits them (a logistic regression, like the MFCC baseline's) on the
        training songs.
        """
        if not 0 < weight <= 1:
            raise ParameterError('stats_weight must be in (0, 1], got '
                                 '{}'.format(weight))
        if len(self.input_shape) != 2 or self.variant == 'wave':
            raise ParameterError('a statistics classifier needs mel '
                                 'features, not {}'.format(self.variant))
        n_mels, frames = self.input_shape
        least = 2 * features.DELTA_HALF_WIDTH + 1
        if frames < least or not 1 <= n_coefficients <= n_mels:
            raise ParameterError(
                'a statistics classifier needs windows of at least {} '
                'frames and 1 to n_mels coefficients, got {} x {} and '
                '{}'.format(least, n_mels, frames, n_coefficients))
        size = 4 * int(n_coefficients)
        self.stats_weight = float(weight)
        self.n_coefficients = int(n_coefficients)
        for name, shape, fill in (('stats_W', (self.n_classes, size), 0),
                                  ('stats_b', (self.n_classes,), 0),
                                  ('stats_mean', (size,), 0),
                                  ('stats_scale', (size,), 1)):
            self.add_persistent(name, self.xp.full(shape, fill, np.float32))

    def _check_input(self, x):
        expected = (1,) + self.input_shape
        if x.ndim != 4 or tuple(x.shape[1:]) != expected:
            raise ParameterError(
                '{} expects input of shape (batch, {}, {}, {}), got {}'
                .format(*((type(self).__name__,) + expected
                          + (tuple(x.shape),))))

    def statistics_scores(self, x):
        """The statistics classifier's unnormalised scores
        ``(batch, n_classes)`` (an array)."""
        x = x.array if isinstance(x, chainer.Variable) else x
        s = features.window_statistics(x=x,
                                       n_coefficients=self.n_coefficients)
        s = (s - self.stats_mean) / self.stats_scale
        return s @ self.stats_W.T + self.stats_b


class _ConvClassifier(_Scoring, chainer.Chain):
    """What every variant shares: the layers and the forward pass."""

    #: Name of the variant in :data:`MODELS` and ``labels.json``
    #: (``Link.name`` is Chainer's own).
    variant = None
    #: ``(out_channels, ksize, stride)`` of each convolution.
    layers = CONV_LAYERS
    #: Padding of each convolution.
    conv_pad = 0

    def _setup(self, n_classes, input_shape, dropout_ratio, pooling,
               batchnorm, head, conv_std, fc_std):
        if int(n_classes) < 2:
            raise ParameterError(
                'n_classes must be at least 2, got {}'.format(n_classes))
        if head not in HEADS:
            raise ParameterError('head must be one of {}, got {!r}'.format(
                HEADS, head))
        self.n_classes = int(n_classes)
        self.input_shape = tuple(int(s) for s in input_shape)
        self.dropout_ratio = dropout_ratio
        self.pooling, self.batchnorm, self.head = bool(pooling), \
            bool(batchnorm), head
        shape = conv_output_shape(self._body_input_shape(), self.layers,
                                  self.pooling, self.conv_pad, self.variant)
        self.conv_shape = shape
        channels = 1
        with self.init_scope():
            for i, (out, ksize, stride) in enumerate(self.layers, start=1):
                fan_in = channels * int(np.prod(_pair(ksize)))
                setattr(self, 'conv{}'.format(i), fast_cpu.Convolution2D(
                    channels, out, ksize=ksize, stride=stride,
                    pad=self.conv_pad, nobias=self.batchnorm,
                    initialW=initializers.Normal(conv_std(fan_in))))
                if self.batchnorm:
                    setattr(self, 'bn{}'.format(i),
                            fast_cpu.BatchNormalization(out))
                channels = out
            if head == 'flatten':
                self.flat_size = int(np.prod(shape))
                self.fc4 = L.Linear(self.flat_size, HIDDEN_UNITS,
                                    initialW=initializers.Normal(
                                        fc_std(self.flat_size)))
                self.fc5 = L.Linear(HIDDEN_UNITS, self.n_classes,
                                    initialW=initializers.Normal(
                                        fc_std(HIDDEN_UNITS)))
            else:
                self.flat_size = 2 * shape[0] * shape[1]
                if head == 'pool_layers':
                    self.flat_size += 3 * sum(out for out, _, _ in
                                              self.layers)
                self.fc5 = L.Linear(self.flat_size, self.n_classes,
                                    initialW=initializers.Normal(
                                        fc_std(self.flat_size)))

    def _body_input_shape(self):
        return self.input_shape

    def _spec(self):
        return {'model': self.variant, 'pooling': self.pooling,
                'batchnorm': self.batchnorm, 'head': self.head,
                'dropout_ratio': self.dropout_ratio}

    def _front(self, x):
        return x

    def forward(self, x):
        """Unnormalised class scores ``(batch, n_classes)``."""
        h = self.embed(x)
        h = F.dropout(h, ratio=self.dropout_ratio)
        return self.fc5(h)

    def embed(self, x):
        """What the output layer reads ``(batch, fc5.in_size)``: the pooled
        convolutions (``head='pool'``), with each convolution's channel
        statistics (``'pool_layers'``), or fc4's ReLU units (``'flatten'``).
        Dropout before fc5 is :meth:`forward`'s."""
        self._check_input(x)
        h = self._front(x)
        channels = []
        for i in range(1, len(self.layers) + 1):
            h = self['conv{}'.format(i)](h)
            if self.batchnorm:
                h = self['bn{}'.format(i)](h)
            if self.pooling:
                # Pooling first is ReLU first: max and ReLU commute, and so
                # do their gradients; ReLU then reads a quarter as much.
                h = fast_cpu.max_pooling_2x2(h)
            h = F.relu(h)
            if self.head == 'pool_layers':
                channels.append(_channel_statistics(h))
        if self.head == 'flatten':
            h = F.reshape(h, (-1, self.flat_size))  # (batch, 64 * 14 * 19)
            h = F.dropout(h, ratio=self.dropout_ratio)
            return F.relu(self.fc4(h))
        h = F.concat([F.mean(h, axis=3), F.max(h, axis=3)])
        h = F.reshape(h, (len(h), 2 * self.conv_shape[0] *
                          self.conv_shape[1]))  # (batch, 2 * C * F)
        if channels:
            h = F.concat([h] + channels)  # (batch, flat_size)
        return h


def _channel_statistics(h):
    # (batch, C, F, T) -> (batch, 3 * C): mean, std and max over F and T
    h = F.reshape(h, h.shape[:2] + (-1,))
    mean = F.mean(h, axis=2)
    return F.concat([mean, _deviation(h, mean), F.max(h, axis=2)])


def _deviation(h, mean):
    # (batch, C, N) and its mean over N (batch, C) -> std over N (batch, C)
    deviation = h - F.broadcast_to(F.expand_dims(mean, 2), h.shape)
    return F.sqrt(F.mean(F.square(deviation), axis=2) + 1e-12)


def _signed_sqrt(h):
    # sign(h) sqrt(|h|), its gradient finite at 0
    sign = h.xp.sign(h.array)
    return F.sqrt(F.absolute(h) + 1e-12) * sign


class MUSIC_NET(_ConvClassifier):
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
        pooling (bool): 2 x 2 max pooling after each convolution (the
            article's worse variant).
        batchnorm (bool): batch normalisation after each convolution.
        head (str): ``'flatten'`` (the original's fc4 and fc5), ``'pool'``
            (mean and max over time, then fc5 alone: a small net) or
            ``'pool_layers'`` (``'pool'`` and every convolution's channel
            statistics, see :data:`HEADS`).
    """

    variant = 'music_net'

    def __init__(self, n_classes=7, input_shape=(features.N_MELS, 321),
                 dropout_ratio=0.5, init='v1.9', pooling=False,
                 batchnorm=False, head='flatten'):
        super(MUSIC_NET, self).__init__()
        self.init = init

        def std(fan_in):
            return initial_std(fan_in, init)
        self._setup(n_classes, input_shape, dropout_ratio, pooling,
                    batchnorm, head, std, std)

    def _spec(self):
        spec = super(MUSIC_NET, self)._spec()
        spec['init'] = self.init
        return spec


class WAVE_NET(MUSIC_NET):
    """The raw-waveform variant: a learned filter bank, then MUSIC_NET.

    ``conv0`` holds ``n_filters`` 1-D filters of ``filter_length`` samples
    moved by ``hop`` (like the STFT it replaces: 2048 and 512); their ReLU
    outputs, ``(n_filters, frames)``, go through MUSIC_NET's layers as the
    mel spectrogram would. Input: ``(batch, 1, 1, n_samples)`` waveforms
    (``FeatureConfig(representation='wave')``).

    Args:
        input_shape (tuple of int): ``(1, n_samples)``.
        n_filters, filter_length, hop (int): the front end.
        others: as :class:`MUSIC_NET`.
    """

    variant = 'wave'

    def __init__(self, n_classes=7, input_shape=(1, features.WINDOW_SAMPLES),
                 dropout_ratio=0.5, init='v1.9', pooling=False,
                 batchnorm=False, head='flatten', n_filters=features.N_MELS,
                 filter_length=features.N_FFT, hop=features.HOP_LENGTH):
        self.n_filters, self.filter_length, self.hop = (
            int(n_filters), int(filter_length), int(hop))
        input_shape = tuple(int(s) for s in input_shape)
        if len(input_shape) != 2 or input_shape[0] != 1 or \
                input_shape[1] < self.filter_length:
            raise ParameterError(
                'WAVE_NET takes (1, n_samples) waveforms of at least {} '
                'samples, got input shape {}'.format(self.filter_length,
                                                     input_shape))
        super(WAVE_NET, self).__init__(
            n_classes, input_shape, dropout_ratio, init, pooling, batchnorm,
            head)
        with self.init_scope():
            self.conv0 = fast_cpu.Convolution2D(
                1, self.n_filters, ksize=(1, self.filter_length),
                stride=(1, self.hop), initialW=initializers.Normal(
                    initial_std(self.filter_length, init)))

    def _body_input_shape(self):
        frames = _conv_out(self.input_shape[1], self.filter_length, self.hop,
                           0)
        return (self.n_filters, frames)

    def _front(self, x):
        h = F.relu(self.conv0(x))  # (batch, n_filters, 1, frames)
        return F.transpose(h, (0, 2, 1, 3))  # (batch, 1, n_filters, frames)

    def _spec(self):
        spec = super(WAVE_NET, self)._spec()
        spec.update(n_filters=self.n_filters,
                    filter_length=self.filter_length, hop=self.hop)
        return spec


class SMALL_CNN(_ConvClassifier):
    """A small modern CNN: 3 x 3 convolutions, batch norm, max pooling.

    ``conv1..conv4`` of ``width``, 2, 4 and 8 times ``width`` channels
    (3 x 3, padding 1), each followed by batch normalisation, ReLU and 2 x 2
    max pooling, then mean and max over time, dropout and ``fc5``. He
    initialisation. About 0.1 M parameters with ``width=16`` on 128 mel
    bands.

    Args:
        n_classes (int), input_shape (tuple): as :class:`MUSIC_NET`.
        width (int): channels of the first convolution.
        dropout_ratio (float): dropout before fc5.
        head (str): ``'pool'`` or ``'pool_layers'`` (:data:`POOL_HEADS`).
    """

    variant = 'small_cnn'
    conv_pad = 1

    def __init__(self, n_classes=7, input_shape=(128, 97), width=16,
                 dropout_ratio=0.3, head='pool'):
        super(SMALL_CNN, self).__init__()
        if head not in POOL_HEADS:
            raise ParameterError('small_cnn\'s head must be one of {}, got '
                                 '{!r}'.format(POOL_HEADS, head))
        self.width = int(width)
        self.layers = tuple((self.width * m, 3, 1) for m in (1, 2, 4, 8))

        def he(fan_in):
            return math.sqrt(2.0 / fan_in)
        self._setup(n_classes, input_shape, dropout_ratio, True, True,
                    head, he, lambda fan_in: math.sqrt(1.0 / fan_in))

    def _spec(self):
        spec = {'model': self.variant, 'width': self.width,
                'dropout_ratio': self.dropout_ratio}
        if self.head != 'pool':  # labels.json of a plain one as before
            spec['head'] = self.head
        return spec


#: musicnn's front end: ``(name, out_channels, (freq, time) kernel)`` of
#: its timbral (across mel bands, 7 frames long) and temporal (one band,
#: 128, 64 and 32 frames long) convolutions, each max-pooled over the mel
#: bands (Pons and Serra, "musicnn", 2019; 1.6 x 128 and 1.6 x 32 filters).
MUSICNN_FRONT = (('timbral74', 204, (38, 7)), ('timbral77', 204, (67, 7)),
                 ('temporal128', 51, (1, 128)), ('temporal64', 51, (1, 64)),
                 ('temporal32', 51, (1, 32)))
#: Channels of musicnn's three mid-end convolutions and of its penultimate
#: dense layer.
MUSICNN_MID, MUSICNN_DENSE = 64, 200


class MUSICNN(_Scoring, chainer.Chain):
    """musicnn, a network pretrained on the Million Song Dataset, and an
    output layer for this collection's classes.

    Pons and Serra's ``MSD_musicnn`` (2019; the ``musicnn`` package, ISC
    licence), trained to tag 3 s of music with the 50 commonest tags of
    the Million Song Dataset, as it was, layer for layer, with weights
    from :func:`~music_classification.pretrained.musicnn_arrays`
    (:meth:`load_pretrained`). Its input is 96 mel bands of
    ``log10(1 + 10000 S)`` over 187 frames of 256 samples at 16 kHz
    (:data:`~music_classification.features.MUSICNN_FEATURES`)::

        bn_in                         batch norm of the one input channel
        timbral74, timbral77          204 filters of 38 or 67 bands x 7
                                      frames, ReLU, batch norm, max over
                                      bands -> (204, 187) each
        temporal128, 64, 32           51 filters of 1 band x 128, 64, 32
                                      frames, the same -> (51, 187) each
        mid1, mid2, mid3              1-D convolutions of 7 frames over the
                                      561 front-end channels, 64 each, ReLU,
                                      batch norm; mid2 and mid3 residual
        pooling                       max and mean over time of the front
                                      end and mid-end channels (753 each),
                                      batch norm
        dense                         1,506 -> 200, ReLU, batch norm
        fc5                           max, mean pooling and dense
                                      (1,706; pool_layers: and each
                                      channel's deviation, 2,459)
                                      -> n_classes

    ``fc5`` replaces the tagger's output layer: :meth:`embed` is what it
    reads, for a linear probe (``train --recipe musicnn``). With ``head=
    'pool_layers'`` it also reads each of the 753 channels' standard
    deviation over time (2,459 numbers): how much a channel varies within
    the window, which musicnn's own pooling (its maximum and mean) leaves
    out. Every layer but fc5 is musicnn's either way. With
    ``signed_sqrt=True`` fc5 reads each of those numbers' signed square
    root, ``sign(h) sqrt(|h|)``, instead: the power normalisation of pooled
    features (Perronnin et al., 2010), which shrinks the few large values
    that a linear output layer fitted on a handful of songs leans on.

    Args:
        n_classes (int): outputs of fc5.
        input_shape (tuple): ``(96, 187)``, the features' shape.
        dropout_ratio (float): dropout before fc5 while training.
        head (str): ``'pool'`` (musicnn's pooling and dense layer) or
            ``'pool_layers'`` (those and each channel's standard deviation
            over time).
        signed_sqrt (bool): fc5 reads the signed square root of
            :meth:`embed`'s numbers.
    """

    variant = 'musicnn'

    def __init__(self, n_classes=7, input_shape=(96, 187),
                 dropout_ratio=0.5, head='pool', signed_sqrt=False):
        super(MUSICNN, self).__init__()
        if head not in POOL_HEADS:
            raise ParameterError('musicnn\'s head is one of {}, got {!r}'
                                 .format(', '.join(POOL_HEADS), head))
        self.head = head
        self.signed_sqrt = bool(signed_sqrt)
        self.input_shape = tuple(int(s) for s in input_shape)
        if self.input_shape != features.MUSICNN_FEATURES.input_shape:
            raise ParameterError(
                'musicnn takes {} x {} features (96 mel bands, 187 frames), '
                'got {}'.format(*features.MUSICNN_FEATURES.input_shape,
                                self.input_shape))
        if int(n_classes) < 2:
            raise ParameterError(
                'n_classes must be at least 2, got {}'.format(n_classes))
        self.n_classes = int(n_classes)
        self.dropout_ratio = dropout_ratio
        front = sum(out for _, out, _ in MUSICNN_FRONT)
        pooled = 2 * (front + 3 * MUSICNN_MID)  # max and mean: 1,506
        self.embed_size = pooled + MUSICNN_DENSE
        if head == 'pool_layers':
            self.embed_size += pooled // 2  # each channel's deviation
        with self.init_scope():
            self.bn_in = L.BatchNormalization(1, eps=1e-3)
            for name, out, ksize in MUSICNN_FRONT:
                setattr(self, name, fast_cpu.Convolution2D(
                    1, out, ksize=ksize, pad=(0, 3) if ksize[1] == 7
                    else 0))
                setattr(self, 'bn_' + name, L.BatchNormalization(
                    out, eps=1e-3))
            for i, channels in enumerate((front, MUSICNN_MID, MUSICNN_MID),
                                         start=1):
                setattr(self, 'mid{}'.format(i), L.Convolution1D(
                    channels, MUSICNN_MID, 7, pad=3))
                setattr(self, 'bn_mid{}'.format(i), L.BatchNormalization(
                    MUSICNN_MID, eps=1e-3))
            self.bn_pool = L.BatchNormalization(pooled, eps=1e-3)
            self.dense = L.Linear(pooled, MUSICNN_DENSE)
            self.bn_dense = L.BatchNormalization(MUSICNN_DENSE, eps=1e-3)
            self.fc5 = L.Linear(self.embed_size, self.n_classes)

    def _spec(self):
        spec = {'model': self.variant, 'dropout_ratio': self.dropout_ratio}
        if self.head != 'pool':  # labels.json of a plain one as before
            spec['head'] = self.head
        if self.signed_sqrt:
            spec['signed_sqrt'] = True
        return spec

    def load_pretrained(self, arrays):
        """Set every layer but fc5 to musicnn's trained weights.

        Args:
            arrays (dict): :func:`~music_classification.pretrained.
                musicnn_arrays`, by this network's npz names.

        Returns:
            int: the number of arrays set.

        Raises:
            ParameterError: ``arrays`` are not every layer's but fc5's.
        """
        need = {key for key in _arrays(self) if not key.endswith('/N')
                and not key.startswith(OUTPUT_LAYER + '/')}
        if set(arrays) != need:
            raise ParameterError('not musicnn\'s layers: {} missing, {} '
                                 'extra'.format(sorted(need - set(arrays)),
                                                sorted(set(arrays) - need)))
        chainer.serializers.NpzDeserializer(arrays, strict=False).load(self)
        return len(arrays)

    def forward(self, x):
        """Unnormalised class scores ``(batch, n_classes)``."""
        h = F.dropout(self.embed(x), ratio=self.dropout_ratio)
        return self.fc5(h)

    def embed(self, x):
        """What fc5 reads ``(batch, 1706)``: musicnn's max and mean pooling
        over time (753 channels each, before their batch norm) and its
        penultimate layer (200); with ``head='pool_layers'`` ``(batch,
        2459)``, each channel's standard deviation over time (753) last;
        with ``signed_sqrt``, the signed square root of each."""
        h = self.channels(x)  # (batch, 753, 187)
        top, mean = F.max(h, axis=2), F.mean(h, axis=2)
        # musicnn's order: each channel's max, then its mean
        pooled = F.reshape(F.stack([top, mean], axis=2),
                           (len(h), -1))  # (batch, 1506)
        dense = self.bn_dense(F.relu(self.dense(self.bn_pool(pooled))))
        parts = [top, mean, dense]  # (batch, 1706) together
        if self.head == 'pool_layers':
            parts.append(_deviation(h, mean))  # (batch, 2459) together
        e = F.concat(parts)
        return _signed_sqrt(e) if self.signed_sqrt else e

    def channels(self, x):
        """The front end's and mid end's channels over time ``(batch, 753,
        187)``, which musicnn pools: the five front-end convolutions' (561,
        each max-pooled over the bands), then mid1's, mid2's and mid3's (64
        each)."""
        self._check_input(x)
        h = self.bn_in(x)  # (batch, 1, 96, 187)
        front = []
        for name, _, (_, width) in MUSICNN_FRONT:
            g = h
            if width != 7:  # TensorFlow's 'same': the extra frame after
                g = F.pad(h, ((0, 0), (0, 0), (0, 0),
                              ((width - 1) // 2, width // 2)), 'constant')
            g = self['bn_' + name](F.relu(self[name](g)))
            front.append(F.max(g, axis=2))  # (batch, out, 187)
        h = F.concat(front)  # (batch, 561, 187)
        layers = [h]
        for i in (1, 2, 3):
            g = self['bn_mid{}'.format(i)](F.relu(
                self['mid{}'.format(i)](layers[-1])))
            layers.append(g if i == 1 else g + layers[-1])
        return F.concat(layers)  # (batch, 753, 187)


class ENSEMBLE(_Scoring, chainer.ChainList):
    """Networks of one variant side by side; their mean probability.

    Each member starts from its own initial weights (drawn one after the
    other) and is trained on its own cross-entropy on the same batches
    (:meth:`__call__` takes their mean), so they learn apart and their
    mistakes differ: a deep ensemble (Lakshminarayanan et al., 2017).
    :meth:`forward` is the log of the members' mean probability. Each member
    costs what a network alone costs per step, so under a time budget two
    members take half the steps. ``build_model(..., members=K)`` builds one;
    ``labels.json`` keeps ``members``.

    Args:
        members (list): networks of one variant, class count and input shape
            (``ENSEMBLE[i]`` is member ``i``).
    """

    def __init__(self, members):
        members = list(members)
        if len(members) < 2 or len({
                (type(m), m.n_classes, m.input_shape, repr(m._spec()))
                for m in members}) != 1:
            raise ParameterError('an ensemble needs at least 2 networks of '
                                 'one variant, class count and input shape')
        super(ENSEMBLE, self).__init__(*members)
        self.variant = members[0].variant
        self.n_classes = members[0].n_classes
        self.input_shape = members[0].input_shape

    def _spec(self):
        spec = self[0]._spec()
        spec['members'] = len(self)
        return spec

    def member_scores(self, x):
        return [member.forward(x) for member in self]

    def combine(self, ys):
        h = F.stack([F.log_softmax(y) for y in ys])  # (members, batch, n)
        return F.logsumexp(h, axis=0) - math.log(len(ys))

    def forward(self, x):
        """The log of the members' mean probability ``(batch, n_classes)``.
        """
        return self.combine(self.member_scores(x))


#: The variants by name, as ``music-classification train --model`` and
#: ``labels.json`` name them; ``music_net_pool`` is MUSIC_NET with pooling.
MODELS = {'music_net': MUSIC_NET, 'music_net_pool': MUSIC_NET,
          'wave': WAVE_NET, 'small_cnn': SMALL_CNN, 'musicnn': MUSICNN}


def build_model(model='music_net', n_classes=7, input_shape=None,
                **options):
    """A network of the variant ``model`` (a name in :data:`MODELS`).

    ``options`` are the class's keyword arguments; ``music_net_pool`` sets
    ``pooling=True``; ``members=K`` (K > 1) makes an :class:`ENSEMBLE` of K
    such networks; ``stats_weight`` adds a statistics classifier.
    ``build_model(n_classes=..., input_shape=..., **net.spec())`` rebuilds
    ``net``.
    """
    if model not in MODELS:
        raise ParameterError('model must be one of {}, got {!r}'.format(
            ', '.join(sorted(MODELS)), model))
    if model == 'music_net_pool':
        options.setdefault('pooling', True)
    if input_shape is not None:
        options['input_shape'] = input_shape
    stats_weight = options.pop('stats_weight', 0.0)
    stats_coefficients = options.pop('stats_coefficients',
                                     features.N_STATS_COEFFICIENTS)
    members = options.pop('members', 1)
    if not isinstance(members, int) or members < 1:
        raise ParameterError('members must be a positive integer, got '
                             '{!r}'.format(members))
    try:
        nets = [MODELS[model](n_classes=n_classes, **options)
                for _ in range(members)]
    except TypeError as e:
        raise ParameterError('{}: {}'.format(model, e)) from None
    net = nets[0] if members == 1 else ENSEMBLE(nets)
    if stats_weight:
        net.add_statistics_classifier(stats_weight, stats_coefficients)
    return net


#: The layer that maps a network's features to its classes.
OUTPUT_LAYER = 'fc5'


def _arrays(link):
    # Every parameter and persistent value of ``link`` by its npz name
    serializer = chainer.serializers.DictionarySerializer()
    serializer.save(link)
    return serializer.target


def copy_feature_layers(source, target):
    """Start ``target`` from the trained layers of ``source``: transfer.

    Every array of ``source`` (weights and batch-norm statistics) but those
    of its output layer (:data:`OUTPUT_LAYER`) and its statistics classifier
    is copied into ``target``, which keeps its own output layer: the two
    may have other classes. Their options (pooling, head, width, ...) must
    be the same, but for the dropout ratio, the initial weights' scale and
    the head among :data:`POOL_HEADS` (whose layers but fc5 are alike).
    Of an :class:`ENSEMBLE` the last member is copied (of a snapshot
    ensemble, the network at the end of its run).

    Args:
        source: a trained network (or ensemble) on the CPU.
        target: a network of the same variant and options (one network,
            not an ensemble).

    Returns:
        int: the number of arrays copied.

    Raises:
        ParameterError: ``target`` is an ensemble, or the two networks'
            variants, options or layers differ (each difference is named).
    """
    if isinstance(target, ENSEMBLE):
        raise ParameterError('an ensemble of --members cannot start from '
                             'one trained network')
    if isinstance(source, ENSEMBLE):
        source = source[len(source) - 1]
    if source.variant != target.variant:
        raise ParameterError('the trained network is a {}, not a {}'.format(
            source.variant, target.variant))
    had, has = source._spec(), target._spec()
    if source.head in POOL_HEADS and target.head in POOL_HEADS:
        had['head'] = has['head'] = target.head
    # only fc5, which is not copied, reads musicnn's square roots
    had.pop('signed_sqrt', None)
    has.pop('signed_sqrt', None)
    options = ['{} {} where this one has {}'.format(key, had.get(key),
                                                    has.get(key))
               for key in sorted(set(had) | set(has))
               if key not in ('dropout_ratio', 'init')
               and had.get(key) != has.get(key)]
    if options:
        raise ParameterError('the trained {} has other options: {}'.format(
            source.variant, ', '.join(options)))

    def features_only(arrays):
        return {key: value for key, value in arrays.items()
                if not key.startswith((OUTPUT_LAYER + '/', 'stats_'))}
    have = features_only(_arrays(source))
    need = features_only(_arrays(target))
    differences = sorted('{} missing'.format(key) for key in need
                         if key not in have)
    differences += sorted(
        '{} {} not {}'.format(key, np.shape(have[key]), np.shape(need[key]))
        for key in need
        if key in have and np.shape(have[key]) != np.shape(need[key]))
    differences += sorted('{} extra'.format(key) for key in have
                          if key not in need)
    if differences:
        more = len(differences) - 3
        raise ParameterError(
            'the trained {} does not fit this one: {}{}'.format(
                source.variant, ', '.join(differences[:3]),
                ' and {} more'.format(more) if more > 0 else ''))
    chainer.serializers.NpzDeserializer(have, strict=False).load(target)
    return len(have)
