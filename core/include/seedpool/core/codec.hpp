#pragma once

// The wire encoding of the worker protocol.
//
//   [u32 length][u8 kind][u64 request id][payload]
//
// All integers are big-endian. `length` counts the bytes after the length field
// itself (1 + 8 + payload size), so the smallest legal length is 9. The codec is
// pure: no OS calls, clocks, threads or randomness, so the real world and the
// simulator decode byte streams identically.

#include <seedpool/core/frame.hpp>
#include <seedpool/core/result.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

namespace seedpool {

// The protocol version this build speaks; the init frame carries it.
inline constexpr std::uint32_t kProtocolVersion = 1;

// Bytes of the length field that starts every frame.
inline constexpr std::size_t kFrameLengthBytes = 4;
// Bytes of length field, kind and request id: the smallest whole frame.
inline constexpr std::size_t kFrameHeaderBytes = kFrameLengthBytes + 1 + 8;
// The smallest legal value of the length field (kind + request id).
inline constexpr std::uint32_t kFrameLengthMin = 9;
// The largest payload whose length still fits the u32 length field.
inline constexpr std::size_t kFramePayloadBytesLimit = 0xFFFF'FFFFu - kFrameLengthMin;
// Default limit on one encoded frame, counting all of it (length field included).
inline constexpr std::size_t kFrameBytesMaxDefault = 16 * 1024 * 1024;

// Returns the number of bytes encode_frame(frame) produces: 13 + payload size.
std::size_t encoded_frame_bytes(const Frame& frame) noexcept;

// Returns the wire encoding of one frame. Requires a known kind and a payload of
// at most kFramePayloadBytesLimit bytes (asserted). It does not apply any
// frame_bytes_max: the limit belongs to the receiver, which may have its own.
std::string encode_frame(const Frame& frame);

// Appends the wire encoding of one frame to `out`; same contract as encode_frame.
// Lets a writer batch several frames into one buffer without copies.
void append_frame(std::string& out, const Frame& frame);

// Ways a byte stream can break the frame protocol. None can be recovered from:
// once a frame boundary is lost, later bytes cannot be trusted to be frames.
enum class DecodeErrorCode {
  oversized,         // the length field announces a frame above frame_bytes_max
  unknown_kind,      // the kind byte is not a FrameKind value
  length_too_small,  // the length field is below kFrameLengthMin
  truncated,         // the stream ended inside a frame
};

// Returns the stable lower-case name of a code, e.g. "unknown_kind".
std::string_view to_string(DecodeErrorCode code) noexcept;

// A decode failure with the facts needed to explain it. Fields that do not
// apply to `code` stay zero.
struct DecodeError {
  DecodeErrorCode code = DecodeErrorCode::truncated;
  std::uint64_t stream_offset = 0;    // offset of the offending frame's first byte
  std::uint32_t length = 0;           // the length field, when it was received
  std::uint64_t frame_bytes_max = 0;  // oversized: the limit that was exceeded
  std::uint8_t kind_value = 0;        // unknown_kind: the kind byte
  std::uint64_t request_id = 0;       // unknown_kind: the frame's request id
  std::uint64_t bytes_received = 0;   // truncated: bytes of the frame that arrived

  // A message a user can act on, e.g. "frame of 20000000 bytes exceeds
  // frame_bytes_max 16777216 (stream offset 0)" followed by a likely cause.
  std::string describe() const;

  friend bool operator==(const DecodeError&, const DecodeError&) = default;
};

// Maps a decode failure to the project's error family: protocol_error with
// describe() as the message.
Error to_error(const DecodeError& error);

// What FrameDecoder::next() found.
enum class DecodeStatus {
  frame,            // a complete frame was decoded
  need_more_bytes,  // the buffered bytes end before the next frame does
  error,            // the stream broke the protocol; the decoder is poisoned
};

// The outcome of FrameDecoder::next(): a frame, a request for more bytes, or an
// error. Accessors assert that the status matches.
class DecodeResult {
 public:
  // Returns a result that asks the caller to feed more bytes.
  static DecodeResult need_more_bytes() noexcept;
  // Returns a result that carries a decoded frame.
  static DecodeResult of_frame(Frame frame) noexcept;
  // Returns a result that carries a decode failure.
  static DecodeResult of_error(DecodeError error) noexcept;

  // Which of the three outcomes this is.
  DecodeStatus status() const noexcept;

  // Requires status() == DecodeStatus::frame.
  Frame& frame() &;
  const Frame& frame() const&;
  Frame&& frame() &&;

  // Requires status() == DecodeStatus::error.
  const DecodeError& error() const;

 private:
  explicit DecodeResult(std::variant<std::monostate, Frame, DecodeError> state) noexcept;

  std::variant<std::monostate, Frame, DecodeError> state_;
};

// An incremental decoder for one byte stream. Bytes may arrive in pieces of
// any size, down to one byte at a time; frames come out whole and in order.
//
// Memory is bounded by frame_bytes_max: an oversized length is rejected as soon
// as its 4-byte field arrives, before any of the body is buffered. A caller that
// drains next() until need_more_bytes after every feed() therefore holds at
// most one partial frame (fewer than frame_bytes_max bytes) plus one feed.
class FrameDecoder {
 public:
  // Creates a decoder that rejects frames whose whole encoding exceeds
  // frame_bytes_max bytes. Requires frame_bytes_max >= kFrameHeaderBytes.
  explicit FrameDecoder(std::size_t frame_bytes_max = kFrameBytesMaxDefault);

  // Appends bytes that arrived on the stream. After an error the decoder
  // discards them instead: the stream cannot be resynchronised.
  void feed(std::string_view bytes);

  // Returns the next complete frame, need_more_bytes when the buffered bytes
  // end inside a frame, or the error that poisoned the decoder. Once an error is
  // returned, every later call returns the same error.
  DecodeResult next();

  // The verdict when the stream has ended (EOF): nullopt when it ended on a
  // frame boundary, truncated when a partial frame is buffered, or the poisoning
  // error if one occurred. Requires that next() was drained to need_more_bytes
  // or error, so no complete frame is left unread (asserted).
  std::optional<DecodeError> at_end_of_stream() const;

  // True when fed bytes remain that next() has not returned as frames. Once
  // next() has returned need_more_bytes, this means the stream is inside a frame
  // rather than on a frame boundary.
  bool mid_frame() const noexcept;

  // True after next() has reported an error.
  bool poisoned() const noexcept;

  // Bytes fed but not yet returned as frames.
  std::size_t buffered_bytes() const noexcept;

  // The limit this decoder enforces.
  std::size_t frame_bytes_max() const noexcept;

 private:
  std::string_view unread() const noexcept;
  std::optional<DecodeError> check_header(std::string_view bytes) const;
  DecodeResult poison(DecodeError error);
  void consume(std::size_t bytes);
  void compact();

  std::size_t frame_bytes_max_;
  std::string buffer_;
  std::size_t read_offset_ = 0;       // buffer_[read_offset_..] is unread
  std::uint64_t stream_offset_ = 0;   // stream position of buffer_[read_offset_]
  std::optional<DecodeError> error_;  // set once; the decoder is then poisoned
};

// The payload of an init frame.
struct InitInfo {
  std::uint32_t protocol_version = kProtocolVersion;
  std::uint64_t worker_id = 0;

  friend bool operator==(const InitInfo&, const InitInfo&) = default;
};

// Returns the init payload, the JSON text {"protocol":1,"worker_id":7}.
std::string encode_init_payload(std::uint32_t version, std::uint64_t worker_id);

// Parses an init payload: a JSON object with exactly the unsigned integer
// members "protocol" (fits u32) and "worker_id" (fits u64), in either order,
// with optional JSON whitespace. Anything else fails with protocol_error naming
// what was wrong and where. It does not judge the version: comparing it with
// kProtocolVersion is the caller's decision.
Result<InitInfo> parse_init_payload(std::string_view payload);

}  // namespace seedpool
