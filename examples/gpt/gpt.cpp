// A character-level GPT trained on Debian's fortunes with ember's Trainer, then sampled with the
// key/value cache (docs/gpt.md). Training writes DIR/last.ckpt (and the best by validation loss),
// a CSV log under DIR/lightning_logs and prints the validation loss in nats per character.
//
//   gpt [--max-steps N] [--sample-tokens M] [--out DIR] [--precision 32-true|bf16-mixed]
//       [--layers L] [--d-model C] [--heads H] [--block-size T] [--batch-size B] [--lr X]
//       [--val-every N] [--data DIR] [--max-val-loss X] [--prompt TEXT] [--temperature X]
//       [--top-k K] [--top-p P] [--seed S]
//   gpt --resume DIR/last.ckpt [--prompt TEXT] [--sample-tokens M]    sample from a checkpoint
//   gpt --resume DIR/last.ckpt --max-steps N                          train on to step N
#include <cmath>
#include <iostream>
#include <map>
#include <numbers>
#include <string>

#include "char_corpus.h"
#include "gpt_model.h"

using namespace ember;
using namespace ember::trainer;
using Batch = std::array<Tensor, 2>;  // inputs [B, T] and the next characters [B, T]

class LitGPT : public LightningModule<Batch> {
 public:
  explicit LitGPT(const HParams& hp) : LightningModule("LitGPT"), vocab(hp.get<std::string>("vocab")) {
    save_hyperparameters(hp);
    gpt::GPTConfig c;
    c.vocab_size = vocab.size();
    c.block_size = hp.get<int64_t>("block_size");
    c.n_layer = hp.get<int64_t>("n_layer");
    c.n_head = hp.get<int64_t>("n_head");
    c.d_model = hp.get<int64_t>("d_model");
    c.dropout = hp.get<double>("dropout");
    model = register_module("model", std::make_shared<gpt::GPT>(c));
  }

  Tensor training_step(const Batch& batch, int64_t) override {
    Tensor loss = loss_of(batch);
    log("train_loss", loss, {.prog_bar = true});
    return loss;
  }
  Tensor validation_step(const Batch& batch, int64_t) override {
    Tensor loss = loss_of(batch);
    log("val_loss", loss, {.prog_bar = true});
    return loss;
  }

  // AdamW with weight decay on the matrices and embeddings only; the learning rate rises linearly
  // over the warm-up steps, then follows a cosine down to a tenth of its peak at the last step.
  Optimizers configure_optimizers() override {
    auto [decay, no_decay] = model->decay_groups();
    const double wd = hparams().get<double>("weight_decay");
    std::vector<optim::ParamGroup> groups{{decay, {.weight_decay = wd}}, {no_decay, {.weight_decay = 0.0}}};
    auto opt = std::make_shared<optim::AdamW>(
        groups, optim::AdamWOptions{.lr = hparams().get<double>("lr"), .beta2 = 0.95});
    const int64_t warmup = hparams().get<int64_t>("warmup_steps"),
                  total = trainer().estimated_stepping_batches();
    auto schedule = [warmup, total](int64_t step) {
      if (step < warmup) return static_cast<double>(step + 1) / warmup;
      const double progress =
          std::min(1.0, static_cast<double>(step - warmup) / std::max<int64_t>(1, total - warmup));
      return 0.1 + 0.9 * 0.5 * (1 + std::cos(std::numbers::pi * progress));
    };
    return OptimizerConfig{
        .optimizer = opt,
        .lr_scheduler = LRSchedulerConfig{.scheduler = std::make_shared<optim::LambdaLR>(*opt, schedule),
                                          .interval = "step"}};
  }

  gpt::CharVocab vocab;
  std::shared_ptr<gpt::GPT> model;

 private:
  Tensor loss_of(const Batch& batch) {
    const auto& [x, y] = batch;
    Tensor logits = model->forward(x);
    return nn::functional::cross_entropy(logits.reshape({-1, logits.size(-1)}), y.reshape({-1}));
  }
};

namespace {

struct Args {
  std::map<std::string, std::string> values;
  std::string get(const std::string& key, const std::string& fallback) const {
    auto it = values.find(key);
    return it == values.end() ? fallback : it->second;
  }
  // The fallback itself when the option is absent (a round trip through text would round it).
  int64_t integer(const std::string& key, int64_t fallback) const {
    return has(key) ? std::stoll(get(key, "")) : fallback;
  }
  double real(const std::string& key, double fallback) const {
    return has(key) ? std::stod(get(key, "")) : fallback;
  }
  bool has(const std::string& key) const { return values.count(key) > 0; }
};

const char* kFlags[] = {"--max-steps", "--sample-tokens", "--out",        "--precision",   "--layers",
                        "--d-model",   "--heads",         "--block-size", "--batch-size",  "--lr",
                        "--data",      "--max-val-loss",  "--prompt",     "--temperature", "--top-k",
                        "--top-p",     "--seed",          "--resume",     "--val-every"};

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; i += 2) {
    const std::string flag = argv[i];
    EMBER_CHECK(std::find(std::begin(kFlags), std::end(kFlags), flag) != std::end(kFlags), "unknown option ",
                flag, " (see the comment at the top of examples/gpt/gpt.cpp)");
    EMBER_CHECK(i + 1 < argc, "option ", flag, " needs a value");
    a.values[flag] = argv[i + 1];
  }
  return a;
}

void print_sample(LitGPT& lit, const Args& args) {
  const std::string prompt = args.get("--prompt", "\n");
  gpt::GenerateOptions g{.temperature = args.real("--temperature", 0.8),
                         .top_k = args.integer("--top-k", 0),
                         .top_p = args.real("--top-p", 0.95),
                         .seed = static_cast<uint64_t>(args.integer("--seed", 0))};
  auto tokens = lit.model->generate(lit.vocab.encode(prompt), args.integer("--sample-tokens", 400), g);
  std::cout << "---- sample ----\n" << prompt << lit.vocab.decode(tokens) << "\n----------------\n";
}

int run(const Args& args) {
  const std::string out = args.get("--out", "runs/gpt");
  const uint64_t seed = static_cast<uint64_t>(args.integer("--seed", 0));
  seed_everything(seed);
  auto corpus = gpt::load_fortunes(args.get("--data", "/usr/share/games/fortunes"));
  std::shared_ptr<LitGPT> lit;
  if (args.has("--resume")) {
    lit = load_from_checkpoint<LitGPT>(args.get("--resume", ""));
    EMBER_CHECK(lit->vocab.chars() == corpus.vocab.chars(), "gpt: the checkpoint's vocabulary (",
                lit->vocab.size(), " characters) is not the corpus's (", corpus.vocab.size(), ")");
    if (!args.has("--max-steps")) {  // sample only
      print_sample(*lit, args);
      return 0;
    }
  } else {
    lit = std::make_shared<LitGPT>(HParams{{"vocab", corpus.vocab.chars()},
                                           {"block_size", args.integer("--block-size", 64)},
                                           {"n_layer", args.integer("--layers", 4)},
                                           {"n_head", args.integer("--heads", 4)},
                                           {"d_model", args.integer("--d-model", 128)},
                                           {"dropout", 0.0},
                                           {"lr", args.real("--lr", 3e-3)},
                                           {"weight_decay", 0.1},
                                           {"warmup_steps", int64_t(40)},
                                           {"batch_size", args.integer("--batch-size", 16)}});
  }
  const auto& hp = lit->hparams();
  const int64_t block = hp.get<int64_t>("block_size"), batch = hp.get<int64_t>("batch_size");
  const int64_t max_steps = args.integer("--max-steps", 3000), val_every = args.integer("--val-every", 1000);
  std::cout << "fortunes: " << corpus.train.size() << " training characters from "
            << corpus.train_files.size() << " files, " << corpus.val.size() << " validation characters from "
            << corpus.val_files.size() << " others; vocabulary " << corpus.vocab.size() << " characters\n";

  auto train_tokens = std::make_shared<const std::vector<int64_t>>(std::move(corpus.train));
  auto val_tokens = std::make_shared<const std::vector<int64_t>>(std::move(corpus.val));
  data::DataLoader train(std::make_shared<gpt::RandomWindows>(train_tokens, block, max_steps * batch, seed),
                         {.batch_size = batch});
  data::DataLoader val(std::make_shared<gpt::TiledWindows>(val_tokens, block), {.batch_size = 64});
  auto checkpoint = std::make_shared<ModelCheckpoint>(
      ModelCheckpoint::Options{.dirpath = out, .filename = "best", .monitor = "val_loss", .save_last = true});
  Trainer trainer({.max_steps = max_steps,
                   .val_check_interval = val_every,
                   .limit_val_batches = 4,
                   .num_sanity_val_steps = 0,
                   .gradient_clip_val = 1.0,
                   .log_every_n_steps = 10,
                   .default_root_dir = out,
                   .callbacks = {checkpoint},
                   .precision = args.get("--precision", "32-true")});
  trainer.fit(*lit, train, val, args.get("--resume", ""));

  Trainer eval_trainer({.enable_progress_bar = false,
                        .enable_checkpointing = false,
                        .logger = false,
                        .precision = args.get("--precision", "32-true")});
  const double val_loss = eval_trainer.validate(*lit, val).at("val_loss");
  std::cout << "validation loss: " << val_loss << " nats per character (" << val_loss / std::numbers::ln2
            << " bits) on " << val_tokens->size() << " unseen characters\n";
  print_sample(*lit, args);
  const double limit = args.real("--max-val-loss", 1e9);
  if (!(val_loss < limit)) {
    std::cerr << "gpt: validation loss " << val_loss << " is not below the required " << limit << "\n";
    return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(parse(argc, argv));
  } catch (const std::exception& e) {
    std::cerr << "gpt: " << e.what() << "\n";
    return 1;
  }
}
