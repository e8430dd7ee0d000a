#include <seedpool/core/channel.hpp>
#include <seedpool/sim/toys.hpp>

#include <memory>

namespace seedpool::sim::toys {

void ordering_bug(SimWorld& world, const OrderingBug& shape) {
  struct State {
    bool a1 = false;
    bool a2 = false;
  };
  auto state = std::make_shared<State>();
  world.spawn("A", [&world, state, shape] {
    for (unsigned i = 0; i < shape.a_lead; ++i) {
      world.yield();
    }
    state->a1 = true;
    if (!shape.fixed) {
      world.yield();
    }
    state->a2 = true;
  });
  world.spawn("B", [&world, state, shape] {
    for (unsigned i = 0; i < shape.b_lead; ++i) {
      world.yield();
    }
    if (state->a1 && !state->a2) {
      world.fail("ordering bug: B's event ran between A's events a1 and a2");
    }
  });
  world.spawn("C", [&world, shape] {
    for (unsigned i = 0; i < shape.c_steps; ++i) {
      world.yield();
    }
  });
}

void lock_order_deadlock(SimWorld& world) {
  auto left = std::make_shared<Channel<int>>(world, "left", 1);
  auto right = std::make_shared<Channel<int>>(world, "right", 1);
  const bool crossed = world.decide(4) == 0;
  world.spawn("P", [left, right, crossed] {
    if (crossed) {
      (void)left->receive();
    }
    (void)right->send(1);
    (void)left->receive();
  });
  world.spawn("Q", [left, right] {
    (void)right->receive();
    (void)left->send(2);
  });
}

}  // namespace seedpool::sim::toys
