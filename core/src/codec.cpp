#include <seedpool/core/codec.hpp>

#include <fmt/format.h>

#include <limits>
#include <utility>

namespace seedpool {
namespace {

// A decoder whose buffer has drained keeps at most this much capacity, so a
// single large frame does not pin frame_bytes_max of memory per worker forever.
constexpr std::size_t kDecoderIdleCapacityMax = 256 * 1024;

// Longest slice of an init payload quoted back in a parse error message.
constexpr std::size_t kPayloadExcerptBytesMax = 64;

void put_u32(std::string& out, std::uint32_t value) {
  for (int shift = 24; shift >= 0; shift -= 8) {
    out.push_back(static_cast<char>((value >> shift) & 0xFFu));
  }
}

void put_u64(std::string& out, std::uint64_t value) {
  for (int shift = 56; shift >= 0; shift -= 8) {
    out.push_back(static_cast<char>((value >> shift) & 0xFFu));
  }
}

std::uint32_t read_u32(std::string_view bytes) noexcept {
  std::uint32_t value = 0;
  for (std::size_t i = 0; i < 4; ++i) {
    value = (value << 8) | static_cast<unsigned char>(bytes[i]);
  }
  return value;
}

std::uint64_t read_u64(std::string_view bytes) noexcept {
  std::uint64_t value = 0;
  for (std::size_t i = 0; i < 8; ++i) {
    value = (value << 8) | static_cast<unsigned char>(bytes[i]);
  }
  return value;
}

bool is_printable(unsigned char c) noexcept { return c >= 0x20 && c <= 0x7E; }

// Renders bytes for a message: printable ASCII as is, the rest as \xNN.
std::string escape_bytes(std::string_view bytes) {
  std::string out;
  for (const char c : bytes) {
    const auto byte = static_cast<unsigned char>(c);
    if (is_printable(byte) && byte != '\\') {
      out.push_back(c);
    } else {
      out += fmt::format("\\x{:02x}", byte);
    }
  }
  return out;
}

// A length field made of text characters is the usual symptom of a worker
// that prints to stdout, which the protocol owns. Says so when it applies.
std::string stdout_hint(std::uint32_t length) {
  std::string text;
  for (int shift = 24; shift >= 0; shift -= 8) {
    const auto byte = static_cast<unsigned char>((length >> shift) & 0xFFu);
    if (!is_printable(byte) && byte != '\n' && byte != '\r' && byte != '\t') {
      return {};
    }
    text.push_back(static_cast<char>(byte));
  }
  return fmt::format(
      "; the length field reads as the text \"{}\", so the worker probably wrote "
      "non-frame output to stdout (write logs to stderr)",
      escape_bytes(text));
}

}  // namespace

std::size_t encoded_frame_bytes(const Frame& frame) noexcept {
  return kFrameHeaderBytes + frame.payload.size();
}

std::string encode_frame(const Frame& frame) {
  std::string out;
  append_frame(out, frame);
  return out;
}

void append_frame(std::string& out, const Frame& frame) {
  SEEDPOOL_ASSERT_MSG(frame.payload.size() <= kFramePayloadBytesLimit,
                      "frame payload does not fit the u32 length field");
  const auto kind_value = static_cast<std::uint8_t>(frame.kind);
  SEEDPOOL_ASSERT_MSG(is_known_frame_kind(kind_value), "encoding a frame of unknown kind");
  const std::size_t size_before = out.size();
  out.reserve(size_before + encoded_frame_bytes(frame));
  put_u32(out, static_cast<std::uint32_t>(kFrameLengthMin + frame.payload.size()));
  out.push_back(static_cast<char>(kind_value));
  put_u64(out, frame.request_id);
  out += frame.payload;
  SEEDPOOL_ASSERT(out.size() - size_before == encoded_frame_bytes(frame));
}

std::string_view to_string(DecodeErrorCode code) noexcept {
  switch (code) {
    case DecodeErrorCode::oversized: return "oversized";
    case DecodeErrorCode::unknown_kind: return "unknown_kind";
    case DecodeErrorCode::length_too_small: return "length_too_small";
    case DecodeErrorCode::truncated: return "truncated";
  }
  return "unknown";
}

std::string DecodeError::describe() const {
  switch (code) {
    case DecodeErrorCode::oversized:
      return fmt::format("frame of {} bytes exceeds frame_bytes_max {} (stream offset {}){}",
                         std::uint64_t{length} + kFrameLengthBytes, frame_bytes_max,
                         stream_offset, stdout_hint(length));
    case DecodeErrorCode::unknown_kind:
      return fmt::format(
          "unknown frame kind {} (request id {}) at stream offset {}; known kinds are 1..8, "
          "so the peer speaks another protocol version or wrote non-frame output to stdout",
          kind_value, request_id, stream_offset);
    case DecodeErrorCode::length_too_small:
      return fmt::format("frame length field {} is below the minimum {} (stream offset {}){}",
                         length, kFrameLengthMin, stream_offset, stdout_hint(length));
    case DecodeErrorCode::truncated:
      if (bytes_received < kFrameLengthBytes) {
        return fmt::format(
            "stream ended inside a frame: {} of at least {} bytes received (stream offset {})",
            bytes_received, kFrameHeaderBytes, stream_offset);
      }
      return fmt::format("stream ended inside a frame: {} of {} bytes received (stream offset {})",
                         bytes_received, std::uint64_t{length} + kFrameLengthBytes,
                         stream_offset);
  }
  return fmt::format("decode error {}", static_cast<int>(code));
}

Error to_error(const DecodeError& error) {
  return Error{ErrorCode::protocol_error, error.describe(), {}};
}

DecodeResult::DecodeResult(std::variant<std::monostate, Frame, DecodeError> state) noexcept
    : state_(std::move(state)) {}

DecodeResult DecodeResult::need_more_bytes() noexcept { return DecodeResult(std::monostate{}); }

DecodeResult DecodeResult::of_frame(Frame frame) noexcept {
  return DecodeResult(std::variant<std::monostate, Frame, DecodeError>(std::move(frame)));
}

DecodeResult DecodeResult::of_error(DecodeError error) noexcept {
  return DecodeResult(std::variant<std::monostate, Frame, DecodeError>(std::move(error)));
}

DecodeStatus DecodeResult::status() const noexcept {
  switch (state_.index()) {
    case 0: return DecodeStatus::need_more_bytes;
    case 1: return DecodeStatus::frame;
    default: return DecodeStatus::error;
  }
}

Frame& DecodeResult::frame() & {
  SEEDPOOL_ASSERT_MSG(state_.index() == 1, "frame() of a DecodeResult without a frame");
  return std::get<1>(state_);
}

const Frame& DecodeResult::frame() const& {
  SEEDPOOL_ASSERT_MSG(state_.index() == 1, "frame() of a DecodeResult without a frame");
  return std::get<1>(state_);
}

Frame&& DecodeResult::frame() && {
  SEEDPOOL_ASSERT_MSG(state_.index() == 1, "frame() of a DecodeResult without a frame");
  return std::get<1>(std::move(state_));
}

const DecodeError& DecodeResult::error() const {
  SEEDPOOL_ASSERT_MSG(state_.index() == 2, "error() of a DecodeResult without an error");
  return std::get<2>(state_);
}

FrameDecoder::FrameDecoder(std::size_t frame_bytes_max) : frame_bytes_max_(frame_bytes_max) {
  SEEDPOOL_ASSERT_MSG(frame_bytes_max >= kFrameHeaderBytes,
                      "frame_bytes_max is below the size of an empty frame");
}

void FrameDecoder::feed(std::string_view bytes) {
  if (error_.has_value()) {
    return;
  }
  compact();
  buffer_.append(bytes);
}

DecodeResult FrameDecoder::next() {
  if (error_.has_value()) {
    return DecodeResult::of_error(*error_);
  }
  const std::string_view bytes = unread();
  if (std::optional<DecodeError> failure = check_header(bytes)) {
    return poison(std::move(*failure));
  }
  if (bytes.size() < kFrameHeaderBytes) {
    return DecodeResult::need_more_bytes();
  }
  // check_header() has bounded the length by frame_bytes_max, so this fits.
  const std::size_t frame_bytes = kFrameLengthBytes + read_u32(bytes);
  if (bytes.size() < frame_bytes) {
    return DecodeResult::need_more_bytes();
  }
  Frame frame;
  frame.kind = static_cast<FrameKind>(static_cast<std::uint8_t>(bytes[kFrameLengthBytes]));
  frame.request_id = read_u64(bytes.substr(kFrameLengthBytes + 1));
  frame.payload.assign(bytes.substr(kFrameHeaderBytes, frame_bytes - kFrameHeaderBytes));
  SEEDPOOL_ASSERT(encoded_frame_bytes(frame) == frame_bytes);
  consume(frame_bytes);
  return DecodeResult::of_frame(std::move(frame));
}

std::optional<DecodeError> FrameDecoder::at_end_of_stream() const {
  if (error_.has_value()) {
    return error_;
  }
  const std::string_view bytes = unread();
  if (bytes.empty()) {
    return std::nullopt;
  }
  SEEDPOOL_ASSERT_MSG(!check_header(bytes).has_value(),
                      "at_end_of_stream() before next() reported the buffered error");
  DecodeError error;
  error.code = DecodeErrorCode::truncated;
  error.stream_offset = stream_offset_;
  error.bytes_received = bytes.size();
  if (bytes.size() >= kFrameLengthBytes) {
    error.length = read_u32(bytes);
    SEEDPOOL_ASSERT_MSG(bytes.size() < kFrameLengthBytes + std::size_t{error.length},
                        "at_end_of_stream() with a complete frame unread; drain next() first");
  }
  return error;
}

bool FrameDecoder::mid_frame() const noexcept { return read_offset_ < buffer_.size(); }

bool FrameDecoder::poisoned() const noexcept { return error_.has_value(); }

std::size_t FrameDecoder::buffered_bytes() const noexcept { return buffer_.size() - read_offset_; }

std::size_t FrameDecoder::frame_bytes_max() const noexcept { return frame_bytes_max_; }

std::string_view FrameDecoder::unread() const noexcept {
  return std::string_view(buffer_).substr(read_offset_);
}

// Validates whatever part of the next frame's header has arrived: the length
// field once 4 bytes are buffered, the kind once the whole 13-byte header is
// (the message names the request id, which completes the header).
std::optional<DecodeError> FrameDecoder::check_header(std::string_view bytes) const {
  if (bytes.size() < kFrameLengthBytes) {
    return std::nullopt;
  }
  DecodeError error;
  error.stream_offset = stream_offset_;
  error.length = read_u32(bytes);
  if (error.length < kFrameLengthMin) {
    error.code = DecodeErrorCode::length_too_small;
    return error;
  }
  if (std::uint64_t{error.length} + kFrameLengthBytes > frame_bytes_max_) {
    error.code = DecodeErrorCode::oversized;
    error.frame_bytes_max = frame_bytes_max_;
    return error;
  }
  if (bytes.size() < kFrameHeaderBytes) {
    return std::nullopt;
  }
  const auto kind_value = static_cast<std::uint8_t>(bytes[kFrameLengthBytes]);
  if (!is_known_frame_kind(kind_value)) {
    error.code = DecodeErrorCode::unknown_kind;
    error.kind_value = kind_value;
    error.request_id = read_u64(bytes.substr(kFrameLengthBytes + 1));
    return error;
  }
  return std::nullopt;
}

DecodeResult FrameDecoder::poison(DecodeError error) {
  SEEDPOOL_ASSERT(!error_.has_value());
  error_ = error;
  // The stream is dead, so its bytes are of no further use.
  buffer_ = std::string();
  read_offset_ = 0;
  return DecodeResult::of_error(std::move(error));
}

void FrameDecoder::consume(std::size_t bytes) {
  SEEDPOOL_ASSERT(bytes <= buffered_bytes());
  read_offset_ += bytes;
  stream_offset_ += bytes;
  if (read_offset_ == buffer_.size()) {
    buffer_.clear();
    read_offset_ = 0;
  }
}

// Drops consumed bytes from the front of the buffer, but only once they
// outnumber the unread bytes that must move: each byte is then moved at most
// once per byte consumed before it, which keeps decoding linear overall.
void FrameDecoder::compact() {
  if (buffer_.empty() && buffer_.capacity() > kDecoderIdleCapacityMax) {
    buffer_ = std::string();
  }
  if (read_offset_ == 0 || read_offset_ < buffered_bytes()) {
    return;
  }
  buffer_.erase(0, read_offset_);
  read_offset_ = 0;
}

namespace {

// A hand-written parser for the one JSON shape an init payload may take. A
// general JSON library would accept far more than the protocol allows.
class InitPayloadParser {
 public:
  explicit InitPayloadParser(std::string_view text) : text_(text) {}

  Result<InitInfo> parse();

 private:
  Result<bool> parse_member(std::optional<std::uint32_t>& protocol,
                            std::optional<std::uint64_t>& worker_id);
  Result<std::string_view> parse_key();
  Result<std::uint64_t> parse_unsigned(std::string_view key, std::uint64_t value_max);
  Error fail(std::string_view what) const;
  Error fail_at(std::size_t position, std::string_view what) const;
  void skip_whitespace() noexcept;
  bool consume(char expected) noexcept;
  bool at_digit() const noexcept;

  std::string_view text_;
  std::size_t pos_ = 0;
};

Result<InitInfo> InitPayloadParser::parse() {
  skip_whitespace();
  if (!consume('{')) {
    return fail("expected '{'");
  }
  std::optional<std::uint32_t> protocol;
  std::optional<std::uint64_t> worker_id;
  // Each pass either records a new member or fails (unknown and repeated keys
  // are errors), so the loop runs at most three times.
  for (;;) {
    Result<bool> more = parse_member(protocol, worker_id);
    if (!more.ok()) {
      return more.error();
    }
    if (!more.value()) {
      break;
    }
  }
  if (!protocol.has_value()) {
    return fail("missing key \"protocol\"");
  }
  if (!worker_id.has_value()) {
    return fail("missing key \"worker_id\"");
  }
  skip_whitespace();
  if (pos_ != text_.size()) {
    return fail("unexpected bytes after the closing '}'");
  }
  return InitInfo{*protocol, *worker_id};
}

// Parses one `"key": value` member and the ',' or '}' after it. Returns true
// when another member follows.
Result<bool> InitPayloadParser::parse_member(std::optional<std::uint32_t>& protocol,
                                             std::optional<std::uint64_t>& worker_id) {
  skip_whitespace();
  const std::size_t key_position = pos_;
  Result<std::string_view> key = parse_key();
  if (!key.ok()) {
    return key.error();
  }
  skip_whitespace();
  if (!consume(':')) {
    return fail(fmt::format("expected ':' after key \"{}\"", escape_bytes(key.value())));
  }
  skip_whitespace();
  const bool is_protocol = key.value() == "protocol";
  if (!is_protocol && key.value() != "worker_id") {
    return fail_at(key_position,
                   fmt::format("unknown key \"{}\" (expected \"protocol\" and \"worker_id\")",
                               escape_bytes(key.value())));
  }
  if (is_protocol ? protocol.has_value() : worker_id.has_value()) {
    return fail_at(key_position, fmt::format("duplicate key \"{}\"", key.value()));
  }
  const std::uint64_t value_max =
      is_protocol ? std::numeric_limits<std::uint32_t>::max() : std::numeric_limits<std::uint64_t>::max();
  Result<std::uint64_t> value = parse_unsigned(key.value(), value_max);
  if (!value.ok()) {
    return value.error();
  }
  if (is_protocol) {
    protocol = static_cast<std::uint32_t>(value.value());
  } else {
    worker_id = value.value();
  }
  skip_whitespace();
  if (consume(',')) {
    return true;
  }
  if (consume('}')) {
    return false;
  }
  return fail("expected ',' or '}'");
}

// Parses a quoted key. Escapes are not supported: no valid key needs one.
Result<std::string_view> InitPayloadParser::parse_key() {
  if (!consume('"')) {
    return fail("expected a quoted key");
  }
  const std::size_t start = pos_;
  while (pos_ < text_.size() && text_[pos_] != '"') {
    if (text_[pos_] == '\\') {
      return fail("escape sequences are not supported in keys");
    }
    ++pos_;
  }
  if (pos_ == text_.size()) {
    return fail("unterminated key");
  }
  const std::string_view key = text_.substr(start, pos_ - start);
  ++pos_;
  return key;
}

// Parses a JSON unsigned integer: digits without sign, fraction, exponent or
// leading zeros, at most value_max.
Result<std::uint64_t> InitPayloadParser::parse_unsigned(std::string_view key,
                                                        std::uint64_t value_max) {
  if (!at_digit()) {
    return fail(fmt::format("expected an unsigned integer for \"{}\"", key));
  }
  if (text_[pos_] == '0' && pos_ + 1 < text_.size() && text_[pos_ + 1] >= '0' &&
      text_[pos_ + 1] <= '9') {
    return fail(fmt::format("leading zero in the value of \"{}\"", key));
  }
  std::uint64_t value = 0;
  while (at_digit()) {
    const auto digit = static_cast<std::uint64_t>(text_[pos_] - '0');
    if (value > (value_max - digit) / 10) {
      return fail(fmt::format("value of \"{}\" exceeds {}", key, value_max));
    }
    value = value * 10 + digit;
    ++pos_;
  }
  if (pos_ < text_.size() && (text_[pos_] == '.' || text_[pos_] == 'e' || text_[pos_] == 'E')) {
    return fail(fmt::format("value of \"{}\" must be an integer", key));
  }
  return value;
}

Error InitPayloadParser::fail(std::string_view what) const { return fail_at(pos_, what); }

// Quotes the payload back (bounded and escaped) so the reader sees what the
// peer actually sent.
Error InitPayloadParser::fail_at(std::size_t position, std::string_view what) const {
  const std::string_view excerpt = text_.substr(0, kPayloadExcerptBytesMax);
  const std::string shown = text_.empty() ? std::string("(empty)")
                                          : escape_bytes(excerpt) +
                                                (text_.size() > excerpt.size() ? "..." : "");
  return Error{ErrorCode::protocol_error,
               fmt::format("malformed init payload: {} at byte {} of {}", what, position, shown),
               {}};
}

void InitPayloadParser::skip_whitespace() noexcept {
  while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\t' ||
                                 text_[pos_] == '\n' || text_[pos_] == '\r')) {
    ++pos_;
  }
}

bool InitPayloadParser::consume(char expected) noexcept {
  if (pos_ < text_.size() && text_[pos_] == expected) {
    ++pos_;
    return true;
  }
  return false;
}

bool InitPayloadParser::at_digit() const noexcept {
  return pos_ < text_.size() && text_[pos_] >= '0' && text_[pos_] <= '9';
}

}  // namespace

std::string encode_init_payload(std::uint32_t version, std::uint64_t worker_id) {
  return fmt::format("{{\"protocol\":{},\"worker_id\":{}}}", version, worker_id);
}

Result<InitInfo> parse_init_payload(std::string_view payload) {
  return InitPayloadParser(payload).parse();
}

}  // namespace seedpool
