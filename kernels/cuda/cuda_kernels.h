// Host entry points of ember's CUDA kernels, one file per op family (elementwise.cu, reduce.cu,
// index.cu, training.cu, loss.cu, attention.cu).
// They take device pointers and plain sizes; the CUDA backend (cuda_backend.cpp) calls them. Under
// the simulator the same kernels run on the CPU.
#pragma once
#include <cstdint>

#include "ember/kernels/fused.h"

namespace ember::kernels::cuda {

inline constexpr int kMaxDims = 12;

// Sizes of an output and the element strides of up to three operands addressing it.
struct Strided {
  int ndim = 0;
  int64_t sizes[kMaxDims] = {};
  int64_t strides[3][kMaxDims] = {};
};
// Builds one from the backend's spans (an error past kMaxDims dims).
Strided make_strided(Dims sizes, Dims s0, Dims s1 = {}, Dims s2 = {});

void fill(DType dt, void* out, int64_t n, Scalar value);
void cast(DType from, const void* in, DType to, void* out, int64_t n);
void strided_copy(DType dt, const void* src, void* dst, const Strided& s);  // strides: src, dst
void unary(UnaryOp op, DType dt, const void* in, void* out, int64_t n, double a, double b);
void binary(BinaryOp op, DType dt, const void* a, const void* b, void* out, const Strided& s);  // a, b
void where(DType dt, const void* cond, const void* a, const void* b, void* out, const Strided& s);
void reduce(ReduceOp op, DType dt, const void* in, void* out, int64_t outer, int64_t r, int64_t inner);
void softmax(DType dt, const void* in, void* out, int64_t rows, int64_t cols, bool log);

// index.cu
void index_select(DType dt, const void* in, int64_t n, const int64_t* idx, int64_t k, void* out,
                  int64_t outer, int64_t inner);
void index_add(DType dt, void* out, int64_t n, const int64_t* idx, int64_t k, const void* src, int64_t outer,
               int64_t inner, double alpha);
void gather(DType dt, const void* in, int64_t n, const int64_t* idx, void* out, int64_t outer, int64_t k,
            int64_t inner);
void scatter(DType dt, void* out, int64_t n, const int64_t* idx, const void* src, int64_t outer, int64_t k,
             int64_t inner, bool accumulate);
void cumsum(DType dt, const void* in, void* out, int64_t outer, int64_t r, int64_t inner);
int64_t nonzero(const void* mask, int64_t n, int64_t* out);
void sort(DType dt, const void* in, int64_t* out_idx, int64_t rows, int64_t cols, bool descending);

// training.cu
void optimizer_update(DType dt, const UpdateSpec& spec, int64_t n, void* param, const void* grad, void* s0,
                      void* s1, void* s2);
// Many parameters under one spec in as few launches as possible (32 per launch).
void optimizer_update_multi(DType dt, const UpdateSpec& spec, std::span<const UpdateTensor> tensors);
void random_uniform(DType dt, void* out, int64_t n, uint64_t seed, uint64_t offset, double lo, double hi);
void random_normal(DType dt, void* out, int64_t n, uint64_t seed, uint64_t offset, double mean,
                   double stddev);
void layer_norm_forward(DType dt, const void* x, const void* w, const void* b, int64_t rows, int64_t cols,
                        double eps, void* y, void* mean, void* rstd);
void layer_norm_backward(DType dt, const void* x, const void* w, const void* mean, const void* rstd,
                         const void* dy, int64_t rows, int64_t cols, void* dx, void* dw, void* db);
void im2col(DType dt, const void* in, void* out, const WindowGeometry& g, int64_t batch);
void col2im(DType dt, const void* cols, void* out, const WindowGeometry& g, int64_t batch);

// norm_pool.cu
void batch_norm_forward(DType dt, const void* x, const void* w, const void* b, int64_t n, int64_t c,
                        int64_t s, double eps, void* y, void* mean, void* var, void* rstd);
void batch_norm_backward(DType dt, const void* x, const void* w, const void* mean, const void* rstd,
                         const void* dy, int64_t n, int64_t c, int64_t s, void* dx, void* dw, void* db);
void max_pool2d_forward(DType dt, const void* in, const WindowGeometry& g, int64_t planes, void* out,
                        int64_t* index);
void max_pool2d_backward(DType dt, const void* grad_out, const int64_t* index, const WindowGeometry& g,
                         int64_t planes, void* grad_in);

// loss.cu
void cross_entropy_forward(DType dt, const void* logits, const int64_t* target, const void* row_weight,
                           int64_t rows, int64_t classes, void* loss, void* lse);
void cross_entropy_backward(DType dt, const void* logits, const int64_t* target, const void* row_weight,
                            const void* lse, const void* grad_loss, int64_t rows, int64_t classes,
                            void* grad_logits);

// attention.cu
void attention_forward(DType dt, const AttentionShape& a, const void* q, const void* k, const void* v,
                       const void* mask, Dims mask_strides, void* out, void* lse);
void attention_backward(DType dt, const AttentionShape& a, const void* q, const void* k, const void* v,
                        const void* mask, Dims mask_strides, const void* out, const void* grad_out,
                        const void* lse, void* gq, void* gk, void* gv);

}  // namespace ember::kernels::cuda
