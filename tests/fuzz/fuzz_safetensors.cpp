// libFuzzer target: nn::load_safetensors on arbitrary bytes. The file either loads (and then every
// tensor's bytes lie inside the file) or the reader throws ember::Error.
#include "ember/ember.h"
#include "fuzz_input_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = ember::fuzz::write_input(data, size, ".safetensors");
  try {
    ember::nn::Metadata metadata;
    size_t bytes = 0;
    for (auto& [name, t] : ember::nn::load_safetensors(path, &metadata))
      bytes += t.numel() * t.element_size();
    if (bytes > size) __builtin_trap();  // more tensor data than the file holds: the reader invented it
  } catch (const ember::Error&) {
  }
  return 0;
}
