// Errors as values for the cyclecast libraries: every fallible call returns Result<T>.
// Libraries never log, print or throw across their API; the processes decide what to report.
#pragma once

#include <cassert>
#include <string>
#include <utility>
#include <variant>

namespace cyclecast {

// What went wrong, coarse enough for a caller to branch on.
enum class ErrorCode {
  kInvalidArgument,  // the caller passed something malformed
  kParse,            // outside bytes did not parse (file, line and column are in the message)
  kNotFound,         // a named thing does not exist
  kConflict,         // the request contradicts what is stored
  kIo,               // the file system or database failed
  kFull,             // no room to store: the disk is full or a configured size limit is reached
  kCorrupt,          // stored data failed a consistency check
  kUnsupported,      // a format or schema version this build does not know
  kCancelled,        // the caller asked a long operation to stop (e.g. SIGINT during training)
};

struct Error {
  ErrorCode code;
  std::string message;  // complete sentence for a person: what, where, and what was expected
};

// Holds a T or an Error. [[nodiscard]] so an ignored failure is a compile error under -Werror.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}      // NOLINT(google-explicit-constructor)
  Result(Error error) : v_(std::move(error)) {}  // NOLINT(google-explicit-constructor)

  bool ok() const { return std::holds_alternative<T>(v_); }
  explicit operator bool() const { return ok(); }

  T& value() & {
    assert(ok());
    return std::get<T>(v_);
  }
  const T& value() const& {
    assert(ok());
    return std::get<T>(v_);
  }
  T&& value() && {
    assert(ok());
    return std::get<T>(std::move(v_));
  }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  const Error& error() const {
    assert(!ok());
    return std::get<Error>(v_);
  }

 private:
  std::variant<T, Error> v_;
};

// Result of an operation that yields nothing but may fail.
template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : error_(std::move(error)), failed_(true) {}  // NOLINT

  bool ok() const { return !failed_; }
  explicit operator bool() const { return ok(); }
  const Error& error() const {
    assert(failed_);
    return error_;
  }

 private:
  Error error_{};
  bool failed_ = false;
};

inline Error make_error(ErrorCode code, std::string message) {
  return Error{code, std::move(message)};
}

}  // namespace cyclecast
