"""Writes seed inputs for the fuzz targets: small torch.save archives, safetensors files and
Flax checkpoints.

Usage: /usr/bin/python3 make_seed_corpus.py OUT_DIR
Creates OUT_DIR/torch_pickle/, OUT_DIR/safetensors/ and OUT_DIR/flax_msgpack/. Needs torch and
msgpack, not the safetensors package or Flax.
"""
import json
import os
import struct
import sys

import msgpack
import numpy as np
import torch

DTYPES = {torch.float32: 'F32', torch.float64: 'F64', torch.float16: 'F16',
          torch.bfloat16: 'BF16', torch.int64: 'I64', torch.int32: 'I32', torch.int16: 'I16',
          torch.int8: 'I8', torch.uint8: 'U8', torch.bool: 'BOOL'}


def safetensors_bytes(tensors, metadata=None):
    header, blobs, offset = {}, [], 0
    if metadata:
        header['__metadata__'] = metadata
    for name, t in tensors.items():
        blob = t.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()
        header[name] = {'dtype': DTYPES[t.dtype], 'shape': list(t.shape),
                        'data_offsets': [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    text = json.dumps(header).encode()
    text += b' ' * (-len(text) % 8)
    return struct.pack('<Q', len(text)) + text + b''.join(blobs)


def main(out):
    pickles = os.path.join(out, 'torch_pickle')
    st = os.path.join(out, 'safetensors')
    os.makedirs(pickles, exist_ok=True)
    os.makedirs(st, exist_ok=True)
    torch.manual_seed(0)
    base = torch.arange(6, dtype=torch.float32).reshape(2, 3)
    small = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.BatchNorm1d(2)).state_dict()
    objects = {
        'state_dict': small,
        'wrapped': {'model': small, 'epoch': 1, 'args': {'lr': 0.1, 'flags': [True, None]}},
        'dtypes': {'h': torch.ones(2).half(), 'b': torch.ones(2).bfloat16(),
                   'l': torch.arange(3), 'bool': torch.tensor([True, False]),
                   'scalar': torch.tensor(1.5), 'empty': torch.empty(0, 2)},
        'views': {'t': base.t(), 's': base[:, 1:], 'p': torch.nn.Parameter(torch.ones(1))},
        'nested': {'a': {'b': torch.ones(1)}, 'l': [torch.zeros(1)], 3: torch.ones(1)},
    }
    for name, obj in objects.items():
        torch.save(obj, os.path.join(pickles, name + '.pth'))
    torch.save(small, os.path.join(pickles, 'protocol4.pth'), pickle_protocol=4)

    files = {
        'mixed': ({'a': torch.ones(2, 2), 'h': torch.ones(3).half(), 'b': torch.ones(1).bfloat16(),
                   'i': torch.arange(2), 'bool': torch.tensor([True]), 's': torch.tensor(2.0),
                   'e': torch.empty(0)}, {'format': 'pt'}),
        'empty': ({}, None),
        'one': ({'w': torch.ones(1, dtype=torch.uint8)}, None),
    }
    for name, (tensors, metadata) in files.items():
        with open(os.path.join(st, name + '.safetensors'), 'wb') as f:
            f.write(safetensors_bytes(tensors, metadata))

    flax_dir = os.path.join(out, 'flax_msgpack')
    os.makedirs(flax_dir, exist_ok=True)

    def array(a):  # flax.serialization's extension type 1: (shape, dtype name, C-order bytes)
        return msgpack.ExtType(1, msgpack.packb((a.shape, a.dtype.name, a.tobytes('C'))))

    states = {
        'train_state': {'global_step': 3, 'optimizer': {'target': {
            'embedding': {'kernel': array(np.ones((2, 2, 1, 3), np.float32)),
                          'bias': array(np.zeros(3, np.float32))}}},
            'rng': array(np.array([1, 2], np.uint32)), 'none': None, 'time': 1.5},
        'dtypes': {'h': array(np.ones(2, np.float16)), 'd': array(np.ones(2, np.float64)),
                   'i': array(np.arange(3, dtype=np.int64)), 'b': array(np.array([True])),
                   'u16': array(np.array([65535], np.uint16)), 'e': array(np.zeros((0, 2), np.int8)),
                   'scalar': msgpack.ExtType(3, msgpack.packb(('float32', b'\0\0\x80?'))),
                   'list': [array(np.ones(1, np.int32))]},
    }
    for name, state in states.items():
        with open(os.path.join(flax_dir, name + '.msgpack'), 'wb') as f:
            f.write(msgpack.packb(state, use_bin_type=True))


if __name__ == '__main__':
    main(sys.argv[1])
