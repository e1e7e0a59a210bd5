// Helpers shared by the library's source files; not installed.
#pragma once

#include <coherence/coherence.hpp>

#include <string>
#include <string_view>

namespace coherence::internal {

// "2026-11-22T10:00:00.123456Z": what the server's timestamptz input reads,
// exactly to the microsecond and independent of the session TimeZone.
std::string format_timestamp(Timestamp t);

// Reads ISO 8601 with a UTC offset, as the server prints timestamptz:
// "2026-11-22T10:00:00.5+05:30", "... 10:00:00Z", "+00:53:28". Throws
// std::invalid_argument on anything else.
Timestamp parse_timestamp(std::string_view text);

// Throws std::invalid_argument for input the server would reject, with a
// message naming the field the way the server does.
void validate_rebase(std::int64_t base, const std::vector<NewEvent> &history,
                     const std::vector<std::int64_t> &resolved);

}  // namespace coherence::internal
