// Runs two simulated tasks talking over a channel and checks the run is
// reproduced from its seed. Exit status 0 on success.

#include <seedpool/core/channel.hpp>
#include <seedpool/sim/sim_world.hpp>

#include <cstdio>
#include <memory>

int main() {
  int received = 0;
  auto program = [&received](seedpool::sim::SimWorld& world) {
    auto channel = std::make_shared<seedpool::Channel<int>>(world, "numbers", 2);
    world.spawn("producer", [&world, channel] {
      for (int i = 1; i <= 5; ++i) {
        world.sleep_for(seedpool::milliseconds(10));
        (void)channel->send(int{i});
      }
      channel->close();
    });
    while (auto item = channel->receive()) {
      received += *item.value;
    }
  };
  seedpool::sim::SimConfig config;
  config.seed = 42;
  const auto first = seedpool::sim::simulate(config, program);
  const auto second = seedpool::sim::simulate(config, program);
  std::printf("%s\n", first.summary().c_str());
  const bool good = first.ok() && received == 30 && first.trace_hash == second.trace_hash &&
                    first.virtual_time == seedpool::Instant::zero() + seedpool::milliseconds(50);
  return good ? 0 : 1;
}
