"""Writes a tiny PyTorch checkpoint in the legacy (pre-1.6, non-zip) `torch.save` format,
the format of `efficientnet-lite0-57934424.pth`, without needing torch, plus the same tensors
as a plain safetensors file, for the tests of `dmad_score::efficientnet::pth`.

Usage (from the workspace root; Python 3.11 and numpy):
    python3 testdata/efficientnet/make_tiny_pth.py

Outputs next to this script:
- `tiny_legacy.pth`: the state dict of `EfficientNetConfig::tiny()` (names and shapes below
  mirror `EfficientNetConfig::tensor_shapes`), with a `num_batches_tracked` LongStorage per
  batch normalisation, `_fc.weight` stored transposed (Fortran order, as in the real file)
  and `_fc.bias` a view at an offset into a storage shared with `_conv_head.weight`;
- `tiny_expected.safetensors`: the same float tensors, row-major f32.

The legacy layout is the one `torch.serialization._legacy_save` writes: the pickles of the
magic number, the protocol version (1001) and the system info, the pickled state dict whose
tensors are `torch._utils._rebuild_tensor_v2(storage, offset, size, stride, False,
OrderedDict())` with storages as persistent ids `('storage', torch.FloatStorage, key, 'cpu',
numel, None)`, the pickled list of storage keys, then each storage as an int64 element count
followed by its raw little-endian data.
"""
import collections
import json
import pickle
import struct
import sys
import types
from pathlib import Path

import numpy as np

# Fake `torch` and `torch._utils` modules so that pickle writes the same GLOBALs as torch.
torch = types.ModuleType("torch")
utils = types.ModuleType("torch._utils")


class FloatStorage:
    pass


class LongStorage:
    pass


def _rebuild_tensor_v2(*args):
    raise NotImplementedError


FloatStorage.__module__ = LongStorage.__module__ = "torch"
_rebuild_tensor_v2.__module__ = "torch._utils"
torch.FloatStorage, torch.LongStorage, torch._utils = FloatStorage, LongStorage, utils
utils._rebuild_tensor_v2 = _rebuild_tensor_v2
sys.modules["torch"], sys.modules["torch._utils"] = torch, utils


class Storage:
    def __init__(self, key, cls, data):
        self.key, self.cls, self.data = key, cls, data


class FakeTensor:
    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride

    def __reduce__(self):
        args = (self.storage, self.offset, tuple(self.size), tuple(self.stride), False,
                collections.OrderedDict())
        return (_rebuild_tensor_v2, args)


class Pickler(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, Storage):
            return ("storage", obj.cls, obj.key, "cpu", obj.data.size, None)
        return None


def tiny_shapes():
    """`EfficientNetConfig::tiny().tensor_shapes()`."""
    stem, head, classes = 8, 32, 10
    stages = [(1, 3, 1, 1, 8), (2, 3, 2, 2, 12), (1, 5, 2, 2, 16), (1, 3, 2, 2, 24)]
    out = [("_conv_stem.weight", [stem, 3, 3, 3])]
    bn = lambda p, c: [(f"{p}.{n}", [c]) for n in ("weight", "bias", "running_mean", "running_var")]
    out += bn("_bn0", stem)
    cin, i = stem, 0
    for r, k, s, e, cout in stages:
        for _ in range(r):
            mid, p = cin * e, f"_blocks.{i}"
            if e != 1:
                out += [(f"{p}._expand_conv.weight", [mid, cin, 1, 1])] + bn(f"{p}._bn0", mid)
            out += [(f"{p}._depthwise_conv.weight", [mid, 1, k, k])] + bn(f"{p}._bn1", mid)
            out += [(f"{p}._project_conv.weight", [cout, mid, 1, 1])] + bn(f"{p}._bn2", cout)
            cin, i = cout, i + 1
    out += [("_conv_head.weight", [head, cin, 1, 1])] + bn("_bn1", head)
    out += [("_fc.weight", [classes, head]), ("_fc.bias", [classes])]
    return out


def write_safetensors(path, tensors):
    header, offset, blobs = {}, 0, []
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name], dtype="<f4")
        header[name] = {"dtype": "F32", "shape": list(a.shape),
                        "data_offsets": [offset, offset + a.nbytes]}
        offset += a.nbytes
        blobs.append(a.tobytes())
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    path.write_bytes(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def main():
    out_dir = Path(__file__).resolve().parent
    rng = np.random.default_rng(20240607)
    values = {n: rng.standard_normal(s).astype(np.float32) for n, s in tiny_shapes()}
    for n, v in values.items():
        if n.endswith("running_var"):
            values[n] = np.abs(v) + np.float32(0.5)

    state, storages = collections.OrderedDict(), []
    key = 1000

    def new_storage(cls, data):
        nonlocal key
        key += 1
        s = Storage(str(key), cls, data)
        storages.append(s)
        return s

    shared_head = None
    for name, shape in tiny_shapes():
        v = values[name]
        if name == "_fc.weight":
            # Stored as the transpose's data: element (i, j) at i + j * rows.
            s = new_storage(FloatStorage, np.ascontiguousarray(v.T).reshape(-1))
            state[name] = FakeTensor(s, 0, shape, [1, shape[0]])
        elif name == "_conv_head.weight":
            shared_head = new_storage(FloatStorage, np.concatenate([v.reshape(-1), values["_fc.bias"]]))
            c = [int(np.prod(shape[i + 1:])) for i in range(len(shape))]
            state[name] = FakeTensor(shared_head, 0, shape, c)
        elif name == "_fc.bias":
            state[name] = FakeTensor(shared_head, values["_conv_head.weight"].size, shape, [1])
        else:
            s = new_storage(FloatStorage, v.reshape(-1))
            c = [int(np.prod(shape[i + 1:])) for i in range(len(shape))]
            state[name] = FakeTensor(s, 0, shape, c)
        if name.endswith("running_var"):
            nbt = name.replace("running_var", "num_batches_tracked")
            state[nbt] = FakeTensor(new_storage(LongStorage, np.array([12345], dtype="<i8")), 0, [], [])

    with open(out_dir / "tiny_legacy.pth", "wb") as f:
        pickle.dump(0x1950A86A20F9469CFC6C, f, protocol=2)
        pickle.dump(1001, f, protocol=2)
        pickle.dump({"protocol_version": 1001, "little_endian": True,
                     "type_sizes": {"short": 2, "int": 4, "long": 4}}, f, protocol=2)
        Pickler(f, protocol=2).dump(state)
        pickle.dump([s.key for s in storages], f, protocol=2)
        for s in storages:
            f.write(struct.pack("<q", s.data.size))
            f.write(s.data.astype(s.data.dtype.newbyteorder("<")).tobytes())
    write_safetensors(out_dir / "tiny_expected.safetensors", values)
    print("wrote tiny_legacy.pth and tiny_expected.safetensors to", out_dir)


if __name__ == "__main__":
    main()
