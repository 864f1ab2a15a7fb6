// ember's ONNX export, as one include: <ember/onnx.h>. See onnx/export.h.
#pragma once
#include "ember/onnx/export.h"
