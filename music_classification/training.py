"""The original's training recipe on Chainer's own machinery.

* :class:`BalancedIterator`: every step takes ``batch_per_class`` random
  windows from every class (the original: 10 from each artist, plus the
  "Other" clips), so a class with more songs does not dominate.
* :class:`FeatureConverter`: stacks the examples' waveforms on the training
  device and computes the features there, batched, with the package's one
  feature function (on the GPU when training on the GPU).
* :func:`make_optimizer`: Adam(alpha=1e-4) with WeightDecay(1e-4).
* :func:`loss_with_report`: the loss function for ``StandardUpdater``; it
  reports ``loss`` and ``accuracy`` for ``LogReport``.
"""

import json

import chainer
import numpy as np

from music_classification import features as _features
from music_classification.dataset import make_rng
from music_classification.errors import DatasetError


class BalancedIterator(chainer.dataset.Iterator):
    """Class-balanced random batches drawn from per-class datasets.

    Args:
        classes (list): for each class, a list of datasets whose
            ``get_example`` returns ``(wave, label)``.
        batch_per_class (int or list of int): examples per class per batch
            (one number for all classes, or one per class).
        rng: ``numpy.random.Generator`` or seed choosing the windows.

    Each batch holds ``sum(batch_per_class)`` examples. Windows are drawn
    uniformly from all windows of a class, with replacement across batches.
    ``epoch_detail`` counts passes over the total number of windows.
    """

    def __init__(self, classes, batch_per_class=10, rng=None):
        self.classes = [list(datasets) for datasets in classes]
        for label, datasets in enumerate(self.classes):
            if not datasets or not sum(len(d) for d in datasets):
                raise DatasetError('class {} has no examples'.format(label))
        if np.ndim(batch_per_class) == 0:
            batch_per_class = [int(batch_per_class)] * len(self.classes)
        self.batch_per_class = [int(k) for k in batch_per_class]
        self.rng = make_rng(rng)
        self._sizes = [np.cumsum([len(d) for d in datasets])
                       for datasets in self.classes]
        self.batch_size = sum(self.batch_per_class)
        self.n_windows = int(sum(sizes[-1] for sizes in self._sizes))
        self.iteration = 0
        self.is_new_epoch = False

    def __next__(self):
        batch = []
        for datasets, sizes, k in zip(self.classes, self._sizes,
                                      self.batch_per_class):
            for flat in self.rng.integers(0, sizes[-1], size=k):
                d = int(np.searchsorted(sizes, flat, side='right'))
                start = sizes[d - 1] if d else 0
                batch.append(datasets[d][int(flat - start)])
        epoch_before = self.epoch
        self.iteration += 1
        self.is_new_epoch = self.epoch > epoch_before
        return batch

    next = __next__

    @property
    def epoch_detail(self):
        return self.iteration * self.batch_size / float(self.n_windows)

    @property
    def epoch(self):
        return int(self.epoch_detail)

    @property
    def previous_epoch_detail(self):
        if self.iteration == 0:
            return None
        return (self.iteration - 1) * self.batch_size / float(self.n_windows)

    def serialize(self, serializer):
        self.iteration = serializer('iteration', self.iteration)
        self.is_new_epoch = serializer('is_new_epoch', self.is_new_epoch)
        # The generator's state as JSON bytes (its integers exceed 64 bits).
        if isinstance(serializer, chainer.serializer.Deserializer):
            state = serializer('rng_state', None)
            self.rng.bit_generator.state = json.loads(bytes(state).decode())
        else:
            serializer('rng_state', np.frombuffer(json.dumps(
                self.rng.bit_generator.state).encode(), dtype=np.uint8))


class FeatureConverter(object):
    """``(wave, label)`` examples to features and labels on a device.

    Args:
        config (FeatureConfig): the feature parameters.
    """

    def __init__(self, config=None):
        self.config = config or _features.FeatureConfig()

    def __call__(self, batch, device=None):
        waves, labels = chainer.dataset.concat_examples(batch, device)
        return self.config(waves), labels


def make_optimizer(model, alpha=1e-4, weight_decay=1e-4):
    """The original's optimiser: Adam(alpha) with WeightDecay."""
    optimizer = chainer.optimizers.Adam(alpha=alpha)
    optimizer.setup(model)
    optimizer.add_hook(chainer.optimizer_hooks.WeightDecay(weight_decay))
    return optimizer


def loss_with_report(model):
    """A ``loss_func`` for ``StandardUpdater`` reporting loss and accuracy."""
    def lossfun(x, t):
        loss, accuracy = model(x, t)
        chainer.report({'loss': loss, 'accuracy': accuracy}, model)
        return loss
    return lossfun
