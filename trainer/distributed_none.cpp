// The distributed entry points of an ember built without MPI (EMBER_WITH_MPI=OFF): one process only.
// A program started with several ranks gets a clear error instead of N copies training alone.
#include "ember/core/error.h"
#include "ember/trainer/distributed.h"

namespace ember::distributed {

bool available() { return false; }

std::shared_ptr<ProcessGroup> world() {
  if (launched_with_several_ranks())
    fail(
        "distributed: this process is one of several ranks, but ember was built without MPI "
        "(EMBER_WITH_MPI=OFF); install Open MPI (libopenmpi-dev) and rebuild ember for data-parallel "
        "training");
  return nullptr;
}

std::shared_ptr<ProcessGroup> with_device_collectives(std::shared_ptr<ProcessGroup> host) { return host; }

}  // namespace ember::distributed
