// Timestamps as text, without the C library's time zone machinery: the
// conversions are plain calendar arithmetic on UTC, so they never depend on
// the process's TZ.
#include "internal.hpp"

#include <cstdio>
#include <stdexcept>

namespace coherence::internal {
namespace {

using std::chrono::microseconds;

// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
// days_from_civil).
std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

// The inverse of days_from_civil.
void civil_from_days(std::int64_t z, std::int64_t &y, unsigned &m, unsigned &d) {
  z += 719468;
  const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const auto doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  d = doy - (153 * mp + 2) / 5 + 1;
  m = mp < 10 ? mp + 3 : mp - 9;
  y = static_cast<std::int64_t>(yoe) + era * 400 + (m <= 2);
}

// A cursor over the text being parsed; every read names what it expected so
// errors say what was wrong.
struct Reader {
  std::string_view text;
  std::size_t pos = 0;

  [[noreturn]] void fail(const char *expected) const {
    throw std::invalid_argument("coherence: timestamp \"" + std::string(text) + "\": expected " + expected);
  }
  bool at_end() const { return pos == text.size(); }
  char peek() const { return at_end() ? '\0' : text[pos]; }
  // Reads exactly `count` decimal digits.
  unsigned digits(int count, const char *expected) {
    unsigned value = 0;
    for (int i = 0; i < count; ++i, ++pos) {
      if (at_end() || text[pos] < '0' || text[pos] > '9') fail(expected);
      value = value * 10 + static_cast<unsigned>(text[pos] - '0');
    }
    return value;
  }
  // Consumes `c` if it is next.
  bool accept(char c) {
    if (peek() != c) return false;
    ++pos;
    return true;
  }
  // Consumes `c` or fails.
  void expect(char c, const char *expected) {
    if (!accept(c)) fail(expected);
  }
};

}  // namespace

// Floors to microseconds, so times before 1970 format correctly too.
std::string format_timestamp(Timestamp t) {
  const auto us = std::chrono::floor<microseconds>(t).time_since_epoch().count();
  const std::int64_t per_day = 86400LL * 1000000;
  std::int64_t days = us / per_day, rest = us % per_day;
  if (rest < 0) rest += per_day, --days;
  std::int64_t year;
  unsigned month, day;
  civil_from_days(days, year, month, day);
  const std::int64_t secs = rest / 1000000;
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04lld-%02u-%02uT%02lld:%02lld:%02lld.%06lldZ", static_cast<long long>(year),
                month, day, static_cast<long long>(secs / 3600), static_cast<long long>(secs / 60 % 60),
                static_cast<long long>(secs % 60), static_cast<long long>(rest % 1000000));
  return buf;
}

// Strict ISO 8601 with an offset; see internal.hpp.
Timestamp parse_timestamp(std::string_view text) {
  Reader r{text};
  const unsigned year = r.digits(4, "a four-digit year");
  r.expect('-', "'-' after the year");
  const unsigned month = r.digits(2, "a two-digit month");
  r.expect('-', "'-' after the month");
  const unsigned day = r.digits(2, "a two-digit day");
  if (!r.accept('T') && !r.accept(' ')) r.fail("'T' between date and time");
  const unsigned hour = r.digits(2, "a two-digit hour");
  r.expect(':', "':' after the hour");
  const unsigned minute = r.digits(2, "two-digit minutes");
  r.expect(':', "':' after the minutes");
  const unsigned second = r.digits(2, "two-digit seconds");
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 60)
    r.fail("a valid date and time");
  std::int64_t micros = 0;
  if (r.accept('.')) {
    // Up to microseconds count; finer digits are dropped like the server does.
    int n = 0;
    for (; !r.at_end() && r.peek() >= '0' && r.peek() <= '9'; ++n) {
      const unsigned digit = r.digits(1, "a digit");
      if (n < 6) micros = micros * 10 + digit;
    }
    if (n == 0) r.fail("digits after '.'");
    for (; n < 6; ++n) micros *= 10;
  }
  std::int64_t offset = 0;  // seconds east of UTC
  if (!r.accept('Z')) {
    const char sign = r.peek();
    if (sign != '+' && sign != '-') r.fail("'Z' or a UTC offset such as +00:00");
    ++r.pos;
    offset = r.digits(2, "two-digit offset hours") * 3600;
    // The server prints +HH:MM, or +HH:MM:SS for historical local mean times.
    if (r.accept(':')) {
      offset += r.digits(2, "two-digit offset minutes") * 60;
      if (r.accept(':')) offset += r.digits(2, "two-digit offset seconds");
    } else if (!r.at_end()) {
      offset += r.digits(2, "two-digit offset minutes") * 60;
    }
    if (sign == '-') offset = -offset;
  }
  if (!r.at_end()) r.fail("the end after the UTC offset");
  const std::int64_t secs =
      days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second - offset;
  return Timestamp{std::chrono::duration_cast<Timestamp::duration>(microseconds{secs * 1000000 + micros})};
}

}  // namespace coherence::internal
