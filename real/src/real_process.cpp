// The Process handle; see process_shared.hpp.

#include "io_loop.hpp"
#include "process_shared.hpp"

#include <csignal>

namespace seedpool::real::detail {

RealProcess::~RealProcess() {
  shared_->abandoned.store(true, std::memory_order_release);
  loop_.request_service(shared_->key);
}

Status RealProcess::write_frame(const Frame& frame) {
  bool wake_loop = false;
  Status status = shared_->write_frame(frame, wake_loop);
  if (wake_loop) {
    loop_.request_service(shared_->key);
  }
  return status;
}

void RealProcess::signal(Signal signal) {
  switch (signal) {
    case Signal::terminate: shared_->signal(SIGTERM); return;
    case Signal::kill: shared_->signal(SIGKILL); return;
  }
}

void RealProcess::set_router(std::shared_ptr<FrameRouter> router) {
  std::lock_guard<std::mutex> lock(shared_->mutex);
  shared_->router = std::move(router);
}

}  // namespace seedpool::real::detail
