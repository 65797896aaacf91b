#include "core/result.h"

#include <cstring>

namespace fstrail {

Error Error::from_errno(std::string what, int e) {
  return Error{what + ": " + std::strerror(e), e};
}

}  // namespace fstrail
