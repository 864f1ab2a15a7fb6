// libFuzzer target: the JSON texts ember reads back from files (hparams, callback and scheduler
// states) given directly as arbitrary text, so the fuzzer need not first build a valid safetensors
// container around them.
#include "ember/ember.h"

namespace {

template <class F>
void expect_ember_error_or_success(F&& f) {
  try {
    f();
  } catch (const ember::Error&) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ember::trainer;
  const std::string text(reinterpret_cast<const char*>(data), size);
  expect_ember_error_or_success([&] { HParams::from_json(text); });
  expect_ember_error_or_success([&] { ModelCheckpoint().load_state_dict(text); });
  expect_ember_error_or_success([&] { EarlyStopping({.monitor = "m"}).load_state_dict(text); });
  expect_ember_error_or_success([&] { Timer(3600.0).load_state_dict(text); });
  expect_ember_error_or_success([&] {
    ember::nn::Linear lin(2, 2);
    auto sgd = std::make_shared<ember::optim::SGD>(lin.parameters(), ember::optim::SGDOptions{.lr = 0.1});
    Scheduler s(std::make_shared<ember::optim::StepLR>(*sgd, 1));
    s.load_state_json(text);
  });
  return 0;
}
