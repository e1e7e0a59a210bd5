// Timestamps as text, in the forms PostgreSQL reads and prints, with the
// calendar from Howard Hinnant's date library (no time zone database: only
// UTC offsets are involved, so the process's TZ never matters).
#include "internal.hpp"

#include <date/date.h>

#include <cstdio>
#include <stdexcept>

namespace coherence::internal {
namespace {

using std::chrono::microseconds;

// date::year stops at ±32767, PostgreSQL goes to 294276: the Gregorian
// calendar repeats every 400 years (146097 days), so dates are converted in
// the cycle that contains year 2000 and shifted back by whole cycles.
constexpr std::int64_t cycle_years = 400, cycle_days = 146097;

// What both PostgreSQL's timestamptz and Timestamp hold starts at
// PostgreSQL's first instant, 4714-11-24 00:00:00 BC (year -4713), in
// microseconds since 1970, and ends where the 64-bit count of microseconds
// does, 294247-01-10 04:00:54.775807 (PostgreSQL goes on to 294276-12-31).
constexpr std::int64_t first_us = -210866803200LL * 1000000;

// Floor division, for negative years and days.
std::int64_t floor_div(std::int64_t a, std::int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }

// Days since 1970-01-01 of a valid proleptic Gregorian date (astronomical
// year: 0 is 1 BC); nullopt when the day does not exist in that month.
std::optional<std::int64_t> days_from_civil(std::int64_t year, unsigned month, unsigned day) {
  const std::int64_t cycles = floor_div(year - 2000, cycle_years);
  const date::year_month_day ymd{date::year{static_cast<int>(year - cycles * cycle_years)}, date::month{month},
                                 date::day{day}};
  if (!ymd.ok()) return std::nullopt;
  return date::sys_days{ymd}.time_since_epoch().count() + cycles * cycle_days;
}

// The inverse of days_from_civil.
date::year_month_day civil_from_days(std::int64_t days, std::int64_t &year) {
  const std::int64_t cycles = floor_div(days, cycle_days);
  const date::year_month_day ymd{date::sys_days{date::days{days - cycles * cycle_days}}};
  year = static_cast<int>(ymd.year()) + cycles * cycle_years;
  return ymd;
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
  bool digit_next() const { return peek() >= '0' && peek() <= '9'; }
  // Reads exactly `count` decimal digits.
  unsigned digits(int count, const char *expected) {
    unsigned value = 0;
    for (int i = 0; i < count; ++i, ++pos) {
      if (!digit_next()) fail(expected);
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

// Refuses what PostgreSQL could not store, instead of wrapping it.
[[noreturn]] void out_of_range(const std::string &what) {
  throw std::invalid_argument("coherence: timestamp " + what +
                              " is outside the range of Timestamp and PostgreSQL (4714-11-24 BC to 294247-01-10)");
}

}  // namespace

// ISO 8601 in UTC; the server reads four-digit years only, so a time
// outside the years 1 to 9999 (UTC) is refused here, before sending.
std::string format_timestamp(Timestamp t) {
  const std::int64_t us = t.time_since_epoch().count();
  const std::int64_t per_day = 86400LL * 1000000;
  const std::int64_t days = floor_div(us, per_day), rest = us - days * per_day;
  std::int64_t year;
  const date::year_month_day ymd = civil_from_days(days, year);
  if (year < 1 || year > 9999)
    throw std::invalid_argument("coherence: timestamp of " + std::to_string(us) +
                                " microseconds since 1970 is outside the years 0001 to 9999 that ISO 8601 "
                                "timestamps with four-digit years (which the server reads) can write");
  const std::int64_t secs = rest / 1000000;
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04lld-%02u-%02uT%02lld:%02lld:%02lld.%06lldZ", static_cast<long long>(year),
                static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                static_cast<long long>(secs / 3600), static_cast<long long>(secs / 60 % 60),
                static_cast<long long>(secs % 60), static_cast<long long>(rest % 1000000));
  return buf;
}

// Strict ISO 8601 with an offset; see internal.hpp.
Timestamp parse_timestamp(std::string_view text) {
  Reader r{text};
  // Four digits at least; PostgreSQL prints up to six after 9999.
  std::int64_t year = r.digits(4, "a four-digit year");
  for (int extra = 0; r.digit_next(); ++extra) {
    if (extra == 2) r.fail("a year of at most six digits");
    year = year * 10 + r.digits(1, "a digit");
  }
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
  if (hour > 23 || minute > 59 || second > 59) r.fail("a valid time of day");
  std::int64_t micros = 0;
  if (r.accept('.')) {
    // Up to microseconds count; finer digits are dropped like the server does.
    int n = 0;
    for (; r.digit_next(); ++n) {
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
    } else if (r.digit_next()) {
      offset += r.digits(2, "two-digit offset minutes") * 60;
    }
    if (sign == '-') offset = -offset;
  }
  // PostgreSQL marks years before 1 with " BC" (1 BC is year 0).
  if (r.accept(' ')) {
    r.expect('B', "\"BC\" after the offset");
    r.expect('C', "\"BC\" after the offset");
    if (year == 0) r.fail("a year of at least 1 before BC");
    year = 1 - year;
  } else if (year == 0) {
    r.fail("a year of at least 1 (or BC)");
  }
  if (!r.at_end()) r.fail("the end after the UTC offset");
  const auto days = days_from_civil(year, month, day);
  if (!days) r.fail("a day that exists in that month");
  const std::int64_t secs = *days * 86400 + hour * 3600 + minute * 60 + second - offset;
  // Six-digit years keep secs far from overflow; microseconds may not be.
  std::int64_t us = 0;
  if (__builtin_mul_overflow(secs, 1000000, &us) || __builtin_add_overflow(us, micros, &us) || us < first_us)
    out_of_range("\"" + std::string(text) + "\"");
  return Timestamp{microseconds{us}};
}

}  // namespace coherence::internal
