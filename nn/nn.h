// All of nn: Module, containers, layers, losses, init, functional, safetensors.
#pragma once
#include "ember/nn/activation.h"
#include "ember/nn/containers.h"
#include "ember/nn/conv.h"
#include "ember/nn/embedding.h"
#include "ember/nn/functional.h"
#include "ember/nn/init.h"
#include "ember/nn/linear.h"
#include "ember/nn/loss.h"
#include "ember/nn/module.h"
#include "ember/nn/normalization.h"
#include "ember/nn/pooling.h"
#include "ember/nn/serialize.h"
