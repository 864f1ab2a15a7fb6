// The second main-job example: a sequence-to-sequence Transformer LightningModule learns to reverse
// random token sequences. It trains with teacher forcing (the decoder reads the true previous
// tokens), validates token accuracy that way and exact-sequence accuracy by greedy decoding (the
// decoder reads its own previous outputs, as at inference).
//
//   seq2seq_reverse [--epochs N] [--train N] [--length L] [--root DIR] [--min-seq-accuracy A]
#include <cmath>
#include <iostream>
#include <string>

#include "ember/ember.h"

using namespace ember;
using namespace ember::trainer;
using Batch = std::array<Tensor, 2>;  // source tokens [B, L], target tokens [B, L]

constexpr int64_t kBos = 0;  // start-of-sequence token; data tokens are 1..vocab-1

class LitReverser : public LightningModule<Batch> {
 public:
  explicit LitReverser(const HParams& hp) : LightningModule("LitReverser") {
    save_hyperparameters(hp);
    d_model_ = hp.get<int64_t>("d_model");
    const int64_t vocab = hp.get<int64_t>("vocab");
    embed = register_module("embed", std::make_shared<nn::Embedding>(vocab, d_model_));
    position =
        register_module("position", std::make_shared<nn::Embedding>(hp.get<int64_t>("length") + 1, d_model_));
    nn::TransformerOptions o;
    o.d_model = d_model_;
    o.nhead = hp.get<int64_t>("nhead");
    o.num_encoder_layers = o.num_decoder_layers = hp.get<int64_t>("layers");
    o.dim_feedforward = 4 * d_model_;
    o.dropout = hp.get<double>("dropout");
    o.batch_first = true;
    transformer = register_module("transformer", std::make_shared<nn::Transformer>(o));
    head = register_module("head", std::make_shared<nn::Linear>(d_model_, vocab));
  }

  // Logits [B, T, vocab] for every prefix of tgt_in.
  Tensor forward(const Tensor& src, const Tensor& tgt_in) {
    const int64_t t = tgt_in.size(1);
    Tensor mask = nn::Transformer::generate_square_subsequent_mask(t);
    Tensor out = transformer->forward(embed_tokens(src), embed_tokens(tgt_in),
                                      {.tgt_mask = mask, .tgt_is_causal = true});
    return (*head)(out);
  }

  Tensor training_step(const Batch& batch, int64_t) override {
    auto [src, tgt] = batch;
    auto [loss, token_acc] = teacher_forced(src, tgt);
    log("train_loss", loss, {.prog_bar = true, .on_epoch = true});
    log("train_token_acc", token_acc, {.on_step = false, .on_epoch = true});
    return loss;
  }

  Tensor validation_step(const Batch& batch, int64_t) override { return evaluate(batch, "val"); }
  Tensor test_step(const Batch& batch, int64_t) override { return evaluate(batch, "test"); }

  Optimizers configure_optimizers() override {
    auto opt = std::make_shared<optim::AdamW>(parameters(), optim::AdamWOptions{});
    optim::OneCycleLR::Options one_cycle;
    one_cycle.max_lr = hparams().get<double>("lr");
    one_cycle.total_steps = trainer().estimated_stepping_batches();
    return OptimizerConfig{
        .optimizer = opt,
        .lr_scheduler = LRSchedulerConfig{.scheduler = std::make_shared<optim::OneCycleLR>(*opt, one_cycle),
                                          .interval = "step"}};
  }

  // Greedy decoding: each step feeds the tokens produced so far.
  Tensor generate(const Tensor& src) {
    autograd::NoGradGuard no_grad;
    Tensor out = full({src.size(0), 1}, kBos, kInt64);
    for (int64_t step = 0; step < src.size(1); ++step) {
      Tensor logits = forward(src, out);
      Tensor next = logits.select(1, logits.size(1) - 1).argmax(1, true);
      out = cat({out, next}, 1);
    }
    return out.slice(1, 1);
  }

 private:
  Tensor embed_tokens(const Tensor& tokens) {
    Tensor pos = arange(tokens.size(1), kInt64);
    return (*embed)(tokens)*std::sqrt(static_cast<double>(d_model_)) + (*position)(pos);
  }
  std::pair<Tensor, Tensor> teacher_forced(const Tensor& src, const Tensor& tgt) {
    Tensor tgt_in = cat({full({tgt.size(0), 1}, kBos, kInt64), tgt.slice(1, 0, tgt.size(1) - 1)}, 1);
    Tensor logits = forward(src, tgt_in);
    Tensor flat = logits.reshape({-1, logits.size(2)});
    Tensor loss = nn::functional::cross_entropy(flat, tgt.reshape({-1}));
    Tensor acc = flat.argmax(1).eq(tgt.reshape({-1})).to(kFloat32).mean();
    return {loss, acc};
  }
  Tensor evaluate(const Batch& batch, const std::string& stage) {
    auto [src, tgt] = batch;
    auto [loss, token_acc] = teacher_forced(src, tgt);
    Tensor correct = generate(src).eq(tgt).to(kInt64).sum({1});  // right tokens per sequence
    Tensor exact = correct.eq(full_like(correct, tgt.size(1))).to(kFloat32).mean();
    log(stage + "_loss", loss);
    log(stage + "_token_acc", token_acc);
    log(stage + "_seq_acc", exact, {.prog_bar = true});
    return loss;
  }

  int64_t d_model_;
  std::shared_ptr<nn::Embedding> embed, position;
  std::shared_ptr<nn::Transformer> transformer;
  std::shared_ptr<nn::Linear> head;
};

// n random sequences of `length` tokens in 1..vocab-1 and their reversals.
std::shared_ptr<data::TensorDataset<2>> reversal_data(int64_t n, int64_t length, int64_t vocab) {
  Tensor src = randint(1, vocab, {n, length});
  Tensor backwards = arange(length - 1, -1, -1, kInt64);
  return std::make_shared<data::TensorDataset<2>>(src, index_select(src, 1, backwards).contiguous());
}

int main(int argc, char** argv) {
  int64_t epochs = 4, n_train = 20000, length = 8, vocab = 11;
  double min_seq_accuracy = 0;
  std::string root = "runs/seq2seq";
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i], value = argv[i + 1];
    if (flag == "--epochs") epochs = std::stoll(value);
    else if (flag == "--train") n_train = std::stoll(value);
    else if (flag == "--length") length = std::stoll(value);
    else if (flag == "--root") root = value;
    else if (flag == "--min-seq-accuracy") min_seq_accuracy = std::stod(value);
    else {
      std::cerr << "seq2seq_reverse: unknown option " << flag << "\n";
      return 2;
    }
  }
  try {
    seed_everything(0);
    auto train_set = reversal_data(n_train, length, vocab);
    auto val_set = reversal_data(1000, length, vocab);
    auto test_set = reversal_data(2000, length, vocab);
    data::DataLoader train(train_set, {.batch_size = 128, .shuffle = true});
    data::DataLoader val(val_set, {.batch_size = 500});
    data::DataLoader test(test_set, {.batch_size = 500});
    LitReverser model(HParams{{"vocab", vocab},
                              {"length", length},
                              {"d_model", int64_t(64)},
                              {"nhead", int64_t(4)},
                              {"layers", int64_t(2)},
                              {"dropout", 0.0},
                              {"lr", 2e-3}});
    Trainer trainer({.max_epochs = epochs,
                     .gradient_clip_val = 1.0,
                     .log_every_n_steps = 20,
                     .enable_checkpointing = false,
                     .default_root_dir = root});
    trainer.fit(model, train, val);
    const double acc = trainer.test(model, test).at("test_seq_acc");
    std::cout << "exact-sequence accuracy (greedy decoding): " << 100 * acc << "% of " << test_set->size()
              << " unseen sequences\n";
    if (acc < min_seq_accuracy) {
      std::cerr << "seq2seq_reverse: accuracy " << acc << " is below the required " << min_seq_accuracy
                << "\n";
      return 1;
    }
  } catch (const std::exception& e) {
    std::cerr << "seq2seq_reverse: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
