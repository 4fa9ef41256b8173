// Importing image-model weights as users download them into our video models: a ViT/DeiT into
// the ViViT spatial encoder and tubelet embedding, a ResNet into the ResNet + Temporal ViT
// backbone. Formats are detected from the file: torch.save zip (.pth, torchvision or DeiT with a
// "model" key) or safetensors (timm or Hugging Face naming).
#pragma once

#include <string>
#include <vector>

#include "vidcls/classifier.h"
#include "vidcls/resnet.h"
#include "vidcls/safetensors.h"
#include "vidcls/vivit.h"

namespace vidcls {

struct ImportReport {
  std::string source_format;         // e.g. "torchvision vit", "timm vit", "hf vit", "hf resnet"
  std::vector<std::string> loaded;   // our parameter names that were set
  std::vector<std::string> skipped;  // source keys not used (e.g. the image classifier head)
  std::vector<std::string> notes;    // what was adapted: kernel inflation, grid resize, ...
  std::vector<std::string> kept;     // our tensors left as they were (vidcls checkpoints)
};

// Reads a pretrained file into a flat list of tensors (format detected by magic bytes).
NamedTensors read_pretrained(const std::string &path);

// ViT / DeiT weights (torchvision, timm, Hugging Face naming) into a ViViT or Mini-ViViT: tubelet
// kernel by `init` (the tubelet's h x w must equal the patch size), spatial CLS token, position
// embedding (bicubic interpolation when the patch grid differs; a DeiT distillation token and its
// slot are dropped), the first `depth` spatial blocks (for a weight-shared model, each group takes
// the weights of its first layer, each layer its own LayerNorms), final spatial LayerNorm. The
// temporal encoder and the head keep their initialisation. Throws MismatchError when width, MLP
// width, depth, channels or patch size do not fit (heads cannot be read from weights), and
// FormatError when the naming is unknown or a tensor is missing; nothing is changed then.
ImportReport import_vit(ViViTImpl &model, const NamedTensors &weights, TubeletInit init);

// ResNet weights (torchvision/timm or Hugging Face microsoft/resnet-* naming) into a ResNet whose
// depth must be the file's (MismatchError otherwise). The classifier (fc) is loaded only when the
// ResNet has one of the same size.
ImportReport import_resnet(ResNetImpl &model, const NamedTensors &weights);

// Initialises `model` from the file at `path`. A vidcls checkpoint (any preset) gives every tensor
// whose name and shape match (the rest is listed in `kept`); image weights go through the
// functions above by model type (a ResNet + Temporal ViT takes a ResNet into its backbone;
// loaded names are then under "backbone."). Errors name `path`.
ImportReport import_pretrained(VideoClassifierImpl &model, const std::string &path,
                               TubeletInit init = TubeletInit::kCentralFrame);

}  // namespace vidcls
