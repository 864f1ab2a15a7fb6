// The checkpoint file: one safetensors file (readable by any safetensors tool) holding the model's
// state_dict under "state_dict.<key>", optimizer state tensors under
// "optimizer_states.<i>.<param>.<name>", module extras under "extras.<key>", and everything else
// (epoch, global_step, loop position, hparams, optimizer options, scheduler and callback state, RNG)
// as JSON in the header's metadata under "ember.checkpoint". Written atomically.
#pragma once
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "ember/core/generator.h"
#include "ember/nn/module.h"
#include "ember/optim/grad_scaler.h"
#include "ember/optim/optimizer.h"
#include "ember/trainer/hparams.h"
#include "ember/trainer/lightning_module.h"

namespace ember::trainer {

struct CheckpointContents {
  int64_t epoch = 0, global_step = 0, batches_stepped = 0, epoch_batches_done = 0;
  bool epoch_finished = false;
  std::string module_type;
  HParams hparams;
  nn::NamedTensors state_dict;
  std::vector<optim::OptimizerState> optimizers;
  std::vector<std::string> schedulers;                // each scheduler's JSON state
  std::map<std::string, std::string> callbacks;       // state_key -> JSON state
  GeneratorState rng, rng_cuda;                       // the CPU's and cuda:0's generators
  std::optional<optim::GradScalerState> grad_scaler;  // precision "16-mixed": the GradScaler's state
  CheckpointExtras extras;
};

void write_checkpoint(const std::string& path, const CheckpointContents& c);
CheckpointContents read_checkpoint(const std::string& path);

}  // namespace ember::trainer
