// AutogradContext's saved tensors go through the node's SavedTensors, so custom functions get the
// same in-place version checks as built-in ops.
#include "ember/autograd/function.h"

namespace ember::autograd {

variable_list AutogradContext::get_saved_variables() const {
  EMBER_CHECK(node_ != nullptr, "AutogradContext: saved variables are only available in backward");
  variable_list out;
  for (size_t i = 0; i < to_save_.size(); ++i) out.push_back(node_->saved(i));
  return out;
}

}  // namespace ember::autograd
