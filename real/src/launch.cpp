// RealWorld::launch: check, spawn, hand the child to the I/O loop.

#include <seedpool/real/real_world.hpp>

#include "io_loop.hpp"
#include "spawn.hpp"

namespace seedpool::real {

Result<std::unique_ptr<Process>> RealWorld::launch(const ProcessSpec& spec) {
  if (stopping_.load()) {
    return Error{ErrorCode::launch_failed,
                 "cannot launch '" + spec.program + "': the RealWorld is being destroyed", {}};
  }
  Result<detail::SpawnRequest> request = detail::prepare_spawn(spec);
  if (!request) {
    return request.error();
  }
  Result<detail::SpawnedChild> child = detail::spawn_child(request.value());
  if (!child) {
    return child.error();
  }
  return io_->adopt(spec, std::move(child).value());
}

}  // namespace seedpool::real
