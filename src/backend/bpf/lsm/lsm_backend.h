// bpf-lsm: BPF LSM hooks capture each operation, the syscall's exit submits it.
#pragma once

#include <memory>

#include "backend/backend.h"

namespace fstrail {

Availability probe_bpf_lsm();
std::unique_ptr<Backend> create_bpf_lsm_backend();

}  // namespace fstrail
