// The character vocabulary, the fortunes reader and the window datasets of char_corpus.h.
#include "char_corpus.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

namespace gpt {

using namespace ember;

CharVocab::CharVocab(std::string chars) : chars_(std::move(chars)) {
  std::fill(std::begin(index_), std::end(index_), int16_t{-1});
  for (size_t i = 0; i < chars_.size(); ++i) {
    auto& slot = index_[static_cast<unsigned char>(chars_[i])];
    EMBER_CHECK(slot == -1, "CharVocab: character ", static_cast<int>(static_cast<unsigned char>(chars_[i])),
                " appears twice");
    slot = static_cast<int16_t>(i);
  }
}

CharVocab CharVocab::of_text(const std::string& text) {
  bool seen[256] = {};
  for (unsigned char c : text) seen[c] = true;
  std::string chars;
  for (int c = 0; c < 256; ++c)
    if (seen[c]) chars.push_back(static_cast<char>(c));
  return CharVocab(chars);
}

std::vector<int64_t> CharVocab::encode(const std::string& text) const {
  std::vector<int64_t> ids;
  ids.reserve(text.size());
  for (unsigned char c : text) {
    EMBER_CHECK(index_[c] >= 0, "CharVocab::encode: character ", static_cast<int>(c),
                (c >= 32 && c < 127 ? " ('" + std::string(1, static_cast<char>(c)) + "')" : std::string()),
                " is not in the vocabulary of ", size(), " characters");
    ids.push_back(index_[c]);
  }
  return ids;
}

std::string CharVocab::decode(const std::vector<int64_t>& tokens) const {
  std::string text;
  for (int64_t t : tokens) {
    EMBER_CHECK(t >= 0 && t < size(), "CharVocab::decode: token ", t, " is outside the vocabulary of ",
                size());
    text.push_back(chars_[t]);
  }
  return text;
}

namespace {

std::string read_clean(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  EMBER_CHECK(in.good(), "load_fortunes: cannot read ", file.string());
  std::ostringstream raw;
  raw << in.rdbuf();
  std::string text;
  for (char c : raw.str()) {
    if (c == '\t') text.push_back(' ');
    else if (c == '\n' || (c >= 32 && c < 127)) text.push_back(c);
  }
  return text;
}

}  // namespace

FortuneCorpus load_fortunes(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const auto& p = entry.path();
    if (entry.is_symlink() || !entry.is_regular_file() || p.has_extension()) continue;
    files.push_back(p);
  }
  EMBER_CHECK(!ec && !files.empty(), "load_fortunes: no fortune files in ", dir,
              " (Debian's fortunes package installs them: apt-get install fortunes)");
  std::sort(files.begin(), files.end());
  FortuneCorpus corpus;
  std::string train_text, val_text;
  for (size_t i = 0; i < files.size(); ++i) {
    const bool val = i % 10 == 9;
    (val ? val_text : train_text) += read_clean(files[i]);
    (val ? corpus.val_files : corpus.train_files).push_back(files[i].filename().string());
  }
  EMBER_CHECK(!val_text.empty(), "load_fortunes: ", dir, " has ", files.size(),
              " fortune files; the split needs at least 10 (every tenth is validation text)");
  corpus.vocab = CharVocab::of_text(train_text + val_text);
  corpus.train = corpus.vocab.encode(train_text);
  corpus.val = corpus.vocab.encode(val_text);
  return corpus;
}

namespace {

std::array<Tensor, 2> window(const std::vector<int64_t>& tokens, int64_t start, int64_t block) {
  auto first = tokens.begin() + start;
  Tensor x = tensor(std::vector<int64_t>(first, first + block), {block});
  Tensor y = tensor(std::vector<int64_t>(first + 1, first + block + 1), {block});
  return {x, y};
}

}  // namespace

RandomWindows::RandomWindows(std::shared_ptr<const std::vector<int64_t>> tokens, int64_t block, int64_t count,
                             uint64_t seed)
    : tokens_(std::move(tokens)), block_(block), count_(count), seed_(seed) {
  EMBER_CHECK(block > 0 && static_cast<int64_t>(tokens_->size()) > block, "RandomWindows: ", tokens_->size(),
              " tokens do not fill a window of ", block, " and its next token");
}

std::array<Tensor, 2> RandomWindows::get(int64_t index) const {
  std::mt19937_64 rng(seed_ * 0x9E3779B97F4A7C15ull + static_cast<uint64_t>(index));
  const int64_t starts = static_cast<int64_t>(tokens_->size()) - block_;
  return window(*tokens_, static_cast<int64_t>(rng() % static_cast<uint64_t>(starts)), block_);
}

TiledWindows::TiledWindows(std::shared_ptr<const std::vector<int64_t>> tokens, int64_t block)
    : tokens_(std::move(tokens)), block_(block) {
  EMBER_CHECK(block > 0 && static_cast<int64_t>(tokens_->size()) > block, "TiledWindows: ", tokens_->size(),
              " tokens do not fill a window of ", block, " and its next token");
}

int64_t TiledWindows::size() const { return (static_cast<int64_t>(tokens_->size()) - 1) / block_; }

std::array<Tensor, 2> TiledWindows::get(int64_t index) const {
  EMBER_CHECK(index >= 0 && index < size(), "TiledWindows: index ", index, " out of range for ", size());
  return window(*tokens_, index * block_, block_);
}

}  // namespace gpt
