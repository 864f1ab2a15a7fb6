// GradientReducer: see gradient_reducer.h.
#include "ember/trainer/gradient_reducer.h"

#include "ember/autograd/grad_mode.h"
#include "ember/core/error.h"
#include "ember/core/ops.h"

namespace ember::trainer {

std::shared_ptr<GradientReducer> GradientReducer::create(std::shared_ptr<distributed::ProcessGroup> group,
                                                         const std::vector<Tensor>& all_params,
                                                         int64_t bucket_bytes) {
  std::vector<Tensor> params;
  for (auto& p : all_params)
    if (p.requires_grad()) {
      EMBER_CHECK(p.dtype() == kFloat32 || p.dtype() == kFloat64, "DDP: parameter of dtype ",
                  dtype_name(p.dtype()), " cannot be all-reduced (float32 and float64 only)");
      params.push_back(p);
    }
  auto r = std::shared_ptr<GradientReducer>(new GradientReducer(std::move(group), params));
  // Reverse order: the last layers' gradients are ready first. A bucket holds one dtype.
  Bucket current;
  int64_t bytes = 0;
  DType dtype = params.empty() ? kFloat32 : params.back().dtype();
  auto close = [&] {
    if (current.params.empty()) return;
    int64_t n = 0;
    for (size_t i : current.params) {
      current.offsets.push_back(n);
      n += r->params_[i].numel();
    }
    // On the parameters' device when the group can reduce there (NCCL), else on the CPU (MPI).
    const Device device = r->params_[current.params.front()].device();
    const Device at = r->group_->accepts(device) ? device : Device::cpu();
    current.buffer =
        zeros({n + static_cast<int64_t>(current.params.size())}, TensorOptions(dtype).set_device(at));
    r->buckets_.push_back(std::move(current));
    current = Bucket{};
    bytes = 0;
  };
  r->where_.resize(params.size());
  for (size_t k = params.size(); k-- > 0;) {
    if (params[k].dtype() != dtype || bytes >= bucket_bytes) close();
    dtype = params[k].dtype();
    r->where_[k] = {r->buckets_.size(), current.params.size()};
    current.params.push_back(k);
    bytes += params[k].numel() * static_cast<int64_t>(params[k].element_size());
  }
  close();
  r->written_.assign(params.size(), false);
  std::weak_ptr<GradientReducer> weak = r;
  for (size_t i = 0; i < params.size(); ++i) {
    Tensor p = params[i];
    p.register_hook([weak, i](const Tensor& g) {
      if (auto self = weak.lock(); self && self->armed_ && self->active_) self->on_grad(i, g);
      return Tensor();  // keep the gradient as it is
    });
  }
  return r;
}

GradientReducer::GradientReducer(std::shared_ptr<distributed::ProcessGroup> group, std::vector<Tensor> params)
    : group_(std::move(group)), params_(std::move(params)) {}

void GradientReducer::write(size_t index, const Tensor& grad) {
  auto [b, slot] = where_[index];
  Bucket& bucket = buckets_[b];
  const int64_t n = params_[index].numel();
  const int64_t flag_at =
      bucket.buffer.numel() - static_cast<int64_t>(bucket.params.size()) + static_cast<int64_t>(slot);
  autograd::NoGradGuard no_grad;
  if (grad.defined()) {
    bucket.buffer.slice(0, bucket.offsets[slot], bucket.offsets[slot] + n).copy_(grad.reshape({-1}));
    bucket.buffer.slice(0, flag_at, flag_at + 1).fill_(1.0);
  } else {
    bucket.buffer.slice(0, bucket.offsets[slot], bucket.offsets[slot] + n).zero_();
    bucket.buffer.slice(0, flag_at, flag_at + 1).zero_();
  }
  written_[index] = true;
  ++bucket.ready;
}

void GradientReducer::on_grad(size_t index, const Tensor& incoming) {
  // The hook runs before accumulation: the window's gradient is what is already there plus this.
  const Tensor existing = params_[index].grad();
  write(index, existing.defined() ? existing + incoming : incoming);
  launch_ready();
}

void GradientReducer::launch_ready() {
  while (next_launch_ < buckets_.size() &&
         buckets_[next_launch_].ready == buckets_[next_launch_].params.size()) {
    Bucket& b = buckets_[next_launch_++];
    b.handle = group_->all_reduce_async(b.buffer);
  }
}

void GradientReducer::finish() {
  if (!armed_) return;
  armed_ = false;
  // Parameters backward did not reach this time: whatever gradient they hold (from earlier
  // micro-batches of the window) or none.
  for (size_t i = 0; i < params_.size(); ++i)
    if (!written_[i]) write(i, params_[i].grad());
  launch_ready();
  autograd::NoGradGuard no_grad;
  const double world = static_cast<double>(group_->size());
  for (Bucket& b : buckets_) {
    group_->wait(b.handle);
    const int64_t flags_at = b.buffer.numel() - static_cast<int64_t>(b.params.size());
    Tensor flags = b.buffer.slice(0, flags_at);
    for (size_t slot = 0; slot < b.params.size(); ++slot) {
      Tensor& p = params_[b.params[slot]];
      if (flags[slot].item<double>() == 0) {
        p.set_grad(Tensor());
        continue;
      }
      Tensor avg = b.buffer.slice(0, b.offsets[slot], b.offsets[slot] + p.numel()).reshape(p.sizes()) / world;
      p.set_grad(avg.contiguous());
    }
    b.ready = 0;
    b.handle = -1;
    b.buffer.zero_();
  }
  written_.assign(params_.size(), false);
  next_launch_ = 0;
}

}  // namespace ember::trainer
