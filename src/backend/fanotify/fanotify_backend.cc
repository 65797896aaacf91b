#include "backend/fanotify/fanotify_backend.h"

namespace fstrail {

Availability probe_fanotify() { return {false, "not implemented yet"}; }
std::unique_ptr<Backend> create_fanotify_backend() { return nullptr; }

}  // namespace fstrail
