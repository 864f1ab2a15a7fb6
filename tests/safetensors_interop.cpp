// The ember side of the safetensors interop test (tests/parity/safetensors_interop.py):
//   safetensors_interop write FILE   writes the reference tensors with nn::save_safetensors
//   safetensors_interop check FILE   reads FILE (written by PyTorch) and compares exactly
#include <ember/ember.h>

#include <iostream>

using namespace ember;

static nn::NamedTensors reference() {
  Tensor base = arange(12, TensorOptions(kFloat64)).reshape({3, 4}) / 8.0 - 0.75;
  return {{"f32", base.to(kFloat32)},
          {"f64", base},
          {"bf16", base.to(kBFloat16)},
          {"f16", base.to(kFloat16)},
          {"i64", arange(-3, 3)},
          {"i32", (arange(5) * 7).to(kInt32)},
          {"bool", tensor({true, false, true})},
          {"empty", zeros({0, 2})},
          {"layer.weight", base.to(kFloat32).t().contiguous()}};
}

int main(int argc, char** argv) {
  if (argc != 3) {
    std::cerr << "usage: safetensors_interop write|check FILE\n";
    return 2;
  }
  const std::string mode = argv[1], path = argv[2];
  try {
    if (mode == "write") {
      nn::save_safetensors(reference(), path, {{"written_by", "ember"}});
      return 0;
    }
    nn::Metadata meta;
    auto got = nn::load_safetensors(path, &meta);
    if (meta["written_by"] != "torch") throw Error("metadata lost");
    auto ref = reference();
    if (got.size() != ref.size()) throw Error("wrong number of tensors");
    for (auto& [name, t] : ref) {
      const Tensor* g = nn::find(got, name);
      if (!g || g->dtype() != t.dtype() || !equal(*g, t)) throw Error("tensor " + name + " differs");
    }
    std::cout << "torch -> ember: all " << ref.size() << " tensors match\n";
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "safetensors_interop: " << e.what() << "\n";
    return 1;
  }
}
