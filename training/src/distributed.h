// Data-parallel training on PyTorch's own c10d: the launch read from the environment (torchrun's
// RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT, or the same set by hand), a TCPStore
// hosted by rank 0, a Gloo process group, PyTorch's DDP Reducer for bucketed gradient all-reduce
// that overlaps the backward pass, and the few collectives the trainer needs around it.
//
// A run of one process (WORLD_SIZE unset or 1) makes none of these: every collective is then the
// identity, so the trainer calls them unconditionally.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <torch/types.h>

#include "loop.h"

namespace vidcls::train {

struct Launch {
  int rank = 0, world_size = 1, local_rank = 0;
  int local_world_size = 1;  // LOCAL_WORLD_SIZE (torchrun sets it); 1 when unset
  std::string master_addr;
  int master_port = 0;
  bool agent_store = false;  // torchrun's agent serves the store (TORCHELASTIC_USE_AGENT_STORE)
  int restart = 0;           // TORCHELASTIC_RESTART_COUNT: keys of each attempt apart
  bool distributed() const { return world_size > 1; }
};

// The launch the environment describes. WORLD_SIZE unset or 1: one process. Otherwise RANK,
// MASTER_ADDR and MASTER_PORT are required and checked; std::invalid_argument names the variable
// and what is wrong with it.
Launch launch_from_environment();

// Communication measured by the gradient all-reduce since the last take_comm_stats().
struct CommStats {
  int64_t steps = 0, buckets = 0;
  double allreduce_seconds = 0;  // summed over buckets, launch to completion (overlaps backward)
  double wait_seconds = 0;       // after the last bucket was launched until gradients were ready
};

class Distributed : public GradientSync {
 public:
  // Joins the job (world size 1: nothing to join). `timeout_s` bounds every wait: the store's
  // rendezvous, each collective, a peer that stopped answering.
  Distributed(const Launch &launch, double timeout_s);
  ~Distributed() override;
  Distributed(const Distributed &) = delete;
  Distributed &operator=(const Distributed &) = delete;

  int rank() const { return launch_.rank; }
  int world_size() const { return launch_.world_size; }
  bool enabled() const { return launch_.distributed(); }
  const char *backend() const { return enabled() ? "gloo" : "none"; }
  double timeout_seconds() const { return timeout_s_; }

  // Every rank's values of the options that change the computation, against rank 0's. On a
  // difference every rank throws vidcls::MismatchError naming the options and the ranks.
  void check_same_configuration(const std::map<std::string, std::string> &config);

  // Runs `body` on the ranks one after the other (rank order), e.g. to build a clip cache that
  // ranks on one machine share. No time limit on the wait (a dead rank still ends it).
  template <class F>
  void one_at_a_time(const std::string &what, F body) {
    wait_turn(what);
    body();
    end_turn(what);
  }

  // In place, from rank 0 (its values replace every other rank's).
  void broadcast(std::vector<torch::Tensor> tensors);
  // Named tensors of rank 0 (names, dtypes and shapes need not be known elsewhere); the other
  // ranks' `named` is replaced.
  void broadcast_named(std::map<std::string, torch::Tensor> &named);
  void all_reduce_sum(torch::Tensor &t);
  // Rows of every rank's `local` (rank r holding rows r, r + W, ... of `total` rows), put back
  // in their original order.
  torch::Tensor all_gather_strided(const torch::Tensor &local, int64_t total);

  // Gradient synchronisation through c10d::Reducer over these (trainable) parameters, whose
  // gradients are then averaged over the ranks when backward() returns.
  void attach(const std::vector<std::string> &names, const std::vector<torch::Tensor> &params);
  void before_forward() override;
  void before_backward(const torch::Tensor &loss) override;
  void after_backward() override;
  CommStats take_comm_stats();
  // Throws the message of a lost peer for a c10d failure `e` during `what`.
  [[noreturn]] void failed(const std::string &what, const std::exception &e) const;

 private:
  struct Impl;
  void wait_turn(const std::string &what);
  void end_turn(const std::string &what);
  Launch launch_;
  double timeout_s_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace vidcls::train
