// Checkpoint file reading and writing: see checkpoint.h.
#include "ember/trainer/checkpoint.h"

#include <filesystem>
#include <nlohmann/json.hpp>

#include "ember/nn/json_read.h"
#include "ember/nn/serialize.h"

namespace ember::trainer {
namespace {
const char* kKey = "ember.checkpoint";
const std::string kState = "state_dict.", kOpt = "optimizer_states.", kExtra = "extras.";
}  // namespace

namespace {
// PyTorch's keys; an empty object when there is no scaler.
nlohmann::json grad_scaler_json(const std::optional<optim::GradScalerState>& s) {
  if (!s) return nlohmann::json::object();
  return {{"scale", s->scale},
          {"growth_factor", s->growth_factor},
          {"backoff_factor", s->backoff_factor},
          {"growth_interval", s->growth_interval},
          {"_growth_tracker", s->growth_tracker}};
}
}  // namespace

void write_checkpoint(const std::string& path, const CheckpointContents& c) {
  nn::NamedTensors tensors;
  for (auto& [k, t] : c.state_dict) tensors.emplace_back(kState + k, t);
  nlohmann::json opts = nlohmann::json::array();
  for (size_t i = 0; i < c.optimizers.size(); ++i) {
    const auto& s = c.optimizers[i];
    nlohmann::json groups = nlohmann::json::array();
    for (const auto& g : s.groups) {
      nlohmann::json entries = nlohmann::json::object();
      for (const auto& [name, value] : g.named()) entries[name] = value;
      groups.push_back(entries);
    }
    opts.push_back({{"groups", groups}, {"group_params", s.group_params}});
    for (auto& [param, entries] : s.state)
      for (auto& [name, t] : entries)
        tensors.emplace_back(kOpt + std::to_string(i) + "." + std::to_string(param) + "." + name, t);
  }
  for (auto& [k, t] : c.extras.tensors) tensors.emplace_back(kExtra + k, t);
  nlohmann::json meta = {
      {"format", 1},
      {"epoch", c.epoch},
      {"global_step", c.global_step},
      {"loops",
       {{"batches_stepped", c.batches_stepped},
        {"epoch_batches_done", c.epoch_batches_done},
        {"epoch_finished", c.epoch_finished}}},
      {"module_type", c.module_type},
      {"hparams", nlohmann::json::parse(c.hparams.to_json())},
      {"optimizers", opts},
      {"lr_schedulers", c.schedulers},
      {"callbacks", c.callbacks},
      {"rng", {{"seed", c.rng.seed}, {"offset", c.rng.offset}}},
      {"rng_cuda", {{"seed", c.rng_cuda.seed}, {"offset", c.rng_cuda.offset}}},
      {"extras", c.extras.values},
      {"grad_scaler", grad_scaler_json(c.grad_scaler)},
  };
  nn::save_safetensors(tensors, path, {{kKey, meta.dump()}});
}

namespace {

using nn::json_field;

std::optional<optim::GradScalerState> read_grad_scaler(const nlohmann::json& meta, const std::string& what) {
  const auto s = json_field<nlohmann::json>(meta, "grad_scaler", what);
  if (s.is_object() && s.empty()) return std::nullopt;
  const std::string where = what + ": grad_scaler";
  // The counts may be written as 2000 or 2000.0; both read.
  auto count = [&](const char* key) { return static_cast<int64_t>(json_field<double>(s, key, where)); };
  return optim::GradScalerState{.scale = json_field<double>(s, "scale", where),
                                .growth_factor = json_field<double>(s, "growth_factor", where),
                                .backoff_factor = json_field<double>(s, "backoff_factor", where),
                                .growth_interval = count("growth_interval"),
                                .growth_tracker = count("_growth_tracker")};
}

void read_loops(const nlohmann::json& meta, CheckpointContents& c, const std::string& what) {
  const auto loops = json_field<nlohmann::json>(meta, "loops", what);
  c.batches_stepped = json_field<int64_t>(loops, "batches_stepped", what + ": loops");
  c.epoch_batches_done = json_field<int64_t>(loops, "epoch_batches_done", what + ": loops");
  c.epoch_finished = json_field<bool>(loops, "epoch_finished", what + ": loops");
}

void read_optimizers(const nlohmann::json& meta, CheckpointContents& c, const std::string& what) {
  const auto opts = json_field<nlohmann::json>(meta, "optimizers", what);
  EMBER_CHECK(opts.is_array(), what, ": the field \"optimizers\" must be a list, got ", opts.type_name());
  for (const auto& o : opts) {
    const std::string where = what + ": optimizer " + std::to_string(c.optimizers.size());
    optim::OptimizerState s;
    for (const auto& g : json_field<std::vector<std::map<std::string, double>>>(o, "groups", where))
      s.groups.push_back(optim::GroupOptions::from_named({g.begin(), g.end()}, where));
    const auto groups = json_field<nlohmann::json>(o, "group_params", where);
    EMBER_CHECK(groups.is_array(), where, ": group_params must be a list of lists");
    for (const auto& g : groups) s.group_params.push_back(nn::json_to_ints(g, where + ": group_params"));
    c.optimizers.push_back(std::move(s));
  }
}

GeneratorState read_rng(const nlohmann::json& meta, const char* key, const std::string& what) {
  const auto rng = json_field<nlohmann::json>(meta, key, what);
  const std::string where = what + ": " + key;
  return {json_field<uint64_t>(rng, "seed", where), json_field<uint64_t>(rng, "offset", where)};
}

// The index in "<digits>.<rest>" as a number, or an ember::Error naming the tensor.
int64_t leading_index(const std::string& text, size_t end, const std::string& what, const std::string& name) {
  EMBER_CHECK(end != std::string::npos && end > 0 && end <= 18 && text.find_first_not_of("0123456789") >= end,
              what, ": the tensor name \"", name, "\" is not optimizer_states.<optimizer>.<param>.<name>");
  return std::stoll(text.substr(0, end));
}

void read_optimizer_tensor(const std::string& name, const Tensor& t, CheckpointContents& c,
                           const std::string& what) {
  const std::string rest = name.substr(kOpt.size());
  const size_t a = rest.find('.');
  const int64_t i = leading_index(rest, a, what, name);
  const size_t b = rest.find('.', a + 1);
  const int64_t param = leading_index(rest.substr(a + 1), b == std::string::npos ? b : b - a - 1, what, name);
  EMBER_CHECK(i < static_cast<int64_t>(c.optimizers.size()), what, ": ", name, " names optimizer ", i, " of ",
              c.optimizers.size());
  c.optimizers[i].state[param][rest.substr(b + 1)] = t;
}

}  // namespace

CheckpointContents read_checkpoint(const std::string& path) {
  EMBER_CHECK(std::filesystem::exists(path), "checkpoint: no file at ", path);
  const std::string what = "checkpoint: " + path;
  nn::Metadata metadata;
  nn::NamedTensors tensors = nn::load_safetensors(path, &metadata);
  auto it = metadata.find(kKey);
  EMBER_CHECK(it != metadata.end(), what, " is a safetensors file but not an ember checkpoint (no \"", kKey,
              "\" metadata); load plain weights with nn::load");
  const auto meta = nn::parse_json(it->second, what);
  CheckpointContents c;
  c.epoch = json_field<int64_t>(meta, "epoch", what);
  c.global_step = json_field<int64_t>(meta, "global_step", what);
  read_loops(meta, c, what);
  c.module_type = json_field<std::string>(meta, "module_type", what);
  c.hparams = HParams::from_json(json_field<nlohmann::json>(meta, "hparams", what).dump());
  read_optimizers(meta, c, what);
  c.schedulers = json_field<std::vector<std::string>>(meta, "lr_schedulers", what);
  c.callbacks = json_field<std::map<std::string, std::string>>(meta, "callbacks", what);
  c.rng = read_rng(meta, "rng", what);
  if (meta.contains("rng_cuda")) c.rng_cuda = read_rng(meta, "rng_cuda", what);
  c.extras.values = json_field<std::map<std::string, std::string>>(meta, "extras", what);
  if (meta.contains("grad_scaler")) c.grad_scaler = read_grad_scaler(meta, what);
  for (auto& [name, t] : tensors) {
    if (name.rfind(kState, 0) == 0) c.state_dict.emplace_back(name.substr(kState.size()), t);
    else if (name.rfind(kOpt, 0) == 0) read_optimizer_tensor(name, t, c, what);
    else if (name.rfind(kExtra, 0) == 0) c.extras.tensors.emplace_back(name.substr(kExtra.size()), t);
  }
  return c;
}

}  // namespace ember::trainer
