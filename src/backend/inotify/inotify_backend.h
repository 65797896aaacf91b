// The inotify backend.
#pragma once

#include <memory>

#include "backend/backend.h"

namespace fstrail {

Availability probe_inotify();
std::unique_ptr<Backend> create_inotify_backend();

}  // namespace fstrail
