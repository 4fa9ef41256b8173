// Scenic's ViViT factorised encoder (scenic/projects/vivit/model.py, SpaceTimeViViT with the
// 'token' classifier) as its Flax checkpoints hold it, onto vidcls's ViViT. Flax stores a Dense
// kernel [in, out] (torch's Linear weight transposed), a 3D convolution kernel [t, h, w, in, out],
// and attention's query, key and value as separate [dim, heads, head_dim] kernels with
// [heads, head_dim] biases, its output as [heads, head_dim, dim].
#pragma once

#include <string>
#include <vector>

#include "vidcls/safetensors.h"
#include "vidcls/vivit.h"

namespace vidcls {

struct ScenicTensor {
  std::string name;  // under the parameter tree, e.g. "SpatialTransformer/encoder_norm/scale"
  std::vector<int64_t> shape;
};

// Every parameter of scenic's model for `cfg`, by name and shape.
std::vector<ScenicTensor> scenic_vivit_layout(const ViViTConfig &cfg);

// The parameter tree of a Flax checkpoint's tensors: those under "optimizer/target/" (a
// flax.optim train state, as scenic's published checkpoints are), else under "params/", else all
// of them, with that prefix removed. The optimizer's state and the step counter are left out.
NamedTensors scenic_parameters(const NamedTensors &file);

// Scenic's parameters, exactly scenic_vivit_layout(cfg) (check first), as the state of a ViViT
// built from `cfg` (the names of state_of).
NamedTensors vivit_from_scenic(const NamedTensors &params, const ViViTConfig &cfg);

}  // namespace vidcls
