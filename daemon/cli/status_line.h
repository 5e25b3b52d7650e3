// One status line on stderr, redrawn in place, for progress on a terminal: the commands decide
// what it says, this decides when and how it is drawn.
#pragma once

#include <chrono>
#include <cstdio>
#include <string>

namespace cyclecast::cli {

class StatusLine {
 public:
  // True when the line may be redrawn: at most every kRedrawMs, or always when `final` (the last
  // update of a phase must show).
  bool due(bool final = false) {
    const auto now = std::chrono::steady_clock::now();
    if (!final && now - last_draw_ < std::chrono::milliseconds(kRedrawMs)) return false;
    last_draw_ = now;
    return true;
  }
  void draw(const std::string& text) {
    std::fprintf(stderr, "\r\033[K%s", text.c_str());
    std::fflush(stderr);
    drawn_ = true;
  }
  void clear() {
    if (drawn_) std::fputs("\r\033[K", stderr);
    drawn_ = false;
  }

 private:
  static constexpr int kRedrawMs = 200;
  std::chrono::steady_clock::time_point last_draw_{};
  bool drawn_ = false;
};

}  // namespace cyclecast::cli
