// Status and Result<T>: vitrine's one error model (docs/architecture.md).
//
// Every failure that input can cause (a missing file, a bad CSV line, an
// unknown id, a corrupt bundle, NaN in a vector) is reported as a Status whose
// message names the file, line, column or id at fault and what was expected:
//
//   items.csv:17: expected 11 fields, found 9
//
// Exceptions are reserved for programmer errors and are caught at the CLI
// boundary. Status and Result are cheap to move, immutable once built, and safe
// to share between threads.
#pragma once

#include <cassert>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace vitrine {

class [[nodiscard]] Status {
 public:
  enum class Code {
    kOk = 0,
    kInvalidArgument,  // bad flag, bad value, unknown id
    kNotFound,         // a file or id that does not exist
    kCorruption,       // a file whose bytes do not match what was promised
    kIOError,          // the OS refused a read or write
    kUnsupported,      // a valid input this version cannot handle (dtype, version)
    kInternal,         // a broken invariant; a bug in vitrine
  };

  Status() = default;  // OK

  static Status OK() { return Status(); }
  static Status InvalidArgument(std::string msg) {
    return {Code::kInvalidArgument, std::move(msg)};
  }
  static Status NotFound(std::string msg) { return {Code::kNotFound, std::move(msg)}; }
  static Status Corruption(std::string msg) { return {Code::kCorruption, std::move(msg)}; }
  static Status IOError(std::string msg) { return {Code::kIOError, std::move(msg)}; }
  static Status Unsupported(std::string msg) { return {Code::kUnsupported, std::move(msg)}; }
  static Status Internal(std::string msg) { return {Code::kInternal, std::move(msg)}; }

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }

  // "Corruption: bundle/vectors.npy: checksum mismatch"; "OK" for success.
  std::string ToString() const;

  // Returns a copy whose message is "<prefix>: <message>"; OK stays OK.
  Status WithContext(std::string_view prefix) const;

 private:
  Status(Code code, std::string msg) : code_(code), message_(std::move(msg)) {}
  Code code_ = Code::kOk;
  std::string message_;
};

// Holds either a value or a non-OK Status. Accessing the value of a failed
// Result is a programmer error (asserts in debug builds).
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}        // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {  // NOLINT: implicit by design
    assert(!std::get<Status>(v_).ok() && "Result built from an OK Status");
  }

  bool ok() const { return std::holds_alternative<T>(v_); }
  Status status() const { return ok() ? Status::OK() : std::get<Status>(v_); }

  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }

  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace vitrine

#define VITRINE_CONCAT_INNER_(a, b) a##b
#define VITRINE_CONCAT_(a, b) VITRINE_CONCAT_INNER_(a, b)

// Returns the Status from the enclosing function if `expr` is not OK.
#define VITRINE_RETURN_IF_ERROR(expr)          \
  do {                                         \
    ::vitrine::Status _vitrine_st = (expr);    \
    if (!_vitrine_st.ok()) return _vitrine_st; \
  } while (0)

// `VITRINE_ASSIGN_OR_RETURN(auto x, ReadThing(path));` binds the value of a
// Result or returns its Status from the enclosing function.
#define VITRINE_ASSIGN_OR_RETURN(lhs, expr) \
  VITRINE_ASSIGN_OR_RETURN_IMPL_(VITRINE_CONCAT_(_vitrine_res_, __LINE__), lhs, expr)
#define VITRINE_ASSIGN_OR_RETURN_IMPL_(res, lhs, expr) \
  auto res = (expr);                                   \
  if (!res.ok()) return res.status();                  \
  lhs = std::move(res).value()
