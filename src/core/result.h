// Result<T>: a value or an Error that carries its cause (errno, what, and what the user can do).
#pragma once

#include <cerrno>
#include <string>
#include <utility>
#include <variant>

namespace fstrail {

struct Error {
  std::string message;  // one line: the problem and, where there is one, the fix
  int err = 0;          // errno behind it, 0 when none

  static Error from_errno(std::string what, int e = errno);
};

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT(google-explicit-constructor)
  Result(Error error) : v_(std::move(error)) {}  // NOLINT(google-explicit-constructor)

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() { return std::get<0>(v_); }
  const T& value() const { return std::get<0>(v_); }
  T& operator*() { return value(); }
  T* operator->() { return &value(); }
  const Error& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

struct Ok {};
using Status = Result<Ok>;

}  // namespace fstrail
