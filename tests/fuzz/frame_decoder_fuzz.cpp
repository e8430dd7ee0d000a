// libFuzzer target for the frame decoder and the init payload parser: bytes
// from a worker are untrusted, so no input may crash, hang, over-buffer or
// yield a frame that is not exactly what was sent.
//
// The first input byte chooses a piece size, so the decoder also meets every
// way of splitting the stream; the decoder's limit is kept small so that the
// oversized path is reachable.

#include <seedpool/core/assert.hpp>
#include <seedpool/core/codec.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace {

constexpr std::size_t fuzz_frame_bytes_max = 4096;

void check_decoder(std::string_view stream, std::size_t piece) {
  seedpool::FrameDecoder decoder(fuzz_frame_bytes_max);
  std::string reencoded;
  bool failed = false;
  for (std::size_t at = 0; at < stream.size() && !failed; at += piece) {
    decoder.feed(stream.substr(at, piece));
    SEEDPOOL_ASSERT(decoder.buffered_bytes() <= fuzz_frame_bytes_max + piece);
    while (true) {
      seedpool::DecodeResult result = decoder.next();
      if (result.status() == seedpool::DecodeStatus::frame) {
        SEEDPOOL_ASSERT(seedpool::encoded_frame_bytes(result.frame()) <= fuzz_frame_bytes_max);
        seedpool::append_frame(reencoded, result.frame());
        continue;
      }
      failed = result.status() == seedpool::DecodeStatus::error;
      break;
    }
  }
  // Whatever was decoded is a prefix of the stream, byte for byte.
  SEEDPOOL_ASSERT(stream.substr(0, reencoded.size()) == reencoded);
  if (failed) {
    SEEDPOOL_ASSERT(decoder.poisoned());
    SEEDPOOL_ASSERT(decoder.next().status() == seedpool::DecodeStatus::error);
    SEEDPOOL_ASSERT(!seedpool::to_error(decoder.next().error()).message.empty());
  } else if (const auto end = decoder.at_end_of_stream(); end.has_value()) {
    SEEDPOOL_ASSERT(!end->describe().empty());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) {
    return 0;
  }
  const std::size_t piece = 1 + data[0] % 64;
  const std::string_view stream(reinterpret_cast<const char*>(data + 1), size - 1);
  check_decoder(stream, piece);
  const auto init = seedpool::parse_init_payload(stream);
  if (init.ok()) {
    const auto again = seedpool::parse_init_payload(
        seedpool::encode_init_payload(init.value().protocol_version, init.value().worker_id));
    SEEDPOOL_ASSERT(again.ok() && again.value() == init.value());
  }
  return 0;
}
