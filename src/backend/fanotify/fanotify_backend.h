// The fanotify backend.
#pragma once

#include <memory>

#include "backend/backend.h"

namespace fstrail {

Availability probe_fanotify();
std::unique_ptr<Backend> create_fanotify_backend();

}  // namespace fstrail
