// with_device_collectives for builds without a GPU (see distributed.h): the simulated device's memory
// is host memory, so its tensors travel through the MPI group like CPU tensors.
#include "ember/trainer/distributed.h"

namespace ember::distributed {

std::shared_ptr<ProcessGroup> with_device_collectives(std::shared_ptr<ProcessGroup> host) { return host; }

}  // namespace ember::distributed
