// Custom differentiable functions, LibTorch-style:
//
//   struct Cube : ember::autograd::Function<Cube> {
//     static Tensor forward(AutogradContext* ctx, Tensor x) {
//       ctx->save_for_backward({x});
//       return x * x * x;
//     }
//     static variable_list backward(AutogradContext* ctx, variable_list g) {
//       Tensor x = ctx->get_saved_variables()[0];
//       return {g[0] * 3 * x * x};
//     }
//   };
//   Tensor y = Cube::apply(x);
//
// forward runs with grad mode off; backward gets one gradient per output and returns one per Tensor
// argument of forward (undefined for arguments that need none). Non-tensor arguments are allowed.
#pragma once
#include <any>
#include <string>
#include <tuple>
#include <type_traits>
#include <typeinfo>
#include <unordered_map>

#include "ember/autograd/grad_mode.h"
#include "ember/autograd/node.h"
#include "ember/core/trace.h"

namespace ember::autograd {

class AutogradContext {
 public:
  void save_for_backward(variable_list tensors) { to_save_ = std::move(tensors); }
  variable_list get_saved_variables() const;
  // Free-form values for backward (shapes, flags, ...).
  std::unordered_map<std::string, std::any> saved_data;
  bool needs_input_grad(size_t i) const { return node_ && node_->needs_input_grad(i); }

 private:
  template <class T>
  friend struct Function;
  variable_list to_save_;
  FunctionNode* node_ = nullptr;
};

namespace detail {
template <class T>
void collect(variable_list& out, const T& v) {
  if constexpr (std::is_same_v<std::decay_t<T>, Tensor>) out.push_back(v);
}
inline variable_list as_list(const Tensor& t) { return {t}; }
inline variable_list as_list(const variable_list& v) { return v; }
}  // namespace detail

// "autograd::Function <class name>", demangled: how errors and tracers name a custom function.
std::string function_name(const std::type_info& type);

template <class Derived>
struct Function {
  template <class... Args>
  static auto apply(Args&&... args) {
    variable_list inputs;
    (detail::collect(inputs, args), ...);
    auto ctx = std::make_shared<AutogradContext>();
    // A tracer sees the function as one op (its forward is opaque C++), under its class name.
    trace::OpScope scope;
    using Result = decltype(Derived::forward(ctx.get(), std::forward<Args>(args)...));
    Result result = [&] {
      AutoGradMode off(false);
      return Derived::forward(ctx.get(), std::forward<Args>(args)...);
    }();
    variable_list outputs = detail::as_list(result);
    // Outputs that alias inputs must be distinct tensors to carry their own grad_fn.
    for (auto& o : outputs)
      for (const auto& in : inputs)
        if (o.defined() && o.is_same(in)) o = o.detach();
    auto node = record(typeid(Derived).name(), inputs, outputs, ctx->to_save_,
                       [ctx](FunctionNode& n, const variable_list& g) -> variable_list {
                         ctx->node_ = &n;
                         return Derived::backward(ctx.get(), g);
                       });
    if (node) ctx->node_ = node.get();
    if (scope.recording()) scope.record(function_name(typeid(Derived)).c_str(), inputs, outputs);
    if constexpr (std::is_same_v<Result, Tensor>) return outputs[0];
    else return outputs;
  }
};

}  // namespace ember::autograd
