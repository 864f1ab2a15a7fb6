#!/usr/bin/python3
"""Generates tests/fixtures/accuracy.safetensors: how far PyTorch's float32 results are from float64,
for tests/test_accuracy.cpp, which holds ember's float32 kernels to the same distance.

The inputs are formulas (computed in double, then rounded to float32) that the C++ test evaluates
the same way, so the file holds only the measured distances. For case NAME it stores
NAME.out_err and NAME.grad_err: the relative RMS distance ||r32 - r64|| / ||r64|| of PyTorch's
float32 output and input gradient (of sum(out * w)) from the float64 ones computed from the same
float32 values; and NAME.out_max_err, NAME.grad_max_err: the largest distance of one element,
max |r32 - r64| / max |r64|.

Run:  /usr/bin/python3 tests/parity/make_accuracy_fixtures.py
"""
import math
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_fixtures import write_safetensors  # noqa: E402

torch.set_num_threads(1)


def tensor(shape, formula):
    n = math.prod(shape)
    return torch.tensor([formula(k) for k in range(n)], dtype=torch.float64).to(torch.float32).view(shape)


def weight(k):
    return (k * 37 % 101) / 50.0 - 1.0


def rel_rms(a, b):
    return float(torch.linalg.vector_norm(a.double() - b) / torch.linalg.vector_norm(b))


def rel_max(a, b):
    return float((a.double() - b).abs().max() / b.abs().max())


def case(T, name, fn, x):
    w = tensor(fn(x).shape, weight)
    res = {}
    for dtype in (torch.float32, torch.float64):
        xi = x.detach().clone().to(dtype).requires_grad_()
        out = fn(xi)
        (out * w.to(dtype)).sum().backward()
        res[dtype] = (out.detach(), xi.grad.detach())
    T[f"{name}.out_err"] = torch.tensor(rel_rms(res[torch.float32][0], res[torch.float64][0]), dtype=torch.float64)
    T[f"{name}.grad_err"] = torch.tensor(rel_rms(res[torch.float32][1], res[torch.float64][1]), dtype=torch.float64)
    for i, kind in ((0, "out"), (1, "grad")):
        T[f"{name}.{kind}_max_err"] = torch.tensor(rel_max(res[torch.float32][i], res[torch.float64][i]),
                                                  dtype=torch.float64)
    print(f"{name}: out {T[name + '.out_err'].item():.3e}  grad {T[name + '.grad_err'].item():.3e}")


def batch_norm(x):
    # Training mode, no affine parameters: batch statistics over every dim but 1.
    return F.batch_norm(x, None, None, training=True, eps=1e-5)


def main():
    T = {}
    gelu_x = tensor((256, 512), lambda k: -6.0 + 12.0 * k / (256 * 512 - 1))
    case(T, "gelu", F.gelu, gelu_x)
    case(T, "gelu_tanh", lambda x: F.gelu(x, approximate="tanh"), gelu_x)
    # Channels whose mean is far from zero: naive sums lose the small variations first.
    case(T, "batch_norm1d", batch_norm, tensor((8192, 8), lambda k: 20.0 * (k % 8) + 0.5 * math.sin(1.3 * (k // 8) + k % 8)))
    case(T, "batch_norm2d", batch_norm,
         tensor((32, 8, 12, 12), lambda k: 10.0 * (k // 144 % 8) + math.cos(0.7 * (k // 1152) + 0.3 * (k // 12 % 12)
                                                                              - 0.2 * (k % 12) + k // 144 % 8)))
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "accuracy.safetensors")
    write_safetensors(out, T)
    print("wrote", out, len(T), "tensors")


if __name__ == "__main__":
    main()
