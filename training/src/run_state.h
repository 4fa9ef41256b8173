// What a training run keeps between epochs and between processes: the metrics of every epoch
// (metrics.csv, curves.png), the optimiser's state, and the checkpoints (last with what --resume
// needs, best chosen on the validation side).
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <torch/optim/optimizer.h>

#include "vidcls/safetensors.h"

namespace vidcls::train {

struct EpochRow {
  int epoch = 0;
  int64_t step = 0;
  double lr = 0, train_loss = 0, train_acc = 0;
  double val_loss = 0, val_top1 = 0, val_top5 = 0;     // chooses best.safetensors
  double test_loss = 0, test_top1 = 0, test_top5 = 0;  // recorded, never used to choose
  double epoch_seconds = 0, data_wait_share = 0;
};

// metrics.csv: one row per epoch, written atomically after each.
std::vector<EpochRow> read_metrics(const std::filesystem::path &path, int up_to_epoch);
void write_metrics(const std::filesystem::path &path, const std::vector<EpochRow> &rows);
// curves.png from the rows; a failure is a warning on stderr, not an error.
void write_curves(const std::filesystem::path &path, const std::vector<EpochRow> &rows);

// The optimiser's per-parameter state as named tensors ("optim.<param>.<field>") and back, for
// AdamW and SGD with momentum ("adamw", "sgd").
using NamedParams = std::vector<std::pair<std::string, torch::Tensor>>;
NamedTensors optimizer_state(torch::optim::Optimizer &opt, const NamedParams &params,
                             const std::string &kind);
void restore_optimizer_state(torch::optim::Optimizer &opt, const NamedParams &params,
                             const std::string &kind,
                             const std::map<std::string, torch::Tensor> &extra,
                             const std::string &what);

// Which epoch best.safetensors holds: the highest validation top-1, ties to the lower
// validation loss. Without a validation side every epoch is "better" (best follows last).
struct BestSoFar {
  int epoch = 0;
  double val_top1 = -1, val_loss = 0;
  bool improved_by(const EpochRow &row, bool have_val) const;
};

// What a run stores in last.safetensors besides the optimiser state, and reads back.
struct RunPosition {
  int epoch = 0;
  int64_t step = 0;
  BestSoFar best;
};
void add_run_position(NamedTensors &extra, const RunPosition &pos);
// Throws vidcls::MismatchError naming `what` when the file does not hold one.
RunPosition read_run_position(const std::map<std::string, torch::Tensor> &extra,
                              const std::string &what);

}  // namespace vidcls::train
