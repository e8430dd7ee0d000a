#pragma once

// Messages on stderr that never end the job: fmt::print throws when its
// write fails, and a stderr that went away (`seedpool run ... 2>&1 | head`)
// must not abort a job whose calls and shutdown are still under way. The
// message is lost then, as there is nowhere left to put it.

#include <fmt/format.h>

#include <cstdio>
#include <string>
#include <utility>

namespace seedpool::tool {

template <class... Args>
void say(fmt::format_string<Args...> format, Args&&... args) {
  const std::string text = fmt::format(format, std::forward<Args>(args)...);
  static_cast<void>(std::fwrite(text.data(), 1, text.size(), stderr));
}

}  // namespace seedpool::tool
