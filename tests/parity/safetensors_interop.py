#!/usr/bin/python3
"""safetensors interop with PyTorch, both directions (run by ctest when python3-torch is installed).

  safetensors_interop.py write FILE   writes the reference tensors with torch + a plain-Python writer
  safetensors_interop.py check FILE   reads FILE (written by ember) and checks it against them

The reference tensors are also built by tests/safetensors_interop.cpp; the two must agree.
"""
import json
import struct
import sys

import torch

DTYPES = {"F32": torch.float32, "F64": torch.float64, "I64": torch.int64, "I32": torch.int32,
          "BOOL": torch.bool, "BF16": torch.bfloat16, "F16": torch.float16}


def reference():
    base = torch.arange(12, dtype=torch.float64).reshape(3, 4) / 8 - 0.75
    return {
        "f32": base.float(),
        "f64": base,
        "bf16": base.to(torch.bfloat16),
        "f16": base.to(torch.float16),
        "i64": torch.arange(-3, 3, dtype=torch.int64),
        "i32": torch.arange(5, dtype=torch.int32) * 7,
        "bool": torch.tensor([True, False, True]),
        "empty": torch.zeros(0, 2),
        "layer.weight": base.float().t().contiguous(),
    }


def read(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    meta = header.pop("__metadata__", {})
    out = {}
    for name, info in header.items():
        begin, end = info["data_offsets"]
        dtype = DTYPES[info["dtype"]]
        t = torch.frombuffer(bytearray(data[begin:end]), dtype=dtype) if end > begin else torch.zeros(0, dtype=dtype)
        out[name] = t.reshape(info["shape"])
    return out, meta


def main():
    mode, path = sys.argv[1], sys.argv[2]
    ref = reference()
    if mode == "write":
        # A plain-Python writer that knows every dtype (bfloat16 goes out as its raw 16 bits).
        codes = {torch.bfloat16: "BF16", torch.float16: "F16", torch.int32: "I32", torch.bool: "BOOL",
                 torch.float32: "F32", torch.float64: "F64", torch.int64: "I64"}
        header, blobs, offset = {}, [], 0
        for name in sorted(ref):
            t = ref[name].contiguous()
            raw = t.view(torch.int16).numpy().tobytes() if t.dtype == torch.bfloat16 else t.numpy().tobytes()
            header[name] = {"dtype": codes[t.dtype], "shape": list(t.shape),
                            "data_offsets": [offset, offset + len(raw)]}
            blobs.append(raw)
            offset += len(raw)
        header["__metadata__"] = {"written_by": "torch"}
        text = json.dumps(header).encode()
        with open(path, "wb") as f:
            f.write(struct.pack("<Q", len(text)))
            f.write(text)
            for b in blobs:
                f.write(b)
        return 0
    got, meta = read(path)
    assert meta.get("written_by") == "ember", f"metadata: {meta}"
    assert set(got) == set(ref), f"names: {sorted(got)} vs {sorted(ref)}"
    for name, t in ref.items():
        assert got[name].dtype == t.dtype, f"{name}: dtype {got[name].dtype} vs {t.dtype}"
        assert got[name].shape == t.shape, f"{name}: shape {got[name].shape} vs {t.shape}"
        assert torch.equal(got[name], t), f"{name}: values differ"
    print("ember -> torch: all", len(ref), "tensors match")
    return 0


if __name__ == "__main__":
    sys.exit(main())
