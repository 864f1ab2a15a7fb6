// All of optim: Optimizer, SGD/Adam/AdamW/RMSprop/Adagrad, LR schedulers, gradient clipping, GradScaler.
#pragma once
#include "ember/optim/clip_grad.h"
#include "ember/optim/grad_scaler.h"
#include "ember/optim/lr_scheduler.h"
#include "ember/optim/optimizer.h"
#include "ember/optim/optimizers.h"
