// Tests for the frame codec: exact wire layout, every decode error, the
// frame_bytes_max boundary, the init payload, and properties over random
// frame streams split into random pieces.

#include <seedpool/core/codec.hpp>

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <ostream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace seedpool {

// Let GoogleTest and RapidCheck print frames in failure messages. They are
// found by argument-dependent lookup, so they live in namespace seedpool, and
// are static so that other test files may define their own.
static void PrintTo(const Frame& frame, std::ostream* out) {
  *out << "Frame{" << to_string(frame.kind) << ", id " << frame.request_id << ", "
       << frame.payload.size() << " payload bytes}";
}
static void showValue(const Frame& frame, std::ostream& out) { PrintTo(frame, &out); }

namespace {

// Turns failed assertions into exceptions for the duration of a test, so a
// test can check that a precondition is enforced without aborting.
class ThrowingAssertions {
 public:
  ThrowingAssertions() : previous_(set_assertion_handler(&throw_failure)) {}
  ~ThrowingAssertions() { set_assertion_handler(previous_); }
  ThrowingAssertions(const ThrowingAssertions&) = delete;
  ThrowingAssertions& operator=(const ThrowingAssertions&) = delete;

 private:
  [[noreturn]] static void throw_failure(const AssertionInfo& info) {
    throw std::logic_error(std::string(info.expression));
  }
  AssertionHandler previous_;
};

std::string bytes_of(std::initializer_list<unsigned> values) {
  std::string out;
  for (const unsigned value : values) {
    out.push_back(static_cast<char>(static_cast<unsigned char>(value)));
  }
  return out;
}

// A 13-byte header with arbitrary field values, for frames the encoder refuses to build.
std::string raw_header(std::uint32_t length, std::uint8_t kind_value, std::uint64_t request_id) {
  std::string out;
  for (int shift = 24; shift >= 0; shift -= 8) {
    out.push_back(static_cast<char>((length >> shift) & 0xFFu));
  }
  out.push_back(static_cast<char>(kind_value));
  for (int shift = 56; shift >= 0; shift -= 8) {
    out.push_back(static_cast<char>((request_id >> shift) & 0xFFu));
  }
  return out;
}

// Calls next() until it stops yielding frames; returns the frames and the final result.
std::vector<Frame> drain(FrameDecoder& decoder, DecodeStatus* final_status = nullptr) {
  std::vector<Frame> frames;
  for (;;) {
    DecodeResult result = decoder.next();
    if (result.status() != DecodeStatus::frame) {
      if (final_status != nullptr) {
        *final_status = result.status();
      }
      return frames;
    }
    frames.push_back(std::move(result).frame());
  }
}

DecodeError expect_error(FrameDecoder& decoder, DecodeErrorCode code) {
  const DecodeResult result = decoder.next();
  EXPECT_EQ(result.status(), DecodeStatus::error);
  if (result.status() != DecodeStatus::error) {
    return DecodeError{};
  }
  EXPECT_EQ(result.error().code, code) << result.error().describe();
  return result.error();
}

// ---- Encoding -------------------------------------------------------------

TEST(EncodeFrame, ByteExactBigEndianLayout) {
  const Frame frame{FrameKind::call, 0x8877665544332211u, "hi"};
  const std::string expected = bytes_of({
      0x00, 0x00, 0x00, 0x0B,                          // length = 1 + 8 + 2
      0x03,                                            // kind = call
      0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11,  // request id, most significant first
      'h', 'i',                                        // payload
  });
  const std::string encoded = encode_frame(frame);
  ASSERT_EQ(encoded.size(), expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(static_cast<unsigned char>(encoded[i]), static_cast<unsigned char>(expected[i]))
        << "byte " << i;
  }
  EXPECT_EQ(encoded_frame_bytes(frame), expected.size());
}

TEST(EncodeFrame, LengthFieldUsesAllFourBytesBigEndian) {
  // 0x00010203 - 9 payload bytes make the length field read 00 01 02 03.
  const Frame frame{FrameKind::reply, 1, std::string(0x00010203u - 9u, 'x')};
  const std::string encoded = encode_frame(frame);
  EXPECT_EQ(encoded.substr(0, 4), bytes_of({0x00, 0x01, 0x02, 0x03}));
  EXPECT_EQ(encoded.size(), 4u + 0x00010203u);
}

TEST(EncodeFrame, EmptyPayloadIsAThirteenByteFrame) {
  const std::string encoded = encode_frame(Frame{FrameKind::ping, 0, ""});
  EXPECT_EQ(encoded, bytes_of({0, 0, 0, 9, 6, 0, 0, 0, 0, 0, 0, 0, 0}));
}

TEST(EncodeFrame, AppendFrameAppendsAfterExistingBytes) {
  const Frame first{FrameKind::init, 7, "abc"};
  const Frame second{FrameKind::shutdown, 8, ""};
  std::string out = "prefix";
  append_frame(out, first);
  append_frame(out, second);
  EXPECT_EQ(out, "prefix" + encode_frame(first) + encode_frame(second));
}

TEST(EncodeFrame, AssertsOnUnknownKind) {
  const ThrowingAssertions throwing;
  const Frame frame{static_cast<FrameKind>(42), 1, ""};
  EXPECT_THROW((void)encode_frame(frame), std::logic_error);
}

// ---- Decoding -------------------------------------------------------------

TEST(FrameDecoder, DecodesFramesFedOneByteAtATime) {
  const std::vector<Frame> frames = {
      {FrameKind::init, 1, encode_init_payload(kProtocolVersion, 3)},
      {FrameKind::ready, 1, ""},
      {FrameKind::call, 2, std::string("\0\xff\n", 3)},
  };
  std::string stream;
  for (const Frame& frame : frames) {
    append_frame(stream, frame);
  }
  FrameDecoder decoder;
  std::vector<Frame> decoded;
  for (const char byte : stream) {
    decoder.feed(std::string_view(&byte, 1));
    for (Frame& frame : drain(decoder)) {
      decoded.push_back(std::move(frame));
    }
  }
  EXPECT_EQ(decoded, frames);
  EXPECT_FALSE(decoder.mid_frame());
  EXPECT_EQ(decoder.at_end_of_stream(), std::nullopt);
}

TEST(FrameDecoder, NeedsMoreBytesUntilTheFrameIsComplete) {
  const std::string encoded = encode_frame(Frame{FrameKind::reply, 9, "payload"});
  FrameDecoder decoder;
  decoder.feed(encoded.substr(0, encoded.size() - 1));
  EXPECT_EQ(decoder.next().status(), DecodeStatus::need_more_bytes);
  EXPECT_TRUE(decoder.mid_frame());
  decoder.feed(encoded.substr(encoded.size() - 1));
  const DecodeResult result = decoder.next();
  ASSERT_EQ(result.status(), DecodeStatus::frame);
  EXPECT_EQ(result.frame(), (Frame{FrameKind::reply, 9, "payload"}));
  EXPECT_EQ(decoder.next().status(), DecodeStatus::need_more_bytes);
  EXPECT_EQ(decoder.buffered_bytes(), 0u);
}

TEST(FrameDecoder, RejectsOversizedFrameAsSoonAsTheLengthArrives) {
  FrameDecoder decoder(100);
  // Only the length field is fed: the decoder must not wait for the body.
  decoder.feed(raw_header(97, 3, 0).substr(0, 4));
  const DecodeError error = expect_error(decoder, DecodeErrorCode::oversized);
  EXPECT_EQ(error.frame_bytes_max, 100u);
  EXPECT_EQ(error.describe().rfind("frame of 101 bytes exceeds frame_bytes_max 100", 0), 0u)
      << error.describe();
  EXPECT_EQ(decoder.buffered_bytes(), 0u);
}

TEST(FrameDecoder, DefaultLimitIsSixteenMebibytes) {
  EXPECT_EQ(kFrameBytesMaxDefault, 16u * 1024u * 1024u);
  FrameDecoder decoder;
  EXPECT_EQ(decoder.frame_bytes_max(), kFrameBytesMaxDefault);
  decoder.feed(raw_header(20'000'000 - 4, 3, 0).substr(0, 4));
  const DecodeError error = expect_error(decoder, DecodeErrorCode::oversized);
  EXPECT_EQ(error.describe().rfind("frame of 20000000 bytes exceeds frame_bytes_max 16777216", 0),
            0u)
      << error.describe();
}

TEST(FrameDecoder, AcceptsFrameExactlyAtLimitAndRejectsOneByteMore) {
  const std::size_t limit = 100;
  const Frame at_limit{FrameKind::call, 1, std::string(limit - kFrameHeaderBytes, 'a')};
  const Frame over_limit{FrameKind::call, 2, std::string(limit - kFrameHeaderBytes + 1, 'b')};
  ASSERT_EQ(encoded_frame_bytes(at_limit), limit);

  FrameDecoder decoder(limit);
  decoder.feed(encode_frame(at_limit) + encode_frame(over_limit));
  const DecodeResult first = decoder.next();
  ASSERT_EQ(first.status(), DecodeStatus::frame);
  EXPECT_EQ(first.frame(), at_limit);
  const DecodeError error = expect_error(decoder, DecodeErrorCode::oversized);
  EXPECT_EQ(error.stream_offset, limit);
  EXPECT_EQ(error.length, limit + 1 - kFrameLengthBytes);
}

TEST(FrameDecoder, RejectsUnknownKindNamingTheRequestId) {
  for (const std::uint8_t kind_value : std::initializer_list<std::uint8_t>{0, 9, 42, 255}) {
    FrameDecoder decoder;
    const std::string header = raw_header(9, kind_value, 5);
    decoder.feed(header.substr(0, 12));
    // The kind is judged once the request id it reports has arrived.
    EXPECT_EQ(decoder.next().status(), DecodeStatus::need_more_bytes);
    decoder.feed(header.substr(12));
    const DecodeError error = expect_error(decoder, DecodeErrorCode::unknown_kind);
    EXPECT_EQ(error.kind_value, kind_value);
    EXPECT_EQ(error.request_id, 5u);
    const std::string expected = "unknown frame kind " + std::to_string(kind_value) + " (request id 5)";
    EXPECT_EQ(error.describe().rfind(expected, 0), 0u) << error.describe();
  }
}

TEST(FrameDecoder, RejectsLengthBelowNine) {
  for (const std::uint32_t length : {0u, 1u, 8u}) {
    FrameDecoder decoder;
    decoder.feed(raw_header(length, 3, 0).substr(0, 4));
    const DecodeError error = expect_error(decoder, DecodeErrorCode::length_too_small);
    EXPECT_EQ(error.length, length);
    EXPECT_NE(error.describe().find("below the minimum 9"), std::string::npos) << error.describe();
  }
}

TEST(FrameDecoder, TextOnStdoutIsDiagnosedAsSuch) {
  FrameDecoder decoder;
  decoder.feed("hello from the worker\n");
  const DecodeError error = expect_error(decoder, DecodeErrorCode::oversized);
  EXPECT_NE(error.describe().find("\"hell\""), std::string::npos) << error.describe();
  EXPECT_NE(error.describe().find("stdout"), std::string::npos) << error.describe();
}

TEST(FrameDecoder, ReportsTruncationAtEndOfStream) {
  const Frame whole{FrameKind::reply, 1, "complete"};
  const std::string partial = encode_frame(Frame{FrameKind::reply, 2, std::string(12, 'z')});
  ASSERT_EQ(partial.size(), 25u);

  FrameDecoder decoder;
  decoder.feed(encode_frame(whole) + partial.substr(0, 7));
  DecodeStatus status = DecodeStatus::frame;
  EXPECT_EQ(drain(decoder, &status), std::vector<Frame>{whole});
  EXPECT_EQ(status, DecodeStatus::need_more_bytes);
  EXPECT_TRUE(decoder.mid_frame());

  const std::optional<DecodeError> error = decoder.at_end_of_stream();
  ASSERT_TRUE(error.has_value());
  EXPECT_EQ(error->code, DecodeErrorCode::truncated);
  EXPECT_EQ(error->bytes_received, 7u);
  EXPECT_EQ(error->stream_offset, encoded_frame_bytes(whole));
  EXPECT_EQ(error->describe().rfind("stream ended inside a frame: 7 of 25 bytes received", 0), 0u)
      << error->describe();
}

TEST(FrameDecoder, ReportsTruncationInsideTheLengthField) {
  FrameDecoder decoder;
  decoder.feed(bytes_of({0, 0}));
  EXPECT_EQ(decoder.next().status(), DecodeStatus::need_more_bytes);
  const std::optional<DecodeError> error = decoder.at_end_of_stream();
  ASSERT_TRUE(error.has_value());
  EXPECT_EQ(error->describe().rfind("stream ended inside a frame: 2 of at least 13 bytes", 0), 0u)
      << error->describe();
}

TEST(FrameDecoder, CleanEndOfStreamIsNotAnError) {
  FrameDecoder decoder;
  EXPECT_EQ(decoder.at_end_of_stream(), std::nullopt);
  decoder.feed(encode_frame(Frame{FrameKind::pong, 3, ""}));
  EXPECT_EQ(drain(decoder).size(), 1u);
  EXPECT_FALSE(decoder.mid_frame());
  EXPECT_EQ(decoder.at_end_of_stream(), std::nullopt);
}

TEST(FrameDecoder, AtEndOfStreamAssertsThatFramesWereDrained) {
  const ThrowingAssertions throwing;
  FrameDecoder decoder;
  decoder.feed(encode_frame(Frame{FrameKind::pong, 3, ""}));
  EXPECT_THROW((void)decoder.at_end_of_stream(), std::logic_error);
}

TEST(FrameDecoder, StaysPoisonedAfterAnError) {
  FrameDecoder decoder;
  decoder.feed(raw_header(9, 42, 5));
  const DecodeError first = expect_error(decoder, DecodeErrorCode::unknown_kind);
  EXPECT_TRUE(decoder.poisoned());

  // A valid frame after the error must not be decoded: the boundary is lost.
  decoder.feed(encode_frame(Frame{FrameKind::ping, 1, ""}));
  for (int i = 0; i < 3; ++i) {
    const DecodeResult again = decoder.next();
    ASSERT_EQ(again.status(), DecodeStatus::error);
    EXPECT_EQ(again.error(), first);
  }
  EXPECT_EQ(decoder.buffered_bytes(), 0u);
  EXPECT_EQ(decoder.at_end_of_stream(), first);
}

TEST(FrameDecoder, ConstructorAssertsLimitHoldsAnEmptyFrame) {
  const ThrowingAssertions throwing;
  EXPECT_THROW(FrameDecoder decoder(kFrameHeaderBytes - 1), std::logic_error);
  EXPECT_NO_THROW(FrameDecoder decoder(kFrameHeaderBytes));
}

TEST(FrameDecoder, DecodeErrorMapsToProtocolError) {
  DecodeError decode_error;
  decode_error.code = DecodeErrorCode::unknown_kind;
  decode_error.kind_value = 42;
  decode_error.request_id = 5;
  const Error error = to_error(decode_error);
  EXPECT_EQ(error.code, ErrorCode::protocol_error);
  EXPECT_EQ(error.message, decode_error.describe());
  EXPECT_TRUE(error.stderr_tail.empty());
}

TEST(FrameDecoder, ErrorCodesHaveStableNames) {
  EXPECT_EQ(to_string(DecodeErrorCode::oversized), "oversized");
  EXPECT_EQ(to_string(DecodeErrorCode::unknown_kind), "unknown_kind");
  EXPECT_EQ(to_string(DecodeErrorCode::length_too_small), "length_too_small");
  EXPECT_EQ(to_string(DecodeErrorCode::truncated), "truncated");
}

// ---- Init payload ---------------------------------------------------------

TEST(InitPayload, EncodesTheDocumentedJson) {
  EXPECT_EQ(kProtocolVersion, 1u);
  EXPECT_EQ(encode_init_payload(kProtocolVersion, 7), R"({"protocol":1,"worker_id":7})");
}

TEST(InitPayload, RoundTripsIncludingExtremeValues) {
  const std::vector<InitInfo> infos = {
      {kProtocolVersion, 0}, {kProtocolVersion, 7}, {0xFFFF'FFFFu, 0xFFFF'FFFF'FFFF'FFFFu}};
  for (const InitInfo& info : infos) {
    const Result<InitInfo> parsed =
        parse_init_payload(encode_init_payload(info.protocol_version, info.worker_id));
    ASSERT_TRUE(parsed.ok()) << parsed.error().describe();
    EXPECT_EQ(parsed.value(), info);
  }
}

TEST(InitPayload, AcceptsEitherOrderAndWhitespace) {
  const Result<InitInfo> parsed =
      parse_init_payload(" \n{ \"worker_id\" :\t12 ,\r\n \"protocol\": 1 }\n");
  ASSERT_TRUE(parsed.ok()) << parsed.error().describe();
  EXPECT_EQ(parsed.value(), (InitInfo{1, 12}));
}

TEST(InitPayload, RejectsEverythingElseWithAClearMessage) {
  struct Case {
    std::string_view payload;
    std::string_view message_part;
  };
  const std::vector<Case> cases = {
      {"", "expected '{' at byte 0 of (empty)"},
      {"[1]", "expected '{'"},
      {"{}", "expected a quoted key"},
      {R"({"protocol":1})", "missing key \"worker_id\""},
      {R"({"worker_id":1})", "missing key \"protocol\""},
      {R"({"protocol":1,"protocol":1})", "duplicate key \"protocol\" at byte 14"},
      {R"({"protocol":1,"worker_id":2,"extra":3})", "unknown key \"extra\""},
      {R"({"protocol":1,})", "expected a quoted key"},
      {R"({"protocol" 1,"worker_id":2})", "expected ':' after key \"protocol\""},
      {R"({"protocol":-1,"worker_id":2})", "expected an unsigned integer for \"protocol\""},
      {R"({"protocol":"1","worker_id":2})", "expected an unsigned integer"},
      {R"({"protocol":01,"worker_id":2})", "leading zero"},
      {R"({"protocol":1.0,"worker_id":2})", "must be an integer"},
      {R"({"protocol":1e3,"worker_id":2})", "must be an integer"},
      {R"({"protocol":4294967296,"worker_id":2})", "value of \"protocol\" exceeds 4294967295"},
      {R"({"protocol":1,"worker_id":18446744073709551616})", "value of \"worker_id\" exceeds"},
      {R"({"protocol":1,"worker_id":2} x)", "unexpected bytes after the closing '}'"},
      {R"({"protocol":1 "worker_id":2})", "expected ',' or '}'"},
      {R"({"proto)", "unterminated key"},
      {R"({"pro\"tocol":1})", "escape sequences are not supported"},
      {R"({"protocol":1,"worker_id":2)", "expected ',' or '}'"},
  };
  for (const Case& c : cases) {
    const Result<InitInfo> parsed = parse_init_payload(c.payload);
    ASSERT_FALSE(parsed.ok()) << "accepted: " << c.payload;
    EXPECT_EQ(parsed.error().code, ErrorCode::protocol_error);
    EXPECT_NE(parsed.error().message.find(c.message_part), std::string::npos)
        << "payload: " << c.payload << "\nmessage: " << parsed.error().message;
  }
}

TEST(InitPayload, ErrorQuotesABoundedEscapedExcerpt) {
  const std::string payload = std::string("\x01") + std::string(200, 'y');
  const Result<InitInfo> parsed = parse_init_payload(payload);
  ASSERT_FALSE(parsed.ok());
  const std::string& message = parsed.error().message;
  EXPECT_NE(message.find("\\x01"), std::string::npos) << message;
  EXPECT_NE(message.find("..."), std::string::npos) << message;
  EXPECT_LT(message.size(), 200u) << message;
}

// ---- Properties -----------------------------------------------------------

rc::Gen<Frame> gen_frame() {
  return rc::gen::build<Frame>(
      rc::gen::set(&Frame::kind, rc::gen::map(rc::gen::inRange<int>(1, 9),
                                              [](int value) { return static_cast<FrameKind>(value); })),
      rc::gen::set(&Frame::request_id, rc::gen::arbitrary<std::uint64_t>()),
      rc::gen::set(&Frame::payload, rc::gen::container<std::string>(rc::gen::arbitrary<char>())));
}

// Piece sizes that mix single bytes, small reads and large reads.
rc::Gen<std::vector<std::size_t>> gen_piece_sizes() {
  return rc::gen::container<std::vector<std::size_t>>(
      rc::gen::oneOf(rc::gen::just<std::size_t>(1), rc::gen::inRange<std::size_t>(1, 16),
                     rc::gen::inRange<std::size_t>(1, 4096)));
}

// Feeds `stream` in pieces of the given sizes (cycled; one piece when empty),
// draining after every piece. Checks the buffering bound along the way.
std::vector<Frame> feed_in_pieces(FrameDecoder& decoder, std::string_view stream,
                                  const std::vector<std::size_t>& piece_sizes) {
  std::vector<Frame> decoded;
  std::size_t offset = 0;
  for (std::size_t piece = 0; offset < stream.size(); ++piece) {
    const std::size_t size =
        piece_sizes.empty() ? stream.size() : piece_sizes[piece % piece_sizes.size()];
    decoder.feed(stream.substr(offset, size));
    offset += std::min(size, stream.size() - offset);
    DecodeStatus status = DecodeStatus::frame;
    for (Frame& frame : drain(decoder, &status)) {
      RC_ASSERT(encoded_frame_bytes(frame) <= decoder.frame_bytes_max());
      decoded.push_back(std::move(frame));
    }
    if (status == DecodeStatus::error) {
      break;
    }
    RC_ASSERT(decoder.buffered_bytes() < decoder.frame_bytes_max());
  }
  return decoded;
}

std::size_t largest_frame_bytes(const std::vector<Frame>& frames) {
  std::size_t largest = kFrameHeaderBytes;
  for (const Frame& frame : frames) {
    largest = std::max(largest, encoded_frame_bytes(frame));
  }
  return largest;
}

RC_GTEST_PROP(FrameCodecProperty, RandomFramesSurviveRandomSplits, ()) {
  const auto frames = *rc::gen::container<std::vector<Frame>>(gen_frame());
  const auto piece_sizes = *gen_piece_sizes();
  std::string stream;
  for (const Frame& frame : frames) {
    append_frame(stream, frame);
  }
  // The tightest limit that admits every frame also exercises the boundary.
  FrameDecoder decoder(largest_frame_bytes(frames));
  const std::vector<Frame> decoded = feed_in_pieces(decoder, stream, piece_sizes);
  RC_ASSERT(decoded == frames);
  RC_ASSERT(!decoder.poisoned());
  RC_ASSERT(!decoder.mid_frame());
  RC_ASSERT(!decoder.at_end_of_stream().has_value());
}

RC_GTEST_PROP(FrameCodecProperty, CutStreamReportsExactTruncation, ()) {
  const auto frames = *rc::gen::nonEmpty(rc::gen::container<std::vector<Frame>>(gen_frame()));
  std::string stream;
  std::vector<std::size_t> boundaries = {0};
  for (const Frame& frame : frames) {
    append_frame(stream, frame);
    boundaries.push_back(stream.size());
  }
  const auto cut = *rc::gen::inRange<std::size_t>(0, stream.size() + 1);
  const auto piece_sizes = *gen_piece_sizes();
  FrameDecoder decoder;
  const std::vector<Frame> decoded = feed_in_pieces(decoder, stream.substr(0, cut), piece_sizes);

  // The last boundary at or before the cut: frames before it decode, the rest is partial.
  const auto complete = static_cast<std::size_t>(
      std::upper_bound(boundaries.begin(), boundaries.end(), cut) - boundaries.begin() - 1);
  RC_ASSERT(decoded == std::vector<Frame>(frames.begin(), frames.begin() + static_cast<std::ptrdiff_t>(complete)));
  const std::optional<DecodeError> at_end = decoder.at_end_of_stream();
  if (cut == boundaries[complete]) {
    RC_ASSERT(!at_end.has_value());
    return;
  }
  RC_ASSERT(at_end.has_value());
  RC_ASSERT(at_end->code == DecodeErrorCode::truncated);
  RC_ASSERT(at_end->stream_offset == boundaries[complete]);
  RC_ASSERT(at_end->bytes_received == cut - boundaries[complete]);
}

// A valid stream with a few bytes overwritten reaches every decode error, where
// purely random bytes would almost always fail the length check first.
RC_GTEST_PROP(FrameCodecProperty, CorruptedStreamsStayBoundedAndFaithful, ()) {
  const auto frames = *rc::gen::container<std::vector<Frame>>(gen_frame());
  std::string stream;
  for (const Frame& frame : frames) {
    append_frame(stream, frame);
  }
  stream += *rc::gen::container<std::string>(rc::gen::arbitrary<char>());
  const auto corruptions = *rc::gen::container<std::vector<std::pair<std::size_t, char>>>(
      rc::gen::pair(rc::gen::arbitrary<std::size_t>(), rc::gen::arbitrary<char>()));
  for (const auto& [position, byte] : corruptions) {
    if (!stream.empty()) {
      stream[position % stream.size()] = byte;
    }
  }
  const auto frame_bytes_max = *rc::gen::inRange<std::size_t>(kFrameHeaderBytes, 400);
  FrameDecoder decoder(frame_bytes_max);
  const std::vector<Frame> decoded = feed_in_pieces(decoder, stream, *gen_piece_sizes());

  // Whatever the decoder accepted must be exactly what the stream said.
  std::string reencoded;
  for (const Frame& frame : decoded) {
    append_frame(reencoded, frame);
  }
  RC_ASSERT(std::string_view(stream).substr(0, reencoded.size()) == reencoded);
  const std::optional<DecodeError> at_end = decoder.at_end_of_stream();
  RC_ASSERT(at_end.has_value() == (reencoded.size() != stream.size()));
  if (at_end.has_value()) {
    RC_ASSERT(at_end->stream_offset == reencoded.size());
    RC_TAG(std::string(to_string(at_end->code)));
  } else {
    RC_TAG(std::string("clean"));
  }
}

}  // namespace
}  // namespace seedpool
