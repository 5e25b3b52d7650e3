// snprintf into a std::string, for the pipeline's texts (the Pareto choice's reason, the report
// page). Private to pipeline/. Results longer than 511 bytes are cut there.
#pragma once

#include <cstdarg>
#include <cstdio>
#include <string>

namespace cyclecast::pipeline {

inline std::string printf_string(const char* format, ...) __attribute__((format(printf, 1, 2)));
inline std::string printf_string(const char* format, ...) {
  char buffer[512];
  va_list args;
  va_start(args, format);
  std::vsnprintf(buffer, sizeof buffer, format, args);
  va_end(args);
  return buffer;
}

}  // namespace cyclecast::pipeline
