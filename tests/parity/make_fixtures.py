#!/usr/bin/python3
"""Generates tests/fixtures/parity.safetensors with Debian's python3-torch.

For each case: inputs, the output of the op in PyTorch, a fixed random weight w, and the gradients of
sum(output * w) with respect to every floating input. The C++ test (tests/test_parity.cpp) runs the
same op in ember and compares. The safetensors file is written by hand (8-byte header length, JSON
header, raw little-endian data) so no extra Python package is needed.

Run:  /usr/bin/python3 tests/parity/make_fixtures.py   (from the repository root)
"""
import json
import os
import struct

import torch
import torch.nn.functional as F

torch.manual_seed(1234)


def r(*shape):
    return torch.randn(*shape, dtype=torch.float32)


CASES = {
    "matmul_batched": (lambda a, b: a @ b, [r(2, 3, 4, 5), r(3, 5, 6)]),
    "matmul_vec": (lambda a, b: a @ b, [r(4), r(2, 4, 3)]),
    "linear": (lambda x, w, b: F.linear(x, w, b), [r(4, 7), r(3, 7), r(3)]),
    "softmax_dim1": (lambda x: torch.softmax(x, 1), [r(3, 5, 4)]),
    "log_softmax": (lambda x: torch.log_softmax(x * 3, -1), [r(4, 10)]),
    "gelu": (lambda x: F.gelu(x), [r(5, 6)]),
    "gelu_tanh": (lambda x: F.gelu(x, approximate="tanh"), [r(5, 6)]),
    "silu": (lambda x: F.silu(x), [r(5, 6)]),
    "softplus": (lambda x: F.softplus(x, beta=2, threshold=3), [r(5, 6)]),
    "leaky_relu": (lambda x: F.leaky_relu(x, 0.1), [r(5, 6)]),
    "tanh_sigmoid": (lambda x: torch.tanh(x) * torch.sigmoid(x), [r(5, 6)]),
    "logsumexp": (lambda x: torch.logsumexp(x, dim=[1]), [r(3, 4, 5)]),
    "var_unbiased": (lambda x: torch.var(x, dim=[0, 2]), [r(3, 4, 5)]),
    "var_biased": (lambda x: torch.var(x, dim=[1], unbiased=False, keepdim=True), [r(3, 4, 5)]),
    "norm3": (lambda x: torch.norm(x, p=3, dim=1), [r(3, 4)]),
    "cumsum": (lambda x: torch.cumsum(x, 1), [r(3, 4)]),
    "prod": (lambda x: torch.prod(x, 1), [r(3, 4)]),
    "pow": (lambda a, b: torch.pow(a.abs() + 0.5, b), [r(3, 4), r(4)]),
    "maximum": (lambda a, b: torch.maximum(a, b), [r(3, 4), r(3, 1)]),
    "max_dim": (lambda x: torch.max(x, 1)[0], [r(3, 4)]),
    "sort": (lambda x: torch.sort(x, 1, descending=True)[0], [r(3, 6)]),
    "topk": (lambda x: torch.topk(x, 2, 0)[0], [r(5, 3)]),
    "cumsum_dim0": (lambda x: torch.cumsum(x, 0), [r(4, 3)]),
    "cross_entropy": (
        lambda x: F.cross_entropy(x, torch.tensor([1, 0, 4, 2])),
        [r(4, 5)],
    ),
    "layer_norm": (
        lambda x, g, b: F.layer_norm(x, (6,), g, b, 1e-5),
        [r(4, 6), r(6), r(6)],
    ),
    "attention": (
        lambda q, k, v: torch.softmax(q @ k.transpose(-2, -1) / 2.0, -1) @ v,
        [r(2, 3, 4), r(2, 5, 4), r(2, 5, 4)],
    ),
    "gather": (lambda x: torch.gather(x, 1, torch.tensor([[0, 2], [1, 1], [3, 0]])), [r(3, 4)]),
    "embedding": (lambda w: F.embedding(torch.tensor([[1, 3], [0, 1]]), w), [r(4, 3)]),
    "cat_stack": (lambda a, b: torch.cat([torch.stack([a, b], 1), a.unsqueeze(1)], 1), [r(3, 2), r(3, 2)]),
    "tril_triu": (lambda x: torch.tril(x, 1) * 2 + torch.triu(x, 2), [r(4, 5)]),
    "clamp_abs": (lambda x: torch.clamp(x, -0.5, 0.8) + x.abs(), [r(4, 5)]),
}


def main():
    tensors = {}
    for name, (fn, inputs) in CASES.items():
        ins = [t.clone().requires_grad_(True) for t in inputs]
        out = fn(*ins)
        w = torch.randn(out.shape, dtype=torch.float32)
        grads = torch.autograd.grad((out * w).sum(), ins)
        for i, t in enumerate(inputs):
            tensors[f"{name}.in{i}"] = t
            tensors[f"{name}.grad{i}"] = grads[i]
        tensors[f"{name}.out"] = out.detach()
        tensors[f"{name}.w"] = w
    here = os.path.dirname(os.path.abspath(__file__))
    write_safetensors(os.path.join(here, "..", "fixtures", "parity.safetensors"), tensors)


def write_safetensors(path, tensors):
    codes = {torch.float32: "F32", torch.float64: "F64", torch.int64: "I64", torch.bool: "BOOL"}
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        t = tensors[name].contiguous()
        data = t.numpy().astype(t.numpy().dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": codes[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    header["__metadata__"] = {"generator": "tests/parity/make_fixtures.py", "torch": torch.__version__}
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * ((8 - len(raw) % 8) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(raw)))
        f.write(raw)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


if __name__ == "__main__":
    main()
