// Client-side checks of an append, mirroring the server's so that a mistake
// is reported before a round trip, with the server's field names.
#include "internal.hpp"

#include <set>
#include <stdexcept>

namespace coherence::internal {
namespace {

// Throws the library's error type naming the offending field.
[[noreturn]] void reject(const std::string &field, const std::string &problem) {
  throw std::invalid_argument("coherence: " + field + " " + problem);
}

// Text fields must be non-empty.
void require_text(const std::string &value, const std::string &field) {
  if (value.empty()) reject(field, "must not be empty");
}

// Both halves of a [kind, id] pair must be non-empty.
void check_identity(const Identity &identity, const std::string &field) {
  require_text(identity.kind, field + " kind");
  require_text(identity.id, field + " id");
}

// A path names at least one key.
void check_path(const Path &path, const std::string &field) {
  if (path.empty()) reject(field, "must not be an empty path");
}

// A patch changes something, at non-empty paths.
void check_patch(const Patch &patch, const std::string &field) {
  if (patch.assoc.empty() && patch.dissoc.empty()) reject(field, "must have a non-empty assoc or dissoc");
  for (std::size_t i = 0; i < patch.assoc.size(); ++i)
    check_path(patch.assoc[i].first, field + ".assoc[" + std::to_string(i) + "]");
  for (std::size_t i = 0; i < patch.dissoc.size(); ++i)
    check_path(patch.dissoc[i], field + ".dissoc[" + std::to_string(i) + "]");
}

// One event of the history, at index `at`.
void check_event(const NewEvent &event, const std::string &at) {
  if (event.id) require_text(*event.id, at + ".id");
  require_text(event.source, at + ".source");
  if (const auto *action = std::get_if<Action>(&event.body)) {
    require_text(action->reason, at + ".action.reason");
    check_identity(action->actor, at + ".action.actor");
    check_identity(action->aggregate, at + ".action.aggregate");
    check_patch(action->patch, at + ".action.patch");
  } else {
    const auto &effect = std::get<Effect>(event.body);
    require_text(effect.reason, at + ".effect.reason");
    check_identity(effect.trigger, at + ".effect.trigger");
    if (!event.triggers.empty()) reject(at + ".triggers", "are not allowed on an effect");
  }
  std::set<std::pair<std::string, std::string>> seen;
  for (std::size_t i = 0; i < event.triggers.size(); ++i) {
    const Identity &trigger = event.triggers[i];
    const std::string field = at + ".triggers[" + std::to_string(i) + "]";
    check_identity(trigger, field);
    if (!seen.emplace(trigger.kind, trigger.id).second) reject(field, "is a duplicate trigger");
  }
}

}  // namespace

// The whole call: base, every event, resolved.
void validate_rebase(std::int64_t base, const std::vector<NewEvent> &history,
                     const std::vector<std::int64_t> &resolved) {
  if (base < 1) reject("base", "must be at least 1");
  if (history.empty()) reject("history", "must be a non-empty array");
  for (std::size_t i = 0; i < history.size(); ++i) check_event(history[i], "history[" + std::to_string(i) + "]");
  std::set<std::int64_t> seen;
  for (const std::int64_t seq_no : resolved) {
    if (seq_no < 1) reject("resolved", "must contain only seq_nos of at least 1");
    if (!seen.insert(seq_no).second) reject("resolved", "must not contain duplicates");
  }
}

}  // namespace coherence::internal
