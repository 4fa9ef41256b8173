#include "distributed.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <mutex>
#include <stdexcept>
#include <unordered_map>
#include <utility>

#include <nlohmann/json.hpp>

#include "vidcls/errors.h"

#ifdef VIDCLS_WITH_C10D
#include "c10d_gloo.h"
#endif

namespace vidcls::train {

namespace {

using Clock = std::chrono::steady_clock;

// An integer environment variable in [lo, hi]; `fallback` when unset.
int env_int(const char *name, int fallback, int lo, int hi) {
  const char *v = std::getenv(name);
  if (v == nullptr || *v == '\0') return fallback;
  char *end = nullptr;
  const long n = std::strtol(v, &end, 10);
  if (*end != '\0' || n < lo || n > hi) {
    throw std::invalid_argument(std::string(name) + "='" + v + "' is not an integer in [" +
                                std::to_string(lo) + ", " + std::to_string(hi) + "]");
  }
  return static_cast<int>(n);
}

std::string require_env(const char *name, int world) {
  const char *v = std::getenv(name);
  if (v == nullptr || *v == '\0') {
    throw std::invalid_argument(std::string("WORLD_SIZE is ") + std::to_string(world) + " but " +
                                name +
                                " is not set: launch with torchrun, or set RANK, WORLD_SIZE, "
                                "MASTER_ADDR and MASTER_PORT on every process");
  }
  return v;
}

std::string first_line(const std::string &s) { return s.substr(0, s.find('\n')); }

}  // namespace

Launch launch_from_environment() {
  Launch l;
  l.world_size = env_int("WORLD_SIZE", 1, 1, 1 << 20);
  if (!l.distributed()) return l;
  require_env("RANK", l.world_size);
  l.rank = env_int("RANK", 0, 0, l.world_size - 1);
  l.local_rank = env_int("LOCAL_RANK", 0, 0, l.world_size - 1);
  l.local_world_size = env_int("LOCAL_WORLD_SIZE", 1, 1, l.world_size);
  l.master_addr = require_env("MASTER_ADDR", l.world_size);
  require_env("MASTER_PORT", l.world_size);
  l.master_port = env_int("MASTER_PORT", 0, 1, 65535);
  const char *agent = std::getenv("TORCHELASTIC_USE_AGENT_STORE");
  l.agent_store = agent != nullptr && std::string(agent) == "True";
  l.restart = env_int("TORCHELASTIC_RESTART_COUNT", 0, 0, 1 << 20);
  return l;
}

#ifdef VIDCLS_WITH_C10D

namespace {

// Per-bucket all-reduce as PyTorch's default DDP hook does it (divide by the world size, sum),
// timed: launch to completion of every bucket, and when the last one of a step was launched.
struct CommClock {
  std::mutex mutex;
  CommStats stats;
  Clock::time_point last_launch;
};

class TimedAllReduce : public c10d::CommHookInterface {
 public:
  TimedAllReduce(c10::intrusive_ptr<c10d::ProcessGroup> pg, std::shared_ptr<CommClock> clock)
      : pg_(std::move(pg)), clock_(std::move(clock)) {}

  c10::intrusive_ptr<c10::ivalue::Future> runHook(c10d::GradBucket &bucket) override {
    const auto t0 = Clock::now();
    {
      std::lock_guard<std::mutex> lock(clock_->mutex);
      clock_->last_launch = t0;
      ++clock_->stats.buckets;
    }
    std::vector<at::Tensor> tensors = {bucket.getBufferRef()};
    tensors[0].div_(pg_->getSize());
    auto future = pg_->allreduce(tensors)->getFuture();
    future->addCallback([clock = clock_, t0](c10::ivalue::Future &) {
      std::lock_guard<std::mutex> lock(clock->mutex);
      clock->stats.allreduce_seconds += std::chrono::duration<double>(Clock::now() - t0).count();
    });
    return future;
  }

  at::Tensor parseHookResult(const c10::IValue &result) override {
    if (result.isTensor()) return result.toTensor();
    return result.toTensorVector().at(0);
  }

 private:
  c10::intrusive_ptr<c10d::ProcessGroup> pg_;
  std::shared_ptr<CommClock> clock_;
};

}  // namespace

struct Distributed::Impl {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::ProcessGroup> pg;
  std::unique_ptr<c10d::Reducer> reducer;
  std::shared_ptr<CommClock> clock = std::make_shared<CommClock>();
  int64_t sequence = 0;  // numbers the store keys of one-off exchanges (same order on every rank)
};

namespace {

// The network interface Gloo talks through, as torch.distributed picks it: GLOO_SOCKET_IFNAME when
// set; the loopback when the job is on loopback; else the address this machine's hostname has.
std::shared_ptr<::gloo::transport::Device> gloo_device(const Launch &l) {
  if (const char *ifname = std::getenv("GLOO_SOCKET_IFNAME"); ifname != nullptr && *ifname != '\0')
    return c10d::ProcessGroupGloo::createDeviceForInterface(ifname);
  if (l.master_addr == "localhost" || l.master_addr.rfind("127.", 0) == 0 || l.master_addr == "::1")
    return c10d::ProcessGroupGloo::createDeviceForHostname(l.master_addr);
  return c10d::ProcessGroupGloo::createDefaultDevice();
}

// A c10d failure as a message a user can act on.
[[noreturn]] void lost(const Launch &l, double timeout_s, const std::string &what,
                       const std::exception &e) {
  const auto *c10 = dynamic_cast<const c10::Error *>(&e);
  const std::string why = first_line(c10 != nullptr ? c10->what_without_backtrace() : e.what());
  throw std::runtime_error(
      what + " failed (" + why + "): another rank has stopped (look for its error: killed, out "
      "of memory, refused) or was never started, or this rank cannot reach MASTER_ADDR:"
      "MASTER_PORT (" + l.master_addr + ":" + std::to_string(l.master_port) + "); every wait is "
      "limited by --dist-timeout (" + std::to_string(static_cast<long>(timeout_s)) + " s)");
}

}  // namespace

#define VIDCLS_COLLECTIVE(what, ...)       \
  try {                                    \
    __VA_ARGS__;                           \
  } catch (const std::exception &e) {      \
    lost(launch_, timeout_s_, (what), e);  \
  }

Distributed::Distributed(const Launch &launch, double timeout_s)
    : launch_(launch), timeout_s_(timeout_s), impl_(std::make_unique<Impl>()) {
  if (!enabled()) return;
  const auto timeout = std::chrono::milliseconds(static_cast<int64_t>(timeout_s * 1000));
  VIDCLS_COLLECTIVE(
      "joining the job through the store at " + launch_.master_addr + ":" +
          std::to_string(launch_.master_port),
      c10d::TCPStoreOptions so;
      so.port = static_cast<std::uint16_t>(launch_.master_port);
      // torchrun's agent already serves a store there (it says so in the environment, as
      // torch.distributed does); otherwise rank 0 serves it and waits for every rank to connect.
      so.isServer = launch_.rank == 0 && !launch_.agent_store;
      so.numWorkers = launch_.world_size;
      so.waitWorkers = !launch_.agent_store;
      so.timeout = timeout;
      use_builtin_store_server(so);
      impl_->store = c10::make_intrusive<c10d::PrefixStore>(
          "vidcls-train/" + std::to_string(launch_.restart),
          c10::make_intrusive<c10d::TCPStore>(launch_.master_addr, so));
      auto opts = c10d::ProcessGroupGloo::Options::create(timeout);
      opts->devices.push_back(gloo_device(launch_));
      impl_->pg = make_gloo_group(impl_->store, launch_.rank, launch_.world_size, opts));
}

Distributed::~Distributed() = default;

void Distributed::check_same_configuration(const std::map<std::string, std::string> &config) {
  if (!enabled()) return;
  const std::string mine = nlohmann::json(config).dump();
  std::vector<std::map<std::string, std::string>> all(world_size());
  VIDCLS_COLLECTIVE(
      "exchanging the configuration", const std::string key = "config/" +
                                                            std::to_string(impl_->sequence++);
      impl_->store->set(key + "/" + std::to_string(rank()),
                        std::vector<uint8_t>(mine.begin(), mine.end()));
      for (int r = 0; r < world_size(); ++r) {
        const auto bytes = impl_->store->get(key + "/" + std::to_string(r));
        all[r] = nlohmann::json::parse(bytes.begin(), bytes.end())
                     .get<std::map<std::string, std::string>>();
      });
  std::string diff;
  for (int r = 1; r < world_size(); ++r) {
    for (const auto &[k, v0] : all[0]) {
      const auto it = all[r].find(k);
      const std::string v = it == all[r].end() ? "(unset)" : it->second;
      if (v != v0) diff += "\n  " + k + ": '" + v0 + "' on rank 0, '" + v + "' on rank " +
                           std::to_string(r);
    }
  }
  if (!diff.empty()) {
    throw MismatchError("the ranks were started with different configurations; every rank "
                        "must get the same options and data:" + diff);
  }
}

void Distributed::wait_turn(const std::string &what) {
  if (!enabled() || rank() == 0) return;
  VIDCLS_COLLECTIVE("waiting for rank " + std::to_string(rank() - 1) + " to finish " + what,
                    impl_->store->wait({"turn/" + what + "/" + std::to_string(rank() - 1)},
                                       std::chrono::hours(24 * 7)));
}

void Distributed::end_turn(const std::string &what) {
  if (!enabled()) return;
  VIDCLS_COLLECTIVE("signalling the end of " + what,
                    impl_->store->set("turn/" + what + "/" + std::to_string(rank()),
                                      std::vector<uint8_t>{'1'}));
}

void Distributed::broadcast(std::vector<torch::Tensor> tensors) {
  if (!enabled() || tensors.empty()) return;
  for (auto &t : tensors) {
    if (!t.is_contiguous())
      throw std::logic_error("Distributed::broadcast needs contiguous tensors");
  }
  torch::NoGradGuard no_grad;
  VIDCLS_COLLECTIVE("broadcasting from rank 0",
                    c10d::broadcast_coalesced(impl_->pg, tensors, 64 << 20, 0));
}

void Distributed::broadcast_named(std::map<std::string, torch::Tensor> &named) {
  if (!enabled()) return;
  const std::string key = "named/" + std::to_string(impl_->sequence++);
  nlohmann::json layout = nlohmann::json::array();
  if (rank() == 0) {
    for (const auto &[name, t] : named)
      layout.push_back({name, static_cast<int>(t.scalar_type()), t.sizes().vec()});
    const std::string s = layout.dump();
    VIDCLS_COLLECTIVE("sending tensor names",
                      impl_->store->set(key, std::vector<uint8_t>(s.begin(), s.end())));
  } else {
    std::vector<uint8_t> bytes;
    VIDCLS_COLLECTIVE("receiving tensor names from rank 0", bytes = impl_->store->get(key));
    layout = nlohmann::json::parse(bytes.begin(), bytes.end());
    named.clear();
    for (const auto &e : layout) {
      named[e[0].get<std::string>()] = torch::empty(
          e[2].get<std::vector<int64_t>>(), static_cast<torch::ScalarType>(e[1].get<int>()));
    }
  }
  std::vector<torch::Tensor> tensors;
  for (auto &[name, t] : named) {
    t = t.contiguous();
    tensors.push_back(t);
  }
  broadcast(tensors);
}

void Distributed::all_reduce_sum(torch::Tensor &t) {
  if (!enabled()) return;
  std::vector<torch::Tensor> ts = {t.contiguous()};
  VIDCLS_COLLECTIVE("all-reduce", impl_->pg->allreduce(ts)->wait());
  t = ts[0];
}

torch::Tensor Distributed::all_gather_strided(const torch::Tensor &local, int64_t total) {
  if (!enabled()) return local;
  const int64_t w = world_size(), rows = (total + w - 1) / w;
  auto padded = torch::zeros({rows, local.size(1)}, local.options());
  padded.narrow(0, 0, local.size(0)).copy_(local);
  std::vector<std::vector<torch::Tensor>> out(1);
  for (int64_t r = 0; r < w; ++r) out[0].push_back(torch::empty_like(padded));
  std::vector<torch::Tensor> in = {padded};
  VIDCLS_COLLECTIVE("gathering evaluation results", impl_->pg->allgather(out, in)->wait());
  // Row i of the whole came from rank i % W, its row i / W.
  auto stacked = torch::stack(out[0], 1).reshape({rows * w, local.size(1)});
  return stacked.narrow(0, 0, total);
}

void Distributed::attach(const std::vector<std::string> &names,
                         const std::vector<torch::Tensor> &params) {
  if (!enabled()) return;
  // As torch.nn.parallel.DistributedDataParallel: a first bucket of 1 MiB, then 25 MiB buckets,
  // assigned in parameter order and reduced in reverse (the order backward produces gradients).
  constexpr size_t kFirstBucket = 1 << 20, kBucket = 25u << 20;
  const std::vector<bool> sparse(params.size(), false);
  auto [buckets, limits] =
      c10d::compute_bucket_assignment_by_size(params, {kFirstBucket, kBucket}, sparse);
  std::reverse(buckets.begin(), buckets.end());
  std::reverse(limits.begin(), limits.end());
  std::unordered_map<size_t, std::string> param_names;
  for (size_t i = 0; i < names.size(); ++i) param_names[i] = names[i];
  VIDCLS_COLLECTIVE("setting up gradient all-reduce",
                    impl_->reducer = std::make_unique<c10d::Reducer>(
                        params, std::move(buckets), std::move(limits), impl_->pg, sparse, kBucket,
                        /*find_unused_parameters=*/false, /*gradient_as_bucket_view=*/false,
                        std::move(param_names), kFirstBucket);
                    impl_->reducer->register_comm_hook(
                        std::make_unique<TimedAllReduce>(impl_->pg, impl_->clock)));
}

void Distributed::before_forward() {
  if (!impl_->reducer) return;
  VIDCLS_COLLECTIVE("agreeing on gradient buckets", impl_->reducer->rebuild_buckets();
                    impl_->reducer->prepare_for_forward());
}

void Distributed::before_backward(const torch::Tensor &loss) {
  if (!impl_->reducer) return;
  impl_->reducer->prepare_for_backward({loss});
}

void Distributed::after_backward() {
  if (!impl_->reducer) return;
  std::lock_guard<std::mutex> lock(impl_->clock->mutex);
  impl_->clock->stats.wait_seconds +=
      std::chrono::duration<double>(Clock::now() - impl_->clock->last_launch).count();
  ++impl_->clock->stats.steps;
}

CommStats Distributed::take_comm_stats() {
  std::lock_guard<std::mutex> lock(impl_->clock->mutex);
  return std::exchange(impl_->clock->stats, CommStats{});
}

void Distributed::failed(const std::string &what, const std::exception &e) const {
  lost(launch_, timeout_s_, what, e);
}

#else  // built without c10d

struct Distributed::Impl {};

Distributed::Distributed(const Launch &launch, double timeout_s)
    : launch_(launch), timeout_s_(timeout_s), impl_(std::make_unique<Impl>()) {
  if (enabled()) {
    throw std::runtime_error(
        "WORLD_SIZE is " + std::to_string(launch.world_size) +
        " but this vidcls-train was built without PyTorch's c10d (Gloo): install libgloo-dev "
        "and rebuild, or run one process");
  }
}
Distributed::~Distributed() = default;
void Distributed::check_same_configuration(const std::map<std::string, std::string> &) {}
void Distributed::wait_turn(const std::string &) {}
void Distributed::end_turn(const std::string &) {}
void Distributed::broadcast(std::vector<torch::Tensor>) {}
void Distributed::broadcast_named(std::map<std::string, torch::Tensor> &) {}
void Distributed::all_reduce_sum(torch::Tensor &) {}
torch::Tensor Distributed::all_gather_strided(const torch::Tensor &local, int64_t) {
  return local;
}
void Distributed::attach(const std::vector<std::string> &, const std::vector<torch::Tensor> &) {}
void Distributed::before_forward() {}
void Distributed::before_backward(const torch::Tensor &) {}
void Distributed::after_backward() {}
CommStats Distributed::take_comm_stats() { return {}; }
void Distributed::failed(const std::string &, const std::exception &e) const { throw e; }

#endif

}  // namespace vidcls::train
