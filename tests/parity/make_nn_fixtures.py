#!/usr/bin/python3
"""Generates tests/fixtures/nn_parity.safetensors: PyTorch layers and losses with their weights,
inputs, outputs and gradients, for tests/test_nn_parity.cpp.

For case NAME: NAME.state.<key> is the module's state_dict (loaded into the ember module),
NAME.in<i> the inputs, NAME.out the output, NAME.w a weight for the scalar sum(out * w), and
NAME.grad_in<i> / NAME.grad.<param> the gradients of that scalar. Stateful cases (BatchNorm) also
store NAME.after.<buffer> after several training steps.

Run:  /usr/bin/python3 tests/parity/make_nn_fixtures.py
"""
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_fixtures import write_safetensors  # noqa: E402

torch.manual_seed(4321)
T = {}


def put(name, t):
    T[name] = t.detach().clone().contiguous()


def run_module(name, module, inputs, train=True, steps=1):
    module.train(train)
    for k, v in module.state_dict().items():
        put(f"{name}.state.{k}", v)
    ins = [x.clone().requires_grad_(x.is_floating_point()) for x in inputs]
    # Stateful layers: earlier steps only move running statistics.
    for _ in range(steps - 1):
        module(*[x.detach() for x in ins])
    out = module(*ins)
    w = torch.randn(out.shape)
    (out * w).sum().backward()
    for i, x in enumerate(ins):
        put(f"{name}.in{i}", x)
        if x.is_floating_point():
            put(f"{name}.grad_in{i}", x.grad)
    for k, p in module.named_parameters():
        if p.grad is not None:
            put(f"{name}.grad.{k}", p.grad)
    for k, b in module.named_buffers():
        put(f"{name}.after.{k}", b)
    put(f"{name}.out", out)
    put(f"{name}.w", w)


def r(*shape):
    return torch.randn(*shape)


def with_masks(base, name, **masks):
    """A subclass of `base` whose forward passes fixed masks (stored as NAME.mask.<arg>) and returns
    one tensor: the output, with the attention weights appended when there are any."""
    for k, v in masks.items():
        if isinstance(v, torch.Tensor):
            put(f"{name}.mask.{k}", v)

    class Wrapped(base):
        def forward(self, *inputs):
            out = super().forward(*inputs, **masks)
            if isinstance(out, tuple):
                o, w = out
                return torch.cat([o.flatten(), w.flatten()]) if w is not None else o
            return out
    return Wrapped


def bool_mask(rows, cols):
    m = torch.rand(rows, cols) < 0.3
    m[:, 0] = False  # every row keeps at least one key
    return m


def main():
    run_module("linear", nn.Linear(7, 5), [r(4, 7)])
    run_module("linear_nobias_3d", nn.Linear(6, 3, bias=False), [r(2, 4, 6)])
    run_module("bilinear", nn.Bilinear(3, 4, 2), [r(5, 3), r(5, 4)])
    run_module("layernorm", nn.LayerNorm(6), [r(3, 4, 6)])
    run_module("layernorm_2d_noaffine", nn.LayerNorm([4, 6], elementwise_affine=False), [r(3, 4, 6)])
    run_module("groupnorm", nn.GroupNorm(2, 6), [r(3, 6, 5)])
    run_module("batchnorm1d_train", nn.BatchNorm1d(5), [r(8, 5)], train=True, steps=3)
    bn_eval = nn.BatchNorm1d(5)
    with torch.no_grad():
        bn_eval.running_mean.copy_(torch.randn(5))
        bn_eval.running_var.copy_(torch.rand(5) + 0.5)
        bn_eval.weight.copy_(torch.randn(5))
    run_module("batchnorm1d_eval", bn_eval, [r(8, 5)], train=False)
    run_module("batchnorm2d_train", nn.BatchNorm2d(3, momentum=None), [r(4, 3, 5, 5)], train=True, steps=4)
    run_module("batchnorm1d_3d", nn.BatchNorm1d(4, momentum=0.3), [r(6, 4, 7)], train=True, steps=2)
    run_module("embedding_pad", nn.Embedding(10, 4, padding_idx=2), [torch.tensor([[1, 2, 3], [2, 9, 0]])])
    run_module("gelu_tanh", nn.GELU("tanh"), [r(3, 5)])
    seq = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Dropout(0.0), nn.Linear(8, 3), nn.LogSoftmax(-1))
    run_module("sequential", seq, [r(4, 6)])

    run_module("conv2d", nn.Conv2d(3, 4, 3, stride=2, padding=1), [r(2, 3, 7, 6)])
    run_module("conv2d_groups_dilation", nn.Conv2d(4, 6, (3, 2), padding=(2, 1), dilation=(2, 1), groups=2),
               [r(2, 4, 6, 5)])
    run_module("conv2d_same", nn.Conv2d(2, 3, 4, padding="same", bias=False), [r(1, 2, 5, 5)])
    run_module("conv1d", nn.Conv1d(3, 2, 3, stride=2, padding=1), [r(2, 3, 9)])
    run_module("conv_transpose2d", nn.ConvTranspose2d(4, 2, 3, stride=2, padding=1, output_padding=1, groups=2),
               [r(2, 4, 4, 3)])
    run_module("maxpool2d", nn.MaxPool2d(3, stride=2, padding=1), [r(2, 3, 7, 6)])
    run_module("avgpool2d", nn.AvgPool2d(2), [r(2, 3, 6, 6)])
    run_module("avgpool2d_pad_exclude", nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False),
               [r(1, 2, 5, 5)])
    run_module("adaptive_avgpool2d", nn.AdaptiveAvgPool2d((3, 2)), [r(2, 3, 7, 5)])
    cnn = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
                        nn.Flatten(), nn.Linear(4 * 3 * 3, 5))
    run_module("small_cnn", cnn, [r(3, 1, 6, 6)], train=True, steps=2)

    # Attention and Transformer (dropout 0 so train mode is deterministic).
    L, S, N, E = 4, 5, 3, 8
    run_module("mha_basic", with_masks(nn.MultiheadAttention, "mha_basic")(E, 2), [r(L, N, E), r(S, N, E), r(S, N, E)])
    run_module("mha_bool_masks_bf",
               with_masks(nn.MultiheadAttention, "mha_bool_masks_bf", attn_mask=bool_mask(L, S),
                          key_padding_mask=bool_mask(N, S), average_attn_weights=False)(E, 2, batch_first=True),
               [r(N, L, E), r(N, S, E), r(N, S, E)])
    run_module("mha_float3d_kv_bias_zero",
               with_masks(nn.MultiheadAttention, "mha_float3d_kv_bias_zero", attn_mask=r(N * 2, L, S))(
                   E, 2, kdim=5, vdim=6, add_bias_kv=True, add_zero_attn=True),
               [r(L, N, E), r(S, N, 5), r(S, N, 6)])
    run_module("mha_no_weights",
               with_masks(nn.MultiheadAttention, "mha_no_weights", need_weights=False,
                          key_padding_mask=bool_mask(N, S))(E, 4, bias=False),
               [r(L, N, E), r(S, N, E), r(S, N, E)])
    src_mask = nn.Transformer.generate_square_subsequent_mask(S)
    for norm_first in (False, True):
        tag = "pre" if norm_first else "post"
        run_module(f"encoder_layer_{tag}",
                   with_masks(nn.TransformerEncoderLayer, f"encoder_layer_{tag}", src_mask=src_mask,
                              src_key_padding_mask=bool_mask(N, S))(
                       E, 2, 16, dropout=0.0, activation="gelu", norm_first=norm_first),
                   [r(S, N, E)])
        run_module(f"decoder_layer_{tag}",
                   with_masks(nn.TransformerDecoderLayer, f"decoder_layer_{tag}",
                              tgt_mask=nn.Transformer.generate_square_subsequent_mask(L),
                              memory_key_padding_mask=bool_mask(N, S))(
                       E, 2, 16, dropout=0.0, norm_first=norm_first, batch_first=True),
                   [r(N, L, E), r(N, S, E)])
        run_module(f"transformer_{tag}",
                   with_masks(nn.Transformer, f"transformer_{tag}",
                              tgt_mask=nn.Transformer.generate_square_subsequent_mask(L))(
                       d_model=E, nhead=2, num_encoder_layers=2, num_decoder_layers=2, dim_feedforward=16,
                       dropout=0.0, norm_first=norm_first),
                   [r(S, N, E), r(L, N, E)])

    # Losses: inputs, output and input gradients (no parameters).
    logits, labels = r(6, 5), torch.tensor([1, 0, 4, 2, 4, 3])
    weight = torch.rand(5) + 0.5
    put("weight_for_ce", weight)
    run_module("ce", nn.CrossEntropyLoss(), [logits, labels])
    run_module("ce_weight_ignore_smooth",
               nn.CrossEntropyLoss(weight=weight, ignore_index=4, label_smoothing=0.1), [logits, labels])
    run_module("ce_smooth_sum", nn.CrossEntropyLoss(label_smoothing=0.2, reduction="sum"), [logits, labels])
    run_module("ce_none_nd", nn.CrossEntropyLoss(reduction="none"),
               [r(2, 5, 3), torch.tensor([[0, 4, 1], [2, 2, 3]])])
    run_module("ce_probs", nn.CrossEntropyLoss(label_smoothing=0.1), [logits, F.softmax(r(6, 5), -1)])
    run_module("nll_weight", nn.NLLLoss(weight=weight), [F.log_softmax(logits, -1), labels])
    run_module("mse", nn.MSELoss(), [r(4, 3), r(4, 3)])
    run_module("l1_sum", nn.L1Loss(reduction="sum"), [r(4, 3), r(4, 3)])
    run_module("smooth_l1", nn.SmoothL1Loss(beta=0.5), [r(4, 3), r(4, 3)])
    run_module("huber", nn.HuberLoss(delta=0.7), [r(4, 3), r(4, 3)])
    run_module("bce", nn.BCELoss(), [torch.rand(4, 3) * 0.9 + 0.05, torch.rand(4, 3)])
    pos_weight = torch.rand(3) + 0.5
    put("pos_weight_for_bce", pos_weight)
    run_module("bce_logits_pos", nn.BCEWithLogitsLoss(pos_weight=pos_weight),
               [r(4, 3), torch.rand(4, 3)])
    run_module("kldiv_batchmean", nn.KLDivLoss(reduction="batchmean"),
               [F.log_softmax(r(4, 3), -1), F.softmax(r(4, 3), -1)])

    # ceil_mode pooling: the last window hangs past the input (and, for the average, past the
    # padding, which the divisor never counts).
    run_module("maxpool2d_ceil", nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True), [r(2, 3, 8, 7)])
    run_module("maxpool2d_ceil_dilation", nn.MaxPool2d((2, 3), stride=(3, 2), dilation=(2, 1), ceil_mode=True),
               [r(1, 2, 9, 8)])
    run_module("avgpool2d_ceil", nn.AvgPool2d(3, stride=2, padding=1, ceil_mode=True), [r(2, 2, 6, 8)])
    run_module("avgpool2d_ceil_exclude", nn.AvgPool2d((2, 3), stride=2, padding=1, ceil_mode=True,
                                                       count_include_pad=False), [r(1, 3, 7, 6)])
    here = os.path.dirname(os.path.abspath(__file__))
    write_safetensors(os.path.join(here, "..", "fixtures", "nn_parity.safetensors"), T)


if __name__ == "__main__":
    main()
