// Matrix products. All of them end in one backend primitive, batched GEMM. Operands are passed
// as they lie in memory when they are row-major or transposed (a `.t()` view costs nothing), and
// copied only otherwise. matmul reduces PyTorch's 1-D/2-D/batched cases to mm or bmm.
#include "ember/core/autocast.h"
#include "ember/core/ops/internal.h"
#include "ember/core/trace.h"

namespace ember {
using namespace detail;

namespace {

// How the GEMM reads one [batch?, rows, cols] operand: transposed or not, row stride, batch stride.
struct MatrixOperand {
  Tensor t;
  bool trans = false;
  int64_t ld = 0;
  int64_t batch_stride = 0;
};

// `transposed`: the operand is x's transpose (a 2-D x), described without making the `.t()` view.
MatrixOperand operand(const Tensor& x, bool transposed = false) {
  autograd::NoGradGuard guard;
  const int64_t nd = x.dim();
  int64_t rows = x.size(nd - 2), cols = x.size(nd - 1);
  int64_t rs = x.stride(nd - 2), cs = x.stride(nd - 1);
  if (transposed) {
    std::swap(rows, cols);
    std::swap(rs, cs);
  }
  MatrixOperand op;
  op.t = x;
  if (cs == 1 && (rs >= std::max<int64_t>(cols, 1) || rows == 1)) {
    op.ld = std::max<int64_t>({rs, cols, 1});
  } else if (rs == 1 && (cs >= std::max<int64_t>(rows, 1) || cols == 1)) {
    op.trans = true;
    op.ld = std::max<int64_t>({cs, rows, 1});
  } else {
    op.t = x.contiguous();
    op.trans = transposed;  // the compact copy is x's layout, so its transpose is read transposed
    op.ld = std::max<int64_t>(transposed ? rows : cols, 1);
  }
  op.batch_stride = nd == 3 ? op.t.stride(0) : 0;
  return op;
}

DType check_matmul_dtypes(const Tensor& a, const Tensor& b, const char* name) {
  check_same_device(a, b, name);
  EMBER_CHECK(a.dtype() == b.dtype(), name, ": expected both operands to have the same dtype, got ",
              dtype_name(a.dtype()), " ", a.sizes(), " and ", dtype_name(b.dtype()), " ", b.sizes());
  EMBER_CHECK(is_floating(a.dtype()), name, ": only floating dtypes are supported, got ",
              dtype_name(a.dtype()), "; convert with .to(kFloat32)");
  return a.dtype();
}

// The dtype a GEMM of `t`'s dtype runs in: 16-bit operands go to a backend that has a 16-bit GEMM
// (cuBLAS, accumulating in float32) as they are, and through float32 elsewhere.
DType gemm_dtype(const Tensor& t) {
  const DType dt = t.dtype();
  return is_half(dt) && backend_of(t).supports(kernels::Op::Gemm, dt) ? dt : compute_dtype(dt);
}

// out = beta*out + A @ B for one [m, k] x [k, n] product or a batch of them; out is compact.
void gemm_matrices(const MatrixOperand& A, const MatrixOperand& B, int64_t m, int64_t n, int64_t k,
                   Tensor& out, double beta, int64_t batch = 1) {
  kernels::GemmArgs g;
  g.dtype = out.dtype();
  g.trans_a = A.trans, g.trans_b = B.trans;
  g.m = m, g.n = n, g.k = k, g.beta = beta;
  g.lda = A.ld, g.ldb = B.ld, g.ldc = std::max<int64_t>(n, 1);
  g.batch = batch, g.stride_a = A.batch_stride, g.stride_b = B.batch_stride, g.stride_c = m * n;
  backend_of(out).gemm(g, A.t.data_ptr(), B.t.data_ptr(), out.data_ptr());
}

// out[b] = beta*out[b] + a[b] @ b[b], a is [B?, m, k], b is [B?, k, n]; out is compact [B?, m, n]
// in the dtype the GEMM runs in (gemm_dtype).
void gemm_into(const Tensor& a, const Tensor& b, Tensor& out, int64_t batch, double beta) {
  const DType work = out.dtype();
  autograd::NoGradGuard guard;
  MatrixOperand A = operand(cast_if_needed(a, work)), B = operand(cast_if_needed(b, work));
  const int64_t nd = a.dim();
  const int64_t m = a.size(nd - 2), k = a.size(nd - 1), n = b.size(nd - 1);
  if (out.numel() == 0) return;
  gemm_matrices(A, B, m, n, k, out, beta, batch);
}

}  // namespace

Tensor mm(const Tensor& a, const Tensor& b) {
  if (autocast::should_lower(a, b)) return mm(autocast::lower(a), autocast::lower(b));
  EMBER_CHECK(a.dim() == 2 && b.dim() == 2, "mm: expected 2-D matrices, got shapes ", a.sizes(), " and ",
              b.sizes());
  EMBER_CHECK(a.size(1) == b.size(0), "mm: shapes ", a.sizes(), " and ", b.sizes(), " cannot be multiplied (",
              a.size(1), " != ", b.size(0), ")");
  const DType dt = check_matmul_dtypes(a, b, "mm");
  Tensor out = make_empty({a.size(0), b.size(1)}, gemm_dtype(a), a.device());
  gemm_into(a, b, out, 1, 0.0);
  if (out.dtype() != dt) {
    autograd::NoGradGuard g;
    out = out.to(dt);
  }
  autograd::record("mm", {a, b}, {out}, {a, b}, [](FunctionNode& n, const variable_list& g) -> variable_list {
    Tensor ga, gb;
    if (n.needs_input_grad(0)) ga = mm(g[0], n.saved(1).t());
    if (n.needs_input_grad(1)) gb = mm(n.saved(0).t(), g[0]);
    return {ga, gb};
  });
  return out;
}

Tensor bmm(const Tensor& a, const Tensor& b) {
  if (autocast::should_lower(a, b)) return bmm(autocast::lower(a), autocast::lower(b));
  EMBER_CHECK(a.dim() == 3 && b.dim() == 3, "bmm: expected 3-D tensors, got shapes ", a.sizes(), " and ",
              b.sizes());
  EMBER_CHECK(a.size(0) == b.size(0) && a.size(2) == b.size(1), "bmm: shapes ", a.sizes(), " and ", b.sizes(),
              " cannot be multiplied (batch ", a.size(0), " vs ", b.size(0), ", inner ", a.size(2), " vs ",
              b.size(1), ")");
  const DType dt = check_matmul_dtypes(a, b, "bmm");
  Tensor out = make_empty({a.size(0), a.size(1), b.size(2)}, gemm_dtype(a), a.device());
  gemm_into(a, b, out, a.size(0), 0.0);
  if (out.dtype() != dt) {
    autograd::NoGradGuard g;
    out = out.to(dt);
  }
  autograd::record("bmm", {a, b}, {out}, {a, b},
                   [](FunctionNode& n, const variable_list& g) -> variable_list {
                     Tensor ga, gb;
                     if (n.needs_input_grad(0)) ga = bmm(g[0], n.saved(1).transpose(1, 2));
                     if (n.needs_input_grad(1)) gb = bmm(n.saved(0).transpose(1, 2), g[0]);
                     return {ga, gb};
                   });
  return out;
}

Tensor matmul(const Tensor& a, const Tensor& b) {
  if (trace::recording())  // one op for a tracer, whatever the ranks
    return trace::traced("matmul", {a, b}, {}, [&] { return matmul(a, b); });
  EMBER_CHECK(a.dim() >= 1 && b.dim() >= 1, "matmul: both arguments need at least 1 dim, got shapes ",
              a.sizes(), " and ", b.sizes());
  const int64_t ka = a.size(-1), kb = b.dim() == 1 ? b.size(0) : b.size(-2);
  EMBER_CHECK(ka == kb, "matmul: shapes ", a.sizes(), " and ", b.sizes(), " cannot be multiplied (", ka,
              " != ", kb, ")");
  if (a.dim() == 1 && b.dim() == 1) return mm(a.unsqueeze(0), b.unsqueeze(1)).reshape({});
  if (a.dim() == 2 && b.dim() == 1) return mm(a, b.unsqueeze(1)).squeeze(1);
  if (a.dim() == 1 && b.dim() == 2) return mm(a.unsqueeze(0), b).squeeze(0);
  if (a.dim() == 2 && b.dim() == 2) return mm(a, b);
  if (b.dim() <= 2 && a.dim() >= 3) {
    // [..., n, k] @ [k, p]: fold the batch into rows, one big GEMM.
    Tensor b2 = b.dim() == 1 ? b.unsqueeze(1) : b;
    Shape lead(a.sizes().begin(), a.sizes().end() - 1);
    Tensor out = mm(a.reshape({-1, ka}), b2);
    Shape shape = lead;
    if (b.dim() == 2) shape.push_back(b.size(1));
    return out.reshape(shape);
  }
  // General batched case: broadcast the batch dims, then bmm.
  Tensor a3 = a.dim() == 1 ? a.unsqueeze(0) : a;
  Tensor b3 = b.dim() == 1 ? b.unsqueeze(1) : b;
  Shape ba(a3.sizes().begin(), a3.sizes().end() - 2), bb(b3.sizes().begin(), b3.sizes().end() - 2);
  Shape batch = broadcast_shapes(ba, bb, "matmul");
  const int64_t n = a3.size(-2), p = b3.size(-1);
  Shape ea = batch, eb = batch;
  ea.insert(ea.end(), {n, ka});
  eb.insert(eb.end(), {ka, p});
  const int64_t B = numel_of(batch, "matmul");
  Tensor out = bmm(a3.expand(ea).reshape({B, n, ka}), b3.expand(eb).reshape({B, ka, p}));
  Shape shape = batch;
  if (a.dim() > 1) shape.push_back(n);
  if (b.dim() > 1) shape.push_back(p);
  return out.reshape(shape);
}

Tensor addmm(const Tensor& input, const Tensor& m1, const Tensor& m2, Scalar beta, Scalar alpha) {
  EMBER_CHECK(m1.dim() == 2 && m2.dim() == 2 && m1.size(1) == m2.size(0), "addmm: mat1 of shape ", m1.sizes(),
              " and mat2 of shape ", m2.sizes(), " cannot be multiplied");
  Shape product{m1.size(0), m2.size(1)};
  EMBER_CHECK(input.dim() <= 2 && broadcast_shapes(input.sizes(), product, "addmm") == product,
              "addmm: input of shape ", input.sizes(), " does not broadcast to the product's shape ",
              product);
  Tensor prod_ = mm(m1, m2);
  if (alpha.to_double() != 1.0) prod_ = prod_ * alpha;
  Tensor base = beta.to_double() == 1.0 ? input : input * beta;
  return base + prod_;
}

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  if (trace::recording())
    return trace::traced("linear", {x, weight, bias}, {}, [&] { return linear(x, weight, bias); });
  if (autocast::should_lower(x, weight, bias))
    return linear(autocast::lower(x), autocast::lower(weight), autocast::lower(bias));
  EMBER_CHECK(weight.dim() == 2, "linear: weight must be 2-D [out_features, in_features], got ",
              weight.sizes());
  EMBER_CHECK(x.dim() >= 1 && x.size(-1) == weight.size(1), "linear: input of shape ", x.sizes(),
              " does not match weight of shape ", weight.sizes(), " (", x.dim() ? x.size(-1) : 0,
              " != ", weight.size(1), ")");
  if (bias.defined())
    EMBER_CHECK(bias.dim() == 1 && bias.size(0) == weight.size(0), "linear: bias of shape ", bias.sizes(),
                " does not match weight of shape ", weight.sizes());
  const DType dt = check_matmul_dtypes(x, weight, "linear");
  const bool fused = bias.defined() && !is_half(dt) && bias.dtype() == dt;
  const int64_t k = x.size(-1), n = weight.size(0);
  // A compact [..., k] input under no graph (inference, generation) is read as one [rows, k] matrix
  // where it lies; otherwise the leading dims are folded by a reshape that autograd records.
  const bool direct =
      x.dim() == 2 || (fused && k > 0 && x.is_contiguous() && !autograd::should_record({x, weight, bias}));
  if (!direct) {
    Shape lead(x.sizes().begin(), x.sizes().end() - 1);
    lead.push_back(n);
    return linear(x.reshape({-1, k}), weight, bias).reshape(lead);
  }
  if (!fused) {
    Tensor out = mm(x, weight.t());
    return bias.defined() ? out + bias : out;
  }
  // Fused: copy the bias into every row of the output, then GEMM with beta = 1 accumulates on top.
  Shape out_shape = x.sizes();
  out_shape.back() = n;
  Tensor out = make_empty(out_shape, dt, x.device());
  const int64_t m = out.numel() / std::max<int64_t>(n, 1);
  if (m > 0 && n > 0) {
    autograd::NoGradGuard guard;
    const int64_t bias_strides[2] = {0, bias.stride(0)}, out_strides[2] = {n, 1}, sizes[2] = {m, n};
    backend_of(out).strided_copy(dt, bias.data_ptr(), bias_strides, out.data_ptr(), out_strides, sizes);
    gemm_matrices(x.dim() == 2 ? operand(x) : MatrixOperand{x, false, k, 0}, operand(weight, true), m, n, k,
                  out, 1.0);
  }
  autograd::record("linear", {x, weight, bias}, {out}, {x, weight},
                   [](FunctionNode& n, const variable_list& g) -> variable_list {
                     Tensor gx, gw, gb;
                     if (n.needs_input_grad(0)) gx = mm(g[0], n.saved(1));
                     if (n.needs_input_grad(1)) gw = mm(g[0].t(), n.saved(0));
                     if (n.needs_input_grad(2)) gb = sum(g[0], {0});
                     return {gx, gw, gb};
                   });
  return out;
}

}  // namespace ember
