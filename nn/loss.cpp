// The Loss base: validates the reduction once, at construction.
#include "ember/nn/loss.h"

namespace ember::nn {

Loss::Loss(const char* type_name, std::string reduction_)
    : Module(type_name), reduction(std::move(reduction_)) {
  EMBER_CHECK(reduction == "mean" || reduction == "sum" || reduction == "none" ||
                  (reduction == "batchmean" && std::string(type_name) == "KLDivLoss"),
              type_name, ": reduction must be \"mean\", \"sum\" or \"none\", got \"", reduction, "\"");
}

}  // namespace ember::nn
