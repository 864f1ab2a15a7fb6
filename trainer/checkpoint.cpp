// Checkpoint file reading and writing: see checkpoint.h.
#include "ember/trainer/checkpoint.h"

#include <filesystem>
#include <nlohmann/json.hpp>

#include "ember/nn/serialize.h"

namespace ember::trainer {
namespace {
const char* kKey = "ember.checkpoint";
const std::string kState = "state_dict.", kOpt = "optimizer_states.", kExtra = "extras.";
}  // namespace

void write_checkpoint(const std::string& path, const CheckpointContents& c) {
  nn::NamedTensors tensors;
  for (auto& [k, t] : c.state_dict) tensors.emplace_back(kState + k, t);
  nlohmann::json opts = nlohmann::json::array();
  for (size_t i = 0; i < c.optimizers.size(); ++i) {
    const auto& s = c.optimizers[i];
    opts.push_back({{"groups", s.groups}, {"group_params", s.group_params}});
    for (auto& [param, entries] : s.state)
      for (auto& [name, t] : entries)
        tensors.emplace_back(kOpt + std::to_string(i) + "." + std::to_string(param) + "." + name, t);
  }
  for (auto& [k, t] : c.extras.tensors) tensors.emplace_back(kExtra + k, t);
  nlohmann::json meta = {
      {"format", 1},
      {"epoch", c.epoch},
      {"global_step", c.global_step},
      {"loops", {{"batches_stepped", c.batches_stepped}, {"epoch_batches_done", c.epoch_batches_done},
                 {"epoch_finished", c.epoch_finished}}},
      {"module_type", c.module_type},
      {"hparams", nlohmann::json::parse(c.hparams.to_json())},
      {"optimizers", opts},
      {"lr_schedulers", c.schedulers},
      {"callbacks", c.callbacks},
      {"rng", {{"seed", c.rng.seed}, {"offset", c.rng.offset}}},
      {"rng_cuda", {{"seed", c.rng_cuda.seed}, {"offset", c.rng_cuda.offset}}},
      {"extras", c.extras.values},
      {"grad_scaler", c.grad_scaler},
  };
  nn::save_safetensors(tensors, path, {{kKey, meta.dump()}});
}

CheckpointContents read_checkpoint(const std::string& path) {
  EMBER_CHECK(std::filesystem::exists(path), "checkpoint: no file at ", path);
  nn::Metadata metadata;
  nn::NamedTensors tensors = nn::load_safetensors(path, &metadata);
  auto it = metadata.find(kKey);
  EMBER_CHECK(it != metadata.end(), "checkpoint: ", path, " is a safetensors file but not an ember checkpoint "
              "(no \"", kKey, "\" metadata); load plain weights with nn::load");
  const auto meta = nlohmann::json::parse(it->second);
  CheckpointContents c;
  c.epoch = meta.at("epoch").get<int64_t>();
  c.global_step = meta.at("global_step").get<int64_t>();
  const auto& loops = meta.at("loops");
  c.batches_stepped = loops.at("batches_stepped").get<int64_t>();
  c.epoch_batches_done = loops.at("epoch_batches_done").get<int64_t>();
  c.epoch_finished = loops.at("epoch_finished").get<bool>();
  c.module_type = meta.at("module_type").get<std::string>();
  c.hparams = HParams::from_json(meta.at("hparams").dump());
  for (auto& o : meta.at("optimizers")) {
    optim::OptimizerState s;
    s.groups = o.at("groups").get<std::vector<optim::Options>>();
    s.group_params = o.at("group_params").get<std::vector<std::vector<int64_t>>>();
    c.optimizers.push_back(std::move(s));
  }
  c.schedulers = meta.at("lr_schedulers").get<std::vector<std::string>>();
  c.callbacks = meta.at("callbacks").get<std::map<std::string, std::string>>();
  c.rng.seed = meta.at("rng").at("seed").get<uint64_t>();
  c.rng.offset = meta.at("rng").at("offset").get<uint64_t>();
  if (meta.contains("rng_cuda")) {
    c.rng_cuda.seed = meta["rng_cuda"].at("seed").get<uint64_t>();
    c.rng_cuda.offset = meta["rng_cuda"].at("offset").get<uint64_t>();
  }
  c.extras.values = meta.at("extras").get<std::map<std::string, std::string>>();
  if (meta.contains("grad_scaler")) c.grad_scaler = meta["grad_scaler"].get<std::map<std::string, double>>();
  for (auto& [name, t] : tensors) {
    if (name.rfind(kState, 0) == 0) {
      c.state_dict.emplace_back(name.substr(kState.size()), t);
    } else if (name.rfind(kOpt, 0) == 0) {
      // optimizer_states.<i>.<param>.<entry name>
      const std::string rest = name.substr(kOpt.size());
      const size_t a = rest.find('.'), b = rest.find('.', a + 1);
      EMBER_CHECK(a != std::string::npos && b != std::string::npos, "checkpoint: bad tensor name ", name);
      const size_t i = std::stoul(rest.substr(0, a));
      EMBER_CHECK(i < c.optimizers.size(), "checkpoint: ", name, " names optimizer ", i, " of ", c.optimizers.size());
      c.optimizers[i].state[std::stoll(rest.substr(a + 1, b - a - 1))][rest.substr(b + 1)] = t;
    } else if (name.rfind(kExtra, 0) == 0) {
      c.extras.tensors.emplace_back(name.substr(kExtra.size()), t);
    }
  }
  return c;
}

}  // namespace ember::trainer
