// ember: include this one header for everything (tensor, ops, autograd, nn, optim, trainer). Finer headers
// live under <ember/core/...>, <ember/nn/...>, <ember/trainer/...> and so on.
#pragma once
#include "ember/autograd/engine.h"
#include "ember/autograd/function.h"
#include "ember/autograd/grad_mode.h"
#include "ember/autograd/gradcheck.h"
#include "ember/autograd/node.h"
#include "ember/core/autocast.h"
#include "ember/core/device.h"
#include "ember/core/dtype.h"
#include "ember/core/error.h"
#include "ember/core/generator.h"
#include "ember/core/ops.h"
#include "ember/core/tensor.h"
#include "ember/nn/nn.h"
#include "ember/onnx.h"
#include "ember/optim/optim.h"
#include "ember/trainer/trainer_all.h"
