// The GPT example's model (examples/gpt): the key/value cache gives the logits of a full forward at
// every position, generation is repeatable and slides past block_size as documented, sampling
// honours temperature/top_k/top_p, and the character corpus splits and encodes as it says.
#include <filesystem>
#include <fstream>
#include <random>
#include <set>

#include "char_corpus.h"
#include "gpt_model.h"
#include "helpers.h"

using namespace ember;
using ember::test::check_error;

namespace {

gpt::GPTConfig tiny_config() {
  gpt::GPTConfig c;
  c.vocab_size = 23;
  c.block_size = 16;
  c.n_layer = 2;
  c.n_head = 2;
  c.d_model = 16;
  return c;
}

double max_abs_diff(const Tensor& a, const Tensor& b) { return (a - b).abs().max().item<double>(); }

// The logits after the last token of the window, from a full forward (no cache).
std::vector<float> last_logits(gpt::GPT& model, const std::vector<int64_t>& window) {
  const int64_t n = static_cast<int64_t>(window.size());
  Tensor logits =
      model.forward(tensor(window, {1, n})).select(1, n - 1).reshape({-1}).to(kFloat32).contiguous();
  return std::vector<float>(logits.data_ptr<float>(), logits.data_ptr<float>() + logits.numel());
}

}  // namespace

TEST_CASE("GPT: logits through the KV cache equal a full forward at every position") {
  manual_seed(1);
  gpt::GPT model(tiny_config());
  model.eval();
  autograd::NoGradGuard no_grad;
  Tensor tokens = randint(0, 23, {2, 16});
  Tensor full = model.forward(tokens);  // [2, 16, 23]
  // A prompt of 5, one token, a chunk of 3 (queries after cached keys need the shifted causal
  // mask), then one at a time to the end of the block.
  gpt::KVCache cache(model.config(), 2);
  std::vector<Tensor> pieces;
  int64_t pos = 0;
  for (int64_t len : {5, 1, 3, 1, 1, 1, 1, 1, 1, 1}) {
    pieces.push_back(model.forward(tokens.narrow(1, pos, len), &cache));
    pos += len;
    CHECK(cache.length() == pos);
  }
  REQUIRE(pos == 16);
  Tensor cached = cat(pieces, 1);
  CHECK(max_abs_diff(cached, full) < 1e-5);
  // One more token than block_size is a clear error.
  check_error([&] { model.forward(tokens.narrow(1, 0, 1), &cache); }, {"GPT", "16 cached", "block_size 16"});
}

TEST_CASE("GPT: generation with the cache follows a cacheless forward of the same window, past block_size") {
  manual_seed(2);
  gpt::GPT model(tiny_config());
  model.to(kFloat64);  // greedy choices then cannot flip on rounding
  {
    // Large weights make the next token depend on the whole window (GPT-2's small initial weights
    // give nearly the same choice after any context, which would hide a wrong window).
    autograd::NoGradGuard no_grad;
    for (auto& p : model.parameters()) nn::init::normal_(p, 0.0, 0.5);
  }
  const std::vector<int64_t> prompt{3, 1, 4, 1, 5};
  const int64_t steps = 40, block = 16, keep = block / 2;
  const gpt::GenerateOptions options{.temperature = 1.0, .seed = 11};
  auto got = model.generate(prompt, steps, options);
  REQUIRE(got.size() == steps);
  CHECK(std::set<int64_t>(got.begin(), got.end()).size() >= 5);
  // The documented window: the prompt, then each token appended until block_size tokens are held,
  // then the last block_size / 2. The same uniform draws as generate's, one per token.
  autograd::NoGradGuard no_grad;
  model.eval();
  std::mt19937_64 rng(options.seed);
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  std::vector<int64_t> window = prompt;
  for (int64_t i = 0; i < steps; ++i) {
    const int64_t next = gpt::sample_token(last_logits(model, window), options, uniform(rng));
    INFO("token " << i);
    REQUIRE(got[i] == next);
    if (static_cast<int64_t>(window.size()) == block) window.erase(window.begin(), window.end() - (keep - 1));
    window.push_back(next);
  }
}

TEST_CASE("GPT: a fixed seed gives the same tokens twice, another seed other tokens") {
  manual_seed(3);
  gpt::GPT model(tiny_config());
  gpt::GenerateOptions o{.temperature = 1.0, .top_k = 10, .top_p = 0.9, .seed = 7};
  auto a = model.generate({1, 2, 3}, 30, o);
  auto b = model.generate({1, 2, 3}, 30, o);
  CHECK(a == b);
  o.seed = 8;
  CHECK(model.generate({1, 2, 3}, 30, o) != a);
  CHECK(model.is_training());  // generate restores the mode it found
}

TEST_CASE("GPT: sampling honours temperature, top_k and top_p") {
  // probabilities 0.1, 0.2, 0.3, 0.4 for tokens 0..3
  std::vector<float> logits;
  for (double p : {0.1, 0.2, 0.3, 0.4}) logits.push_back(static_cast<float>(std::log(p)));
  auto draw = [&](gpt::GenerateOptions o, double u) { return gpt::sample_token(logits, o, u); };
  CHECK(draw({.temperature = 0}, 0.99) == 3);
  // Tokens by falling probability: 3 (0.4), 2 (0.3), 1 (0.2), 0 (0.1).
  CHECK(draw({}, 0.39) == 3);
  CHECK(draw({}, 0.41) == 2);
  CHECK(draw({}, 0.95) == 0);
  CHECK(draw({.top_k = 2}, 0.95) == 2);  // renormalised over 0.4 and 0.3
  CHECK(draw({.top_k = 2}, 0.5) == 3);
  CHECK(draw({.top_p = 0.65}, 0.99) == 2);  // 0.4 + 0.3 reaches 0.65
  CHECK(draw({.top_p = 0.3}, 0.99) == 3);
  CHECK(draw({.top_k = 1}, 0.99) == 3);
  // A low temperature sharpens: at 0.1 token 3 has (0.4^10) / sum(p^10) = 0.94 of the mass.
  CHECK(draw({.temperature = 0.1}, 0.9) == 3);
  check_error([&] { draw({.temperature = -1}, 0.5); }, {"temperature", "-1"});
  check_error([&] { draw({.top_p = 0}, 0.5); }, {"top_p"});
  check_error([&] { draw({.top_k = -2}, 0.5); }, {"top_k"});
}

TEST_CASE("GPT: bad prompts and configurations are clear errors") {
  gpt::GPT model(tiny_config());
  check_error([&] { model.generate({}, 5); }, {"generate", "prompt is empty"});
  check_error([&] { model.generate({1, 23}, 5); }, {"generate", "token 23", "vocabulary of 23"});
  check_error([&] { model.generate({1}, -1); }, {"max_new_tokens"});
  check_error([&] { model.generate({1}, 0, {.top_p = 2}); },
              {"generate", "top_p", "2"});  // even with no token to draw
  check_error([&] { model.forward(zeros({1, 4})); }, {"GPT", "int64", "float32"});
  check_error([&] { model.forward(zeros({1, 17}, kInt64)); }, {"GPT", "17 new tokens", "block_size 16"});
  auto bad = tiny_config();
  bad.n_head = 3;
  check_error([&] { gpt::GPT m(bad); }, {"d_model 16", "n_head 3"});
}

TEST_CASE("GPT: weight decay groups hold the matrices and embeddings, not biases and norms") {
  gpt::GPT model(tiny_config());
  auto [decay, no_decay] = model.decay_groups();
  CHECK(decay.size() + no_decay.size() == model.parameters().size());
  for (auto& p : decay) CHECK(p.dim() == 2);
  for (auto& p : no_decay) CHECK(p.dim() == 1);
  // 2 embeddings + 4 matrices per block; the head reuses wte, so no separate matrix.
  CHECK(decay.size() == 2 + 4 * 2);
}

TEST_CASE("CharVocab and the fortunes reader: encode, decode, split by file") {
  gpt::CharVocab v = gpt::CharVocab::of_text("hello, world\n");
  CHECK(v.chars() == "\n ,dehlorw");
  CHECK(v.decode(v.encode("world, hello")) == "world, hello");
  check_error([&] { v.encode("hi!"); }, {"encode", "'i'", "not in the vocabulary of 10"});
  check_error([&] { v.decode({10}); }, {"decode", "token 10"});

  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / "ember_test_fortunes";
  fs::remove_all(dir);
  fs::create_directories(dir);
  check_error([&] { gpt::load_fortunes(dir.string()); }, {"no fortune files", "apt-get install fortunes"});
  for (int i = 0; i < 10; ++i) {
    const std::string name = std::string("f") + std::to_string(i);  // (not "f" + ...: GCC 12's -Wrestrict)
    std::ofstream(dir / name) << "file\t" << i << "\n%\n";
    std::ofstream(dir / (name + ".dat")) << "\x01\x02 index";  // skipped
  }
  auto corpus = gpt::load_fortunes(dir.string());
  REQUIRE(corpus.val_files == std::vector<std::string>{"f9"});
  CHECK(corpus.train_files.size() == 9);
  CHECK(corpus.vocab.decode(corpus.val) == "file 9\n%\n");  // the tab became a space
  CHECK(corpus.train.size() == 9 * 9);
  fs::remove_all(dir);
}

TEST_CASE("Window datasets: next-character targets, repeatable random starts") {
  auto tokens =
      std::make_shared<const std::vector<int64_t>>(std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
  gpt::TiledWindows tiled(tokens, 4);
  CHECK(tiled.size() == 2);
  auto [x, y] = tiled.get(1);
  CHECK(x.equal(tensor({4, 5, 6, 7})));
  CHECK(y.equal(tensor({5, 6, 7, 8})));
  gpt::RandomWindows random(tokens, 4, 100, 5);
  for (int64_t i = 0; i < 100; ++i) {
    auto [rx, ry] = random.get(i);
    CHECK(ry.equal(rx + 1));
    CHECK(rx.equal(random.get(i)[0]));
  }
  check_error([&] { gpt::TiledWindows(tokens, 10); }, {"10 tokens", "window of 10"});
}
