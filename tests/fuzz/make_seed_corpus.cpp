// Writes the fuzz targets' seed corpus: valid files of every kind the readers accept, made by ember
// itself so they always match the current formats. scripts/fuzz.sh runs it before fuzzing.
//   make_seed_corpus OUT_DIR   ->  OUT_DIR/{fuzz_safetensors,fuzz_checkpoint,fuzz_json_state}/...
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "ember/ember.h"

using namespace ember;
using namespace ember::trainer;
namespace fs = std::filesystem;
using Batch = std::array<Tensor, 2>;

namespace {

// A small regression model with an optimizer, a scheduler and logged metrics, so its checkpoint
// holds optimizer state tensors and the states of several callbacks.
struct Model : LightningModule<Batch> {
  Model() : LightningModule("Model") {
    save_hyperparameters(
        {{"hidden", int64_t(3)}, {"lr", 0.01}, {"name", std::string("seed")}, {"flag", true}});
    body = register_module("body", std::make_shared<nn::Linear>(2, 3));
    head = register_module("head", std::make_shared<nn::Linear>(3, 1));
  }
  Tensor forward(const Tensor& x) override { return (*head)((*body)(x).relu()); }
  Tensor training_step(const Batch& b, int64_t) override {
    Tensor loss = nn::functional::mse_loss(forward(b[0]), b[1]);
    log("train_loss", loss);
    return loss;
  }
  Tensor validation_step(const Batch& b, int64_t) override {
    Tensor loss = nn::functional::mse_loss(forward(b[0]), b[1]);
    log("val_loss", loss);
    return loss;
  }
  Optimizers configure_optimizers() override {
    auto adam = std::make_shared<optim::Adam>(parameters());
    return Optimizers::with_schedulers({adam}, {{.scheduler = std::make_shared<optim::StepLR>(*adam, 1)}});
  }
  std::shared_ptr<nn::Linear> body, head;
};

void write_text(const fs::path& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

void safetensors_seeds(const fs::path& dir) {
  nn::save_safetensors({{"f32", randn({2, 3})},
                        {"f64", randn({3}, kFloat64)},
                        {"i64", tensor({1, -2})},
                        {"i32", tensor({7}).to(kInt32)},
                        {"b", tensor({true, false})},
                        {"bf16", randn({4}).to(kBFloat16)},
                        {"f16", randn({2}).to(kFloat16)},
                        {"empty", zeros({0, 2})},
                        {"scalar", scalar_tensor(2.5)}},
                       (dir / "all_dtypes.safetensors").string(), {{"format", "pt"}});
  nn::save_safetensors({}, (dir / "no_tensors.safetensors").string());
}

// The checkpoint, and the JSON texts inside it as separate seeds for the JSON target.
void checkpoint_seeds(const fs::path& ckpt_dir, const fs::path& json_dir, const fs::path& work) {
  std::vector<Batch> data;
  for (int i = 0; i < 3; ++i) data.push_back({randn({4, 2}), randn({4, 1})});
  Model model;
  auto checkpoint = std::make_shared<ModelCheckpoint>(ModelCheckpoint::Options{
      .dirpath = (work / "ckpt").string(), .monitor = "val_loss", .save_top_k = 2, .save_last = true});
  Trainer trainer(
      {.max_epochs = 2,
       .enable_progress_bar = false,
       .enable_model_summary = false,
       .default_root_dir = work.string(),
       .callbacks = {checkpoint,
                     std::make_shared<EarlyStopping>(EarlyStopping::Options{.monitor = "val_loss"}),
                     std::make_shared<Timer>(3600.0)},
       .logger = false});
  trainer.fit(model, data, data);
  fs::copy_file(checkpoint->last_model_path(), ckpt_dir / "last.ckpt", fs::copy_options::overwrite_existing);
  nn::Metadata meta;
  nn::load_safetensors(checkpoint->last_model_path(), &meta);
  const auto j = nlohmann::json::parse(meta.at("ember.checkpoint"));
  int n = 0;
  for (auto& [key, state] : j.at("callbacks").items())
    write_text(json_dir / ("callback" + std::to_string(n++) + ".json"), state);
  for (auto& state : j.at("lr_schedulers"))
    write_text(json_dir / ("scheduler" + std::to_string(n++) + ".json"), state);
  write_text(json_dir / "hparams.json", j.at("hparams").dump());
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: make_seed_corpus OUT_DIR\n";
    return 2;
  }
  const fs::path out(argv[1]);
  for (const char* d : {"fuzz_safetensors", "fuzz_checkpoint", "fuzz_json_state", "work"})
    fs::create_directories(out / d);
  manual_seed(0);
  safetensors_seeds(out / "fuzz_safetensors");
  checkpoint_seeds(out / "fuzz_checkpoint", out / "fuzz_json_state", out / "work");
  fs::copy_file(out / "fuzz_checkpoint" / "last.ckpt", out / "fuzz_safetensors" / "checkpoint.safetensors",
                fs::copy_options::overwrite_existing);
  fs::remove_all(out / "work");
  std::cout << "ember: seed corpus written to " << out.string() << "\n";
}
