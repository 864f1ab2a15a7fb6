// Weights on disk in the safetensors format, so they move between ember and PyTorch / Hugging Face
// tools: an 8-byte little-endian header length, a JSON header {name: {dtype, shape, data_offsets},
// "__metadata__": {string: string}}, then the raw little-endian tensor bytes. Writes go to a
// temporary file that is renamed into place, so a crash never leaves a half-written file. Reads treat
// the file as hostile: the header is checked against the format (bounded JSON, no duplicate names,
// tensors that tile the data exactly) before any memory is sized from it; see docs/errors.md.
#pragma once
#include <map>
#include <string>

#include "ember/nn/module.h"

namespace ember::nn {

using Metadata = std::map<std::string, std::string>;

void save_safetensors(const NamedTensors& tensors, const std::string& path, const Metadata& metadata = {});
// Tensors in file order (sorted by data offset), on the CPU.
NamedTensors load_safetensors(const std::string& path, Metadata* metadata = nullptr);

// A module's state_dict to / from a safetensors file.
void save(const Module& module, const std::string& path, const Metadata& metadata = {});
LoadResult load(Module& module, const std::string& path, bool strict = true);

}  // namespace ember::nn
