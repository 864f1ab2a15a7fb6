// SyncBatchNorm for data-parallel runs: batch statistics over the whole global batch rather than each
// rank's slice, so N ranks x batch b train like one process with batch N*b. Every nn::BatchNorm
// under a module gets a `reduce_stats` function that sums its per-channel statistics over the ranks
// with an all-reduce whose backward is again an all-reduce (the gradient of a sum over ranks).
// Trainer(sync_batchnorm = true) does this at fit start; eval mode and single processes are untouched.
#pragma once
#include <memory>

#include "ember/nn/module.h"
#include "ember/trainer/distributed.h"

namespace ember::trainer {

// Sum over ranks that autograd can differentiate.
Tensor all_reduce_sum(const Tensor& x, const std::shared_ptr<distributed::ProcessGroup>& group);

// Makes every BatchNorm under `root` synchronise its statistics over `group`; returns how many.
int convert_sync_batchnorm(nn::Module& root, std::shared_ptr<distributed::ProcessGroup> group);

}  // namespace ember::trainer
