// AutogradContext's saved tensors go through the node's SavedTensors, so custom functions get the
// same in-place version checks as built-in ops.
#include "ember/autograd/function.h"

#include <cxxabi.h>

#include <cstdlib>
#include <memory>

namespace ember::autograd {

std::string function_name(const std::type_info& type) {
  int status = 0;
  std::unique_ptr<char, void (*)(void*)> name(abi::__cxa_demangle(type.name(), nullptr, nullptr, &status),
                                              std::free);
  return std::string("autograd::Function ") + (status == 0 && name ? name.get() : type.name());
}

variable_list AutogradContext::get_saved_variables() const {
  EMBER_CHECK(node_ != nullptr, "AutogradContext: saved variables are only available in backward");
  variable_list out;
  for (size_t i = 0; i < to_save_.size(); ++i) out.push_back(node_->saved(i));
  return out;
}

}  // namespace ember::autograd
