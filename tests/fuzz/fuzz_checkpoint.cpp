// libFuzzer target: a checkpoint file as the Trainer reads it on resume: read_checkpoint, then the
// saved states of the built-in callbacks and of an LR scheduler, each parsed as Trainer::restore does.
#include "ember/ember.h"
#include "fuzz_input_file.h"

namespace {

void load_states(const ember::trainer::CheckpointContents& c) {
  using namespace ember::trainer;
  ModelCheckpoint checkpoint;
  EarlyStopping stopping({.monitor = "val_loss"});
  Timer timer(3600.0);
  for (auto& [key, state] : c.callbacks) {
    try {
      checkpoint.load_state_dict(state);
    } catch (const ember::Error&) {
    }
    try {
      stopping.load_state_dict(state);
    } catch (const ember::Error&) {
    }
    try {
      timer.load_state_dict(state);
    } catch (const ember::Error&) {
    }
  }
  // The model and its optimizer, as Trainer::restore loads them.
  ember::nn::Linear model(4, 2);
  try {
    model.load_state_dict(c.state_dict, /*strict=*/false);
  } catch (const ember::Error&) {
  }
  ember::optim::Adam adam(model.parameters());
  for (auto& s : c.optimizers) try {
      adam.load_state_dict(s);
    } catch (const ember::Error&) {
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = ember::fuzz::write_input(data, size, ".ckpt");
  try {
    load_states(ember::trainer::read_checkpoint(path));
  } catch (const ember::Error&) {
  }
  return 0;
}
