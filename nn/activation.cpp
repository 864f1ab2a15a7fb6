// Printing helpers and checks for the activation and dropout layers.
#include "ember/nn/activation.h"

#include <sstream>

namespace ember::nn {

static std::string number(double v) {
  std::ostringstream os;
  os << v;
  return os.str();
}

std::string LeakyReLU::extra_repr() const { return "negative_slope=" + number(negative_slope); }

Dropout::Dropout(double p_) : Module("Dropout"), p(p_) {
  EMBER_CHECK(p >= 0 && p <= 1, "Dropout: probability has to be between 0 and 1, but got ", p);
}

std::string Dropout::extra_repr() const { return "p=" + number(p) + ", inplace=False"; }

}  // namespace ember::nn
