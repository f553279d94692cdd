"""Chainer's 2-D convolution and 2 x 2 max pooling, faster on the CPU.

On NumPy arrays Chainer 7 convolves by ``im2col`` and ``tensordot``, which
copies the patch matrix once more to transpose it and returns a
non-contiguous output (so batch normalisation and ReLU then walk strided
memory), and it max-pools through ``im2col``, ``argmax`` and ``col2im``.
Here the same arithmetic runs on contiguous arrays: the patches are laid
out ``(batch, in_channels * kh * kw, out_h * out_w)`` so one batched matrix
product gives the output in ``(batch, out_channels, out_h, out_w)`` order,
and 2 x 2 pooling compares the four strided views of its windows.

Values and gradients equal Chainer's (to float32 rounding for the
convolution; exactly for the pooling, the first maximum of each window in
row-major order taking the gradient as in Chainer). On CuPy arrays, and
for anything these paths do not cover (dilation, groups, ``cover_all``),
Chainer's own functions run. Only first-order gradients are defined.
``with chainer.using_config('fast_cpu', False):`` runs Chainer's own
functions on NumPy arrays too (to compare, or to rule these paths out).
"""

import chainer
from chainer import function_node
import chainer.functions as F
import chainer.links as L
from chainer.utils.conv import get_conv_outsize
from chainer.utils.conv_nd import as_tuple
import numpy as np


def _numpy_path(*values):
    """Whether arrays or Variables (``None`` allowed) take the paths here:
    all plain NumPy arrays of one dtype, and ``fast_cpu`` not switched
    off."""
    arrays = [v.array if isinstance(v, chainer.Variable) else v
              for v in values if v is not None]
    return (getattr(chainer.config, 'fast_cpu', True)
            and all(type(a) is np.ndarray for a in arrays)
            and len({a.dtype for a in arrays}) == 1)


class _FirstOrder(function_node.FunctionNode):
    """A gradient's node: it has no gradient of its own."""

    def backward(self, indexes, grad_outputs):
        raise NotImplementedError(
            'fast_cpu has first-order gradients only; run under '
            "chainer.using_config('fast_cpu', False) for higher orders")


class _Convolution2D(function_node.FunctionNode):
    """``y = W * x + b`` on NumPy arrays; keeps the patches for backward."""

    def __init__(self, stride, pad):
        self.stride = stride
        self.pad = pad

    def forward_cpu(self, inputs):
        x, W = inputs[:2]
        n, c, h, w = x.shape
        out_c, _, kh, kw = W.shape
        (sy, sx), (ph, pw) = self.stride, self.pad
        out_h, out_w = (get_conv_outsize(h, kh, sy, ph),
                        get_conv_outsize(w, kw, sx, pw))
        if ph or pw:
            x = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
        col = np.empty((n, c, kh, kw, out_h, out_w), dtype=x.dtype)
        for i in range(kh):
            for j in range(kw):
                col[:, :, i, j] = x[:, :, i:i + sy * out_h:sy,
                                    j:j + sx * out_w:sx]
        self.col = col.reshape(n, c * kh * kw, out_h * out_w)
        self.W = W
        self.in_shape = (n, c, h, w)
        y = np.matmul(W.reshape(out_c, -1), self.col)
        if len(inputs) == 3:
            y += inputs[2][:, None]
        return y.reshape(n, out_c, out_h, out_w),

    def backward(self, indexes, grad_outputs):
        need_gx = 0 in indexes
        grads = _Convolution2DGrad(self, need_gx).apply(grad_outputs)
        if not need_gx:
            grads = (None,) + grads
        return tuple(grads[i] for i in indexes)


class _Convolution2DGrad(_FirstOrder):
    """The gradients of :class:`_Convolution2D` with respect to x (only if
    ``need_gx``), W and b."""

    def __init__(self, conv, need_gx):
        self.conv = conv
        self.need_gx = need_gx

    def forward_cpu(self, inputs):
        conv = self.conv
        gy = inputs[0]
        n, c, h, w = conv.in_shape
        out_c, _, kh, kw = conv.W.shape
        (sy, sx), (ph, pw) = conv.stride, conv.pad
        out_h, out_w = gy.shape[2:]
        gy = gy.reshape(n, out_c, out_h * out_w)
        gW = np.matmul(gy, conv.col.transpose(0, 2, 1)).sum(axis=0)
        gb = gy.sum(axis=(0, 2))
        if not self.need_gx:
            # The network's input: nobody asks for its gradient.
            return gW.reshape(conv.W.shape), gb
        gcol = np.matmul(conv.W.reshape(out_c, -1).T, gy)
        gcol = gcol.reshape(n, c, kh, kw, out_h, out_w)
        gx = np.zeros((n, c, h + 2 * ph + sy - 1, w + 2 * pw + sx - 1),
                      dtype=gy.dtype)
        for i in range(kh):
            for j in range(kw):
                gx[:, :, i:i + sy * out_h:sy, j:j + sx * out_w:sx] += \
                    gcol[:, :, i, j]
        gx = np.ascontiguousarray(gx[:, :, ph:ph + h, pw:pw + w])
        return gx, gW.reshape(conv.W.shape), gb


def convolution_2d(x, W, b=None, stride=1, pad=0):
    """``F.convolution_2d(x, W, b, stride, pad)``, faster on NumPy arrays.

    Args:
        x (~chainer.Variable): ``(batch, in_channels, height, width)``.
        W (~chainer.Variable): ``(out_channels, in_channels, kh, kw)``.
        b (~chainer.Variable or None): ``(out_channels,)``.
        stride, pad (int or pair of int): as Chainer's.

    Returns:
        ~chainer.Variable: ``(batch, out_channels, out_h, out_w)``,
        C-contiguous.
    """
    inputs = (x, W) if b is None else (x, W, b)
    if not _numpy_path(x, W, b) or x.shape[1] != W.shape[1]:
        return F.convolution_2d(x, W, b, stride, pad)
    y, = _Convolution2D(as_tuple(stride, 2), as_tuple(pad, 2)).apply(inputs)
    return y


class Convolution2D(L.Convolution2D):
    """``chainer.links.Convolution2D`` whose forward pass on NumPy arrays is
    :func:`convolution_2d`; the same parameters, so saved models load
    either way. Dilation and groups fall back to Chainer's."""

    def forward(self, x):
        x = chainer.as_variable(x)
        if (self.W.raw_array is None or not _numpy_path(x, self.W, self.b)
                or as_tuple(self.dilate, 2) != (1, 1) or self.groups != 1):
            return super(Convolution2D, self).forward(x)
        return convolution_2d(x, self.W, self.b, self.stride, self.pad)


class _MaxPooling2x2(function_node.FunctionNode):
    """2 x 2 max pooling, stride 2, odd edges padded with -inf."""

    def forward_cpu(self, inputs):
        x, = inputs
        n, c, h, w = x.shape
        if h % 2 or w % 2:
            x = np.pad(x, ((0, 0), (0, 0), (0, h % 2), (0, w % 2)),
                       constant_values=-np.inf)
        views = [x[:, :, i::2, j::2] for i in (0, 1) for j in (0, 1)]
        y = np.maximum(np.maximum(views[0], views[1]),
                       np.maximum(views[2], views[3]))
        # Which of the four holds the first maximum, as Chainer's argmax.
        taken = np.zeros(y.shape, dtype=bool)
        masks = []
        nan = np.isnan(y).any()
        for view in views[:3]:
            mask = view == y
            if nan:  # NaN is the maximum, as for NumPy's argmax
                mask |= np.isnan(view)
            mask &= ~taken
            taken |= mask
            masks.append(mask)
        masks.append(~taken)
        self.masks = masks
        self.in_shape = (n, c, h, w)
        return y,

    def backward(self, indexes, grad_outputs):
        return _MaxPooling2x2Grad(self).apply(grad_outputs)


class _MaxPooling2x2Grad(_FirstOrder):

    def __init__(self, pool):
        self.pool = pool

    def forward_cpu(self, inputs):
        gy, = inputs
        n, c, h, w = self.pool.in_shape
        out_h, out_w = gy.shape[2:]
        gx = np.zeros((n, c, 2 * out_h, 2 * out_w), dtype=gy.dtype)
        for k, mask in enumerate(self.pool.masks):
            np.copyto(gx[:, :, k // 2::2, k % 2::2], gy, where=mask)
        return np.ascontiguousarray(gx[:, :, :h, :w]),


def max_pooling_2x2(x):
    """``F.max_pooling_2d(x, 2)`` (stride 2, ``cover_all``: an odd last row
    or column is pooled alone), faster on NumPy arrays.

    Args:
        x (~chainer.Variable): ``(batch, channels, height, width)``.

    Returns:
        ~chainer.Variable: ``(batch, channels, ceil(height / 2),
        ceil(width / 2))``.
    """
    if not _numpy_path(x):
        return F.max_pooling_2d(x, 2)
    y, = _MaxPooling2x2().apply((x,))
    return y


class _BatchNormalization(function_node.FunctionNode):
    """Training-mode batch normalisation over ``(batch, height, width)`` of
    a ``(batch, channels, height, width)`` NumPy array, in fewer passes
    than Chainer's; updates the running statistics as Chainer does."""

    def __init__(self, eps, running_mean, running_var, decay):
        self.eps = eps
        self.running_mean = running_mean
        self.running_var = running_var
        self.decay = decay

    def forward_cpu(self, inputs):
        x, gamma, beta = inputs
        n, c = x.shape[:2]
        x = x.reshape(n, c, -1)
        m = x.shape[0] * x.shape[2]
        inv_m = x.dtype.type(1. / m)
        mean = x.sum(axis=2).sum(axis=0) * inv_m
        centred = x - mean[:, None]
        var = np.einsum('ncl,ncl->c', centred, centred) * inv_m
        self.inv_std = 1 / np.sqrt(var + x.dtype.type(self.eps))
        self.centred = centred
        self.gamma = gamma
        y = centred * (gamma * self.inv_std)[:, None]
        y += beta[:, None]
        if self.running_mean is not None:
            decay = self.decay
            self.running_mean *= decay
            self.running_mean += (1 - decay) * mean
            self.running_var *= decay
            self.running_var += (1 - decay) * m / max(m - 1., 1.) * var
        return y.reshape(inputs[0].shape),

    def backward(self, indexes, grad_outputs):
        grads = _BatchNormalizationGrad(self).apply(grad_outputs)
        return tuple(grads[i] for i in indexes)


class _BatchNormalizationGrad(_FirstOrder):

    def __init__(self, bn):
        self.bn = bn

    def forward_cpu(self, inputs):
        bn = self.bn
        gy = inputs[0]
        shape = gy.shape
        n, c = shape[:2]
        gy = gy.reshape(n, c, -1)
        inv_m = gy.dtype.type(1. / (gy.shape[0] * gy.shape[2]))
        gbeta = gy.sum(axis=2).sum(axis=0)
        ggamma = np.einsum('ncl,ncl->c', gy, bn.centred) * bn.inv_std
        scale = bn.gamma * bn.inv_std
        # gx = scale * (gy - (x_hat * ggamma + gbeta) / m)
        gx = gy * scale[:, None]
        gx -= bn.centred * (scale * bn.inv_std * ggamma * inv_m)[:, None]
        gx -= (scale * gbeta * inv_m)[:, None]
        return gx.reshape(shape), ggamma.astype(gy.dtype), \
            gbeta.astype(gy.dtype)


class BatchNormalization(L.BatchNormalization):
    """``chainer.links.BatchNormalization`` whose training-mode forward pass
    on 4-D NumPy arrays normalises over ``(batch, height, width)`` in fewer
    passes; the same parameters and running statistics, so saved models
    load either way. Everything else (evaluation, fine-tuning, other axes
    or parameter shapes, no gamma or beta, mixed dtypes, CuPy) is
    Chainer's."""

    def forward(self, x, **kwargs):
        x = chainer.as_variable(x)
        if (not _numpy_path(x, self.gamma, self.beta, self.avg_mean)
                or self.gamma is None or self.beta is None
                or self.avg_mean is None or self.avg_mean.ndim != 1
                or x.ndim != 4 or self.axis not in (None, (0, 2, 3))
                or not chainer.config.train or kwargs
                or chainer.config.in_recomputing):
            return super(BatchNormalization, self).forward(x, **kwargs)
        y, = _BatchNormalization(self.eps, self.avg_mean, self.avg_var,
                                 self.decay).apply(
                                     (x, self.gamma, self.beta))
        return y
