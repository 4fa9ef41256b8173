#include "run_state.h"

#include <cstdio>
#include <fstream>
#include <stdexcept>

#include <torch/optim/adamw.h>
#include <torch/optim/sgd.h>
#include <torch/version.h>

#include "vidcls/errors.h"
#include "vidcls/train/metrics.h"

namespace fs = std::filesystem;

namespace vidcls::train {

namespace {

constexpr const char *kMetricsHeader =
    "epoch,step,lr,train_loss,train_acc,val_loss,val_top1,val_top5,test_loss,test_top1,test_top5,"
    "epoch_seconds,data_wait_share";

std::string csv_line(const EpochRow &r) {
  char buf[512];
  std::snprintf(buf, sizeof buf, "%d,%lld,%.9g,%.9g,%.9g,%.9g,%.9g,%.9g,%.9g,%.9g,%.9g,%.3f,%.4f",
                r.epoch, static_cast<long long>(r.step), r.lr, r.train_loss, r.train_acc,
                r.val_loss, r.val_top1, r.val_top5, r.test_loss, r.test_top1, r.test_top5,
                r.epoch_seconds, r.data_wait_share);
  return buf;
}

void write_text_atomic(const fs::path &path, const std::string &text) {
  const fs::path tmp = path.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << text;
    if (!out) throw std::runtime_error("cannot write " + tmp.string());
  }
  fs::rename(tmp, path);
}

// The optimiser's per-parameter state is keyed by the parameter's TensorImpl: LibTorch 1.13 keys it
// by the pointer printed as a string, 2.x by the pointer itself.
#if TORCH_VERSION_MAJOR >= 2
void *state_key(const torch::Tensor &p) { return p.unsafeGetTensorImpl(); }
#else
std::string state_key(const torch::Tensor &p) {
  return c10::guts::to_string(p.unsafeGetTensorImpl());
}
#endif

}  // namespace

std::vector<EpochRow> read_metrics(const fs::path &path, int up_to_epoch) {
  std::vector<EpochRow> rows;
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    EpochRow r;
    long long step = 0;
    if (std::sscanf(line.c_str(), "%d,%lld,%lf,%lf,%lf,%lf,%lf,%lf,%lf,%lf,%lf,%lf,%lf", &r.epoch,
                    &step, &r.lr, &r.train_loss, &r.train_acc, &r.val_loss, &r.val_top1,
                    &r.val_top5, &r.test_loss, &r.test_top1, &r.test_top5, &r.epoch_seconds,
                    &r.data_wait_share) == 13 &&
        r.epoch <= up_to_epoch) {
      r.step = step;
      rows.push_back(r);
    }
  }
  return rows;
}

void write_metrics(const fs::path &path, const std::vector<EpochRow> &rows) {
  std::string text = std::string(kMetricsHeader) + "\n";
  for (const auto &r : rows) text += csv_line(r) + "\n";
  write_text_atomic(path, text);
}

void write_curves(const fs::path &path, const std::vector<EpochRow> &rows) {
  std::vector<CurvePoint> curve;
  for (const auto &r : rows)
    curve.push_back({r.epoch, r.lr, r.train_loss, r.train_acc, r.val_loss, r.val_top1,
                     r.test_loss, r.test_top1});
  try {
    write_curves_png(path.string(), curve);
  } catch (const std::exception &e) {
    std::fprintf(stderr, "warning: %s\n", e.what());
  }
}

NamedTensors optimizer_state(torch::optim::Optimizer &opt, const NamedParams &params,
                             const std::string &kind) {
  NamedTensors out;
  auto &state = opt.state();
  for (const auto &[name, p] : params) {
    auto it = state.find(state_key(p));
    if (it == state.end()) continue;
    if (kind == "adamw") {
      auto &s = static_cast<torch::optim::AdamWParamState &>(*it->second);
      out.emplace_back("optim." + name + ".exp_avg", s.exp_avg().cpu().clone());
      out.emplace_back("optim." + name + ".exp_avg_sq", s.exp_avg_sq().cpu().clone());
      out.emplace_back("optim." + name + ".step", torch::tensor({s.step()}, torch::kInt64));
    } else {
      auto &s = static_cast<torch::optim::SGDParamState &>(*it->second);
      out.emplace_back("optim." + name + ".momentum_buffer", s.momentum_buffer().cpu().clone());
    }
  }
  return out;
}

void restore_optimizer_state(torch::optim::Optimizer &opt, const NamedParams &params,
                             const std::string &kind,
                             const std::map<std::string, torch::Tensor> &extra,
                             const std::string &what) {
  auto &state = opt.state();
  auto get = [&](const std::string &key) -> torch::Tensor {
    auto it = extra.find(key);
    return it == extra.end() ? torch::Tensor() : it->second;
  };
  for (const auto &[name, p] : params) {
    if (kind == "adamw") {
      auto m = get("optim." + name + ".exp_avg"), v = get("optim." + name + ".exp_avg_sq"),
           step = get("optim." + name + ".step");
      if (!m.defined()) continue;  // never stepped
      if (!v.defined() || !step.defined() || !m.sizes().equals(p.sizes()))
        throw MismatchError(what + ": optimiser state of " + name + " is incomplete or mis-shaped");
      auto s = std::make_unique<torch::optim::AdamWParamState>();
      s->step(step.item<int64_t>());
      s->exp_avg(m.to(p.device()).clone());
      s->exp_avg_sq(v.to(p.device()).clone());
      state[state_key(p)] = std::move(s);
    } else {
      auto b = get("optim." + name + ".momentum_buffer");
      if (!b.defined()) continue;
      auto s = std::make_unique<torch::optim::SGDParamState>();
      s->momentum_buffer(b.to(p.device()).clone());
      state[state_key(p)] = std::move(s);
    }
  }
}

bool BestSoFar::improved_by(const EpochRow &row, bool have_val) const {
  if (!have_val) return true;
  return row.val_top1 > val_top1 || (row.val_top1 == val_top1 && row.val_loss < val_loss);
}

void add_run_position(NamedTensors &extra, const RunPosition &pos) {
  extra.emplace_back("train.epoch", torch::tensor({static_cast<int64_t>(pos.epoch)}));
  extra.emplace_back("train.step", torch::tensor({pos.step}));
  extra.emplace_back("train.best_epoch", torch::tensor({static_cast<int64_t>(pos.best.epoch)}));
  extra.emplace_back("train.best_val_top1", torch::tensor({pos.best.val_top1}, torch::kFloat64));
  extra.emplace_back("train.best_val_loss", torch::tensor({pos.best.val_loss}, torch::kFloat64));
}

RunPosition read_run_position(const std::map<std::string, torch::Tensor> &extra,
                              const std::string &what) {
  auto get = [&](const char *key) {
    auto it = extra.find(key);
    if (it == extra.end())
      throw MismatchError(what + " holds no '" + key +
                          "': it was not written by this "
                          "vidcls-train (start a new run in another folder)");
    return it->second;
  };
  RunPosition pos;
  pos.epoch = static_cast<int>(get("train.epoch").item<int64_t>());
  pos.step = get("train.step").item<int64_t>();
  pos.best.epoch = static_cast<int>(get("train.best_epoch").item<int64_t>());
  pos.best.val_top1 = get("train.best_val_top1").item<double>();
  pos.best.val_loss = get("train.best_val_loss").item<double>();
  return pos;
}

}  // namespace vidcls::train
