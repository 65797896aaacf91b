// bpf-fentry: fentry on security_path_* captures each operation, fexit on the VFS
// function that performs it submits it. For kernels with BTF but no BPF LSM.
#pragma once

#include <memory>

#include "backend/backend.h"

namespace fstrail {

Availability probe_bpf_fentry();
std::unique_ptr<Backend> create_bpf_fentry_backend();

}  // namespace fstrail
