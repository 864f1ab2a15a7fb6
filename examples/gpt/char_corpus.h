// Text as a character-level corpus: the characters it uses are the vocabulary (token i is the i-th
// character in byte order) and the text becomes a sequence of token ids. The gpt example reads
// Debian's fortunes (/usr/share/games/fortunes), split by file so that validation text is unseen.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <ember/ember.h>

namespace gpt {

class CharVocab {
 public:
  CharVocab() = default;
  explicit CharVocab(std::string chars);  // distinct characters, sorted
  static CharVocab of_text(const std::string& text);

  // Token ids of `text`; a character outside the vocabulary is an ember::Error naming it.
  std::vector<int64_t> encode(const std::string& text) const;
  std::string decode(const std::vector<int64_t>& tokens) const;
  const std::string& chars() const { return chars_; }
  int64_t size() const { return static_cast<int64_t>(chars_.size()); }

 private:
  std::string chars_;
  int16_t index_[256];  // character -> token id, -1 when absent
};

struct FortuneCorpus {
  CharVocab vocab;
  std::vector<int64_t> train, val;                  // token ids
  std::vector<std::string> train_files, val_files;  // the files each split was read from
};

// Every fortune file in `dir` (not the .dat indexes or .u8 links), with tabs as spaces and only
// printable ASCII and newlines kept. Files are split by name order: every tenth (the 10th, 20th, ...)
// is validation text, the rest training text. An ember::Error when the folder has none.
FortuneCorpus load_fortunes(const std::string& dir = "/usr/share/games/fortunes");

// Random windows of a token sequence for language modelling: example i is (x, y), x = tokens[s ..
// s + block), y = tokens[s + 1 .. s + block + 1), at a start s drawn from a generator seeded by
// (seed, i), so a run is repeatable and any index is valid. `count` is the dataset's nominal size.
class RandomWindows : public ember::data::Dataset<std::array<ember::Tensor, 2>> {
 public:
  RandomWindows(std::shared_ptr<const std::vector<int64_t>> tokens, int64_t block, int64_t count,
                uint64_t seed);
  int64_t size() const override { return count_; }
  std::array<ember::Tensor, 2> get(int64_t index) const override;

 private:
  std::shared_ptr<const std::vector<int64_t>> tokens_;
  int64_t block_, count_;
  uint64_t seed_;
};

// Consecutive non-overlapping windows covering the sequence (what a validation pass reads).
class TiledWindows : public ember::data::Dataset<std::array<ember::Tensor, 2>> {
 public:
  TiledWindows(std::shared_ptr<const std::vector<int64_t>> tokens, int64_t block);
  int64_t size() const override;
  std::array<ember::Tensor, 2> get(int64_t index) const override;

 private:
  std::shared_ptr<const std::vector<int64_t>> tokens_;
  int64_t block_;
};

}  // namespace gpt
