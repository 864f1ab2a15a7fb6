// Index kernels: index_select, index_add, gather, scatter (plain and accumulating), cumsum, nonzero
// and sort. One thread per output element where outputs are independent; accumulations into a
// shared destination use atomicAdd (sums then come in another order than the reference's, inside
// its rounding). nonzero and sort are simple first versions: one thread scans the mask; one thread
// per row insertion-sorts its indices (stable), fine for the row lengths ember sorts today.
#include "ember/kernels/cuda/cuda_kernels.h"
#include "ember/kernels/cuda/grid.h"
#include "ember/kernels/cuda/portability.h"
#include "ember/kernels/elementwise_ops.h"

namespace ember::kernels::cuda {
namespace {

constexpr int kThreads = 256;

template <class T>
__global__ void index_select_kernel(const T* x, int64_t n, const int64_t* idx, int64_t k, T* y, int64_t outer,
                                    int64_t inner) {
  EMBER_GRID_STRIDE(p, outer * k * inner) {
    const int64_t i = p % inner, j = p / inner % k, o = p / (inner * k);
    y[p] = x[(o * n + idx[j]) * inner + i];
  }
}

template <class T>
__global__ void index_add_kernel(T* y, int64_t n, const int64_t* idx, int64_t k, const T* s, int64_t outer,
                                 int64_t inner, T alpha) {
  EMBER_GRID_STRIDE(p, outer * k * inner) {
    const int64_t i = p % inner, j = p / inner % k, o = p / (inner * k);
    atomicAdd(&y[(o * n + idx[j]) * inner + i], static_cast<T>(alpha * s[p]));
  }
}

template <class T>
__global__ void gather_kernel(const T* x, int64_t n, const int64_t* idx, T* y, int64_t outer, int64_t k,
                              int64_t inner) {
  EMBER_GRID_STRIDE(p, outer * k * inner) {
    const int64_t i = p % inner, o = p / (inner * k);
    y[p] = x[(o * n + idx[p]) * inner + i];
  }
}

template <class T, bool kAccumulate>
__global__ void scatter_kernel(T* y, int64_t n, const int64_t* idx, const T* s, int64_t outer, int64_t k,
                               int64_t inner) {
  EMBER_GRID_STRIDE(p, outer * k * inner) {
    const int64_t i = p % inner, o = p / (inner * k);
    T* dst = &y[(o * n + idx[p]) * inner + i];
    if constexpr (kAccumulate) atomicAdd(dst, s[p]);
    else *dst = s[p];
  }
}

template <class T>
__global__ void cumsum_kernel(const T* x, T* y, int64_t outer, int64_t r, int64_t inner) {
  EMBER_GRID_STRIDE(p, outer * inner) {
    const int64_t i = p % inner, o = p / inner;
    acc_t<T> acc = 0;
    for (int64_t j = 0; j < r; ++j) {
      acc += x[(o * r + j) * inner + i];
      y[(o * r + j) * inner + i] = static_cast<T>(acc);
    }
  }
}

__global__ void nonzero_kernel(const bool* mask, int64_t n, int64_t* out, int64_t* count) {
  if (blockIdx.x != 0 || threadIdx.x != 0) return;
  int64_t c = 0;
  for (int64_t i = 0; i < n; ++i)
    if (mask[i]) {
      if (out) out[c] = i;
      ++c;
    }
  *count = c;
}

template <class T>
__global__ void sort_rows_kernel(const T* in, int64_t* out_idx, int64_t rows, int64_t cols, bool descending) {
  EMBER_GRID_STRIDE(row, rows) {
    const T* x = in + row * cols;
    int64_t* idx = out_idx + row * cols;
    for (int64_t j = 0; j < cols; ++j) {
      int64_t q = j;
      while (q > 0) {
        const int64_t a = idx[q - 1];
        const bool after = descending ? less_nan_last(x[a], x[j]) : less_nan_last(x[j], x[a]);
        if (!after) break;
        idx[q] = a;
        --q;
      }
      idx[q] = j;
    }
  }
}

// Atomic adds exist for the floating types and 32/64-bit integers; index_add and accumulating
// scatter take those.
template <class F>
void dispatch_atomic(DType dt, const char* op, F&& f) {
  switch (dt) {
    case kFloat32: f.template operator()<float>(); return;
    case kFloat64: f.template operator()<double>(); return;
    case kInt32: f.template operator()<int32_t>(); return;
    default: unsupported(op, dt);
  }
}

}  // namespace

void index_select(DType dt, const void* in, int64_t n, const int64_t* idx, int64_t k, void* out,
                  int64_t outer, int64_t inner) {
  if (outer * k * inner == 0) return;
  dispatch_by_size(dt, [&]<class T>() {
    EMBER_LAUNCH((index_select_kernel<T>), grid_for(outer * k * inner), kThreads, 0, gpu::stream(),
                 static_cast<const T*>(in), n, idx, k, static_cast<T*>(out), outer, inner);
  });
}

void index_add(DType dt, void* out, int64_t n, const int64_t* idx, int64_t k, const void* src, int64_t outer,
               int64_t inner, double alpha) {
  if (outer * k * inner == 0) return;
  dispatch_atomic(dt, "cuda index_add", [&]<class T>() {
    EMBER_LAUNCH((index_add_kernel<T>), grid_for(outer * k * inner), kThreads, 0, gpu::stream(),
                 static_cast<T*>(out), n, idx, k, static_cast<const T*>(src), outer, inner,
                 static_cast<T>(alpha));
  });
}

void gather(DType dt, const void* in, int64_t n, const int64_t* idx, void* out, int64_t outer, int64_t k,
            int64_t inner) {
  if (outer * k * inner == 0) return;
  dispatch_by_size(dt, [&]<class T>() {
    EMBER_LAUNCH((gather_kernel<T>), grid_for(outer * k * inner), kThreads, 0, gpu::stream(),
                 static_cast<const T*>(in), n, idx, static_cast<T*>(out), outer, k, inner);
  });
}

void scatter(DType dt, void* out, int64_t n, const int64_t* idx, const void* src, int64_t outer, int64_t k,
             int64_t inner, bool accumulate) {
  if (outer * k * inner == 0) return;
  const int64_t total = outer * k * inner;
  if (accumulate) {
    dispatch_atomic(dt, "cuda scatter_add", [&]<class T>() {
      EMBER_LAUNCH((scatter_kernel<T, true>), grid_for(total), kThreads, 0, gpu::stream(),
                   static_cast<T*>(out), n, idx, static_cast<const T*>(src), outer, k, inner);
    });
  } else {
    dispatch_by_size(dt, [&]<class T>() {  // a plain scatter only moves elements
      EMBER_LAUNCH((scatter_kernel<T, false>), grid_for(total), kThreads, 0, gpu::stream(),
                   static_cast<T*>(out), n, idx, static_cast<const T*>(src), outer, k, inner);
    });
  }
}

void cumsum(DType dt, const void* in, void* out, int64_t outer, int64_t r, int64_t inner) {
  if (outer * r * inner == 0) return;
  dispatch_numeric(dt, "cuda cumsum", [&]<class T>() {
    EMBER_LAUNCH((cumsum_kernel<T>), grid_for(outer * inner), kThreads, 0, gpu::stream(),
                 static_cast<const T*>(in), static_cast<T*>(out), outer, r, inner);
  });
}

int64_t nonzero(const void* mask, int64_t n, int64_t* out) {
  auto* count = static_cast<int64_t*>(gpu::malloc(sizeof(int64_t)));
  EMBER_LAUNCH(nonzero_kernel, dim3(1), dim3(1), 0, gpu::stream(), static_cast<const bool*>(mask), n, out,
               count);
  int64_t host = 0;
  gpu::copy_to_host(&host, count, sizeof(int64_t));
  gpu::free(count);
  return host;
}

void sort(DType dt, const void* in, int64_t* out_idx, int64_t rows, int64_t cols, bool descending) {
  if (rows * cols == 0) return;
  dispatch_numeric(dt, "cuda sort", [&]<class T>() {
    EMBER_LAUNCH((sort_rows_kernel<T>), grid_for(rows), kThreads, 0, gpu::stream(), static_cast<const T*>(in),
                 out_idx, rows, cols, descending);
  });
}

}  // namespace ember::kernels::cuda
