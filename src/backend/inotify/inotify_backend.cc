#include "backend/inotify/inotify_backend.h"

namespace fstrail {

Availability probe_inotify() { return {false, "not implemented yet"}; }
std::unique_ptr<Backend> create_inotify_backend() { return nullptr; }

}  // namespace fstrail
